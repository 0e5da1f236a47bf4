//! wRPC 0.0.1 over NATS, wire-compatible with the last upstream NATS transport
//! (`wrpc-transport-nats` 0.29–0.31), which upstream has since deleted.
//!
//! # Layout
//! - [`codec`]: the component-model value encoding, generic over wasm-wave's `WasmValue`.
//! - `leb`: LEB128 integers.
//!
//! Not here: components, links, routing (`lattice-host`).

pub mod codec;
mod leb;

pub use codec::{decode, decode_values, encode, encode_values, DecodeError, EncodeError};
