//! The Lattice wire contract: everything two parties of a lattice must agree on, as plain data.
//!
//! Lattice speaks wasmCloud v1's lattice protocol so that existing clients work with our hosts.
//! This crate holds that contract and nothing else: no sockets, no NATS client, no wasmtime.
//!
//! # Layout
//! - [`subject`]: builders and parsers for NATS subjects (`wasmbus.ctl.v1.{lattice}.…`,
//!   `wasmbus.evt.{lattice}.…`) and JetStream bucket names, with validation of the names that
//!   go into them.
//! - [`call`]: a failed call's typed error, whose kinds travel in `lattice-error` headers.
//! - [`envelope`]: the control interface's `{success, message, response}` reply envelope and the
//!   one place where request bodies are decoded (so every network-facing decoder is fuzzable).
//! - [`ctl`]: request and response bodies of control operations (hosts, inventory, labels,
//!   named config).
//! - [`op`]: the control operations as a typed list ([`op::Op`]) and `host.alive`'s answers.
//! - [`provider`]: capability providers: start/stop/auction bodies, their events, the host
//!   data a provider process reads on start, and the `wasmbus.rpc` subjects to it.
//! - [`grant`]: what a component may reach: the link and config keys of grants, and the
//!   subject spaces no grant opens.
//! - [`trace`]: the W3C `traceparent` every call carries ([`trace::TraceParent`]).
//! - [`wrpc`]: wRPC's subjects, queue groups and headers (the exchange itself is
//!   `lattice-wrpc`'s).
//! - [`event`]: CloudEvents 1.0 lattice events and their payloads, including the bounded
//!   heartbeat.

pub mod call;
pub mod ctl;
pub mod envelope;
pub mod event;
pub mod grant;
pub mod op;
pub mod provider;
pub mod subject;
pub mod trace;
pub mod wrpc;

pub use envelope::{decode_request, CtlResponse, DecodeError};
