//! Integration tests of the `lattice` binary and of host processes against real nats-server
//! processes: CLI output, signals, the demo, chaos; tests of one crate live in its own
//! `tests/` (in-process hosts in lattice-host, wRPC in lattice-wrpc, control in lattice-ctl).
//!
//! One test binary for the whole crate (each binary links slowly); one module per capability.

mod app_providers;
mod apps;
mod attacks;
mod auth;
mod chaos;
mod common;
mod components;
mod compose;
mod demo;
mod discovery;
mod fuzz;

mod http;
mod interop;
mod keyvalue;
mod lifecycle;
mod messaging;
mod metrics;
mod oci;
mod peers;
mod reconnect;
mod registries;
mod state;
mod supercluster;
mod topology;
mod traces;
mod washlike;
mod wrpc;
