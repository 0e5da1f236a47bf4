//! Integration tests of lattice-host: hosts inside the test process against a real
//! nats-server, driven through the control interface and their `Host` handle.
//!
//! One test binary for the crate (each binary links wasmtime, slowly); one module per
//! concern. Tests that need host processes (signals, the CLI, chaos) live in lattice-cli.

mod calls;
mod common;
mod components;
mod hostile;
mod peers;
mod providers;
