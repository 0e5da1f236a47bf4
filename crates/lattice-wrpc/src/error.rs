//! A call's typed error. It is defined with the wire contract (`lattice_proto::call`), since
//! its kinds travel in the `lattice-error` header, and shared by every crate that makes or
//! serves calls; re-exported here for wRPC's users.

pub use lattice_proto::call::{CallError, CallErrorKind};
