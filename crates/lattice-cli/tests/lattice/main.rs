//! Integration tests of Lattice against real nats-server processes and real host processes.
//!
//! One test binary for the whole crate (each binary links slowly); one module per capability.

mod apps;
mod attacks;
mod auth;
mod chaos;
mod common;
mod components;
mod demo;
mod discovery;
mod fuzz;
mod hostile;
mod http;
mod interop;
mod keyvalue;
mod lifecycle;
mod messaging;
mod oci;
mod reconnect;
mod registries;
mod state;
mod topology;
mod wrpc;
