//! One Lattice host: it joins a lattice by connecting to NATS, and nothing else.
//!
//! A host finds the rest of its lattice only through NATS subjects (heartbeats, scatter-gather
//! `host.ping`) and shared state in JetStream KV; there is no discovery service.
//!
//! # Layout
//! - [`config`]: the typed [`HostConfig`] and [`NatsConfig`] (servers, auth, TLS) a host starts
//!   from, validated once.
//! - `host`: [`Host::start`] (the wiring of the parts) and graceful stop; `shared`: the
//!   handles of the host's subsystems, for what acts on the whole host, and what the host
//!   says about itself; `identity`: who the host is (nkey, friendly name, labels).
//! - `ctl`: the control-interface server, one file per group of operations
//!   (`ctl/host.rs`: ping, get, stop; `ctl/label.rs`; `ctl/config.rs`; `ctl/component.rs`:
//!   scale, update, auction; `ctl/registry.rs`).
//! - `components`: the components this host runs (on `lattice-runtime`), config refresh and
//!   the local call path; `artifact` and [`oci`]: where component bytes come from.
//! - `links`: links in the `LATTICEDATA_{lattice}` bucket and the live table every host keeps;
//!   `ctl/link.rs` serves `link.put|del|get`.
//! - `admission`: bounds on what peers can make the host hold (calls served, decoded bytes).
//! - `router`: where import calls go (link → local pool, or wRPC); `calls`: every call sent
//!   elsewhere (linked or forwarded HTTP): retry policy, watchdog, reachability, counters;
//!   `serve`: every running component's exports served over wRPC in its queue group;
//!   `serving`: what is served and which calls run now (for `host.alive`).
//! - `events`: publishing CloudEvents; `heartbeat`: the periodic, size-bounded heartbeat.
//! - `store`: named config in the `CONFIGDATA_{lattice}` JetStream KV bucket.
//! - `grants`: what each component may reach, resolved from its links (nothing by default).
//! - `keyvalue`: the JetStream KV behind components' `wasi:keyvalue`; `messaging`: NATS
//!   behind `wasmcloud:messaging`, and delivery of subscribed subjects to handlers.
//! - `providers`: capability providers as native processes: start, supervision (restart,
//!   health), links sent to them, stop; `ctl/provider.rs` serves `provider.*`.
//! - `http`: HTTP ingress: listeners and routes from links of the built-in `http` source,
//!   requests served in-process or forwarded over wRPC.
//! - NATS connections (reconnecting forever) and KV buckets are opened with `lattice-nats`.
//!
//! Not here: command-line parsing and the application reconciler (`lattice-cli` runs it
//! beside the host; `lattice-app`), the control client (`lattice-ctl`), and the wire types
//! themselves (`lattice-proto`).

mod admission;
mod artifact;
mod calls;
mod components;
pub mod config;
mod ctl;
mod events;
mod grants;
mod heartbeat;
mod host;
mod http;
mod identity;
mod keyvalue;
mod links;
mod messaging;
mod providers;
pub use lattice_oci as oci;
pub use providers::ProviderTimings;
mod router;
mod serve;
mod serving;
mod shared;
mod state;
mod store;
mod traces;

pub use calls::{RoutingCounts, RoutingStats};
pub use components::InvokeError;
pub use config::{HostConfig, NatsAuth, NatsConfig};
pub use host::Host;
pub use lattice_runtime::{CallError, CallErrorKind, Limits, RuntimeConfig, Val};
pub use shared::StopReason;

/// Why a host could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("invalid host configuration: {0}")]
    Config(String),
    #[error("could not connect to NATS at {urls}: {source}")]
    Connect {
        urls: String,
        #[source]
        source: lattice_nats::ConnectError,
    },
    #[error("cannot start the WebAssembly runtime: {0}")]
    Runtime(#[from] lattice_runtime::LoadError),
    #[error("could not subscribe to {subject}: {source}")]
    Subscribe {
        subject: String,
        #[source]
        source: async_nats::SubscribeError,
    },
    #[error(transparent)]
    Metrics(#[from] lattice_telemetry::Error),
}

/// The version every host reports in pings, inventories and events.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
