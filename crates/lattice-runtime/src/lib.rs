//! The Lattice wasmtime embedding: everything about running a component, nothing about NATS.
//!
//! A [`Runtime`] owns one wasmtime engine for the whole host: compilation settings, the pooling
//! allocator, epoch interruption and the on-disk compile cache. [`Runtime::prepare`] turns
//! component bytes into a [`ComponentPool`]: the compiled, pre-linked component (`InstancePre`)
//! plus the per-component [`Policy`] (limits and grants). Every call gets a fresh instance from
//! the pool, bounded by the component's `max_instances`.
//!
//! # Layout
//! - [`engine`]: [`Runtime`] and [`RuntimeConfig`]; engine and allocator settings.
//! - [`cache`]: content-addressed compile cache (memory + disk), keyed by component digest and
//!   engine configuration.
//! - [`policy`]: [`Policy`]: limits (memory, execution time, size) and WASI grants, deny by default.
//! - [`pool`]: [`ComponentPool`]: instances per call, concurrency bound, stats, typed call errors.
//! - `store`: per-call store data (WASI context, resource limiter, config snapshot).
//! - [`http`]: serving `wasi:http/incoming-handler` ([`ComponentPool::handle_http`]);
//!   `outgoing`: the outgoing-request grant.
//! - [`keyvalue`], [`messaging`]: what the host supplies behind `wasi:keyvalue` and
//!   `wasmcloud:messaging` ([`KeyValue`], [`Messaging`]); `services`: where the runtime keeps
//!   them, with the budget of spare instances.
//! - `builtins`: the guest side of the built-in interfaces: `wasi:logging`, `wasi:config`,
//!   `wasmcloud:bus/lattice`, and (in its folder) `wasi:keyvalue` and `wasmcloud:messaging`.
//! - [`error`]: [`LoadError`] (cannot prepare a component) and [`CallError`] (a call failed).
//!
//! Not here: where bytes come from (files, OCI: `lattice-host`), links and remote calls.

mod builtins;
pub mod cache;
pub mod engine;
pub mod error;
pub mod http;
pub mod keyvalue;
pub mod messaging;
mod outgoing;
pub mod policy;
pub mod pool;
mod services;
mod store;

pub use engine::{ImportCall, Router, Runtime, RuntimeConfig};
pub use error::{CallError, CallErrorKind, LoadError};
pub use keyvalue::{KeyValue, KvError};
pub use messaging::{Message, Messaging, MessagingError};
pub use policy::{Grants, Limits, Policy};
pub use pool::{ComponentPool, Export, PoolStats};
pub use wasmtime::component::{Type, Val};

tokio::task_local! {
    /// The trace of the call a guest is running for, so the calls it makes through its
    /// imports continue it. Set by the host around each call; carried by the runtime into
    /// the tasks it spawns to run a guest (an HTTP request's handler).
    pub static CURRENT_TRACE: Option<lattice_proto::trace::TraceParent>;
}

/// Named config as a component sees it through `wasi:config`.
pub type ConfigValues = std::collections::BTreeMap<String, String>;

#[cfg(test)]
mod tests;
