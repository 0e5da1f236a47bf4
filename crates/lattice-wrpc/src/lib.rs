//! wRPC 0.0.1 over NATS, wire-compatible with the last upstream NATS transport
//! (`wrpc-transport-nats` 0.29–0.31), which upstream has since deleted.
//!
//! # Layout
//! - [`codec`]: the component-model value encoding, generic over wasm-wave's `WasmValue`
//!   (wasmtime's `Val` on hosts, wasm-wave's `Value` in the CLI).
//! - [`subject`]: invocation subjects, queue groups and headers, defined in `lattice-proto`
//!   (`lattice_proto::wrpc`) with the rest of the wire contract and re-exported here.
//! - [`transport`]: the exchange itself: [`transport::invoke`] for clients,
//!   [`transport::accept`] / [`transport::Invocation`] for servers; chunking past
//!   `max_payload`, deadlines, and the error header.
//! - [`serve`]: the serving loop, which runs a call that needs not wait without a task hop.
//! - [`frames`]: reassembly of a parameter or result stream from its messages (no I/O).
//! - [`http`]: HTTP requests and responses as values, for forwarding a request to the
//!   host that runs its component.
//! - [`wrpc_http`]: HTTP requests and responses as wasmCloud v1 carries them
//!   (`wrpc:http/incoming-handler@0.1.0`), bodies as streams on nested paths.
//! - [`messaging`]: `wasmcloud:messaging` values, for a component's calls to a messaging
//!   provider.
//! - [`retry`]: which failed calls are tried again ([`retry::RetryPolicy`]).
//! - [`types`]: function signatures as data ([`types::TypeDesc`]), for clients that only
//!   have WAVE text.
//! - [`trace`]: W3C `traceparent` parsing and propagation.
//! - [`error`]: [`CallError`] with a [`CallErrorKind`] to match on.
//! - `leb`, `prim`: LEB128 integers; the byte, string and option encodings `http` and
//!   `wrpc_http` share.
//!
//! Not supported yet: `stream`, `future` and resource values in general (nested async paths
//! only as `wrpc_http` uses them).
//!
//! Not here: components, links, routing (`lattice-host`).

pub mod codec;
pub mod error;
pub mod frames;
pub mod http;
mod leb;
pub mod messaging;
mod prim;
pub mod retry;
pub mod serve;
pub mod trace;
pub mod transport;
pub mod types;
pub mod wrpc_http;

pub use codec::{
    decode, decode_values, decode_values_within, encode, encode_values, DecodeError, EncodeError,
    MAX_DECODED_BYTES,
};
pub use error::{CallError, CallErrorKind};
pub use lattice_proto::wrpc as subject;
