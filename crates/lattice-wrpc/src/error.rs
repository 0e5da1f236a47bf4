//! The crate's errors: a value that does not fit its type or bytes that are not (yet) one
//! ([`EncodeError`], [`DecodeError`]), and a call's typed error ([`CallError`]). The call
//! error is defined with the wire contract (`lattice_proto::call`), since its kinds travel in
//! the `lattice-error` header, and shared by every crate that makes or serves calls;
//! re-exported here for wRPC's users.

pub use lattice_proto::call::{CallError, CallErrorKind};

/// A value that does not fit its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode value: {0}")]
pub struct EncodeError(pub String);

/// Bytes that are not (yet) a value of the expected type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end before the value does: more may be on the way.
    #[error("value truncated: more bytes expected")]
    Incomplete,
    /// The bytes can never be a value of the type.
    #[error("malformed value: {0}")]
    Invalid(String),
    /// The values would take more memory, decoded, than the decoder was allowed.
    #[error("values would take more than {limit} bytes decoded")]
    TooLarge { limit: usize },
}
