//! Errors of preparing a component and of calling one (the call error is the one every
//! crate shares, from `lattice_proto::call`).

use std::fmt;

/// A component could not be prepared to run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("component is {size} bytes, over the {limit}-byte limit (max component size)")]
    TooLarge { size: usize, limit: usize },
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    #[error("cannot compile component: {0}")]
    Compile(String),
    #[error("cannot link component: {0}")]
    Link(String),
}

pub use lattice_proto::call::{CallError, CallErrorKind};

/// Marks the error of an import call, so the trap it causes is reported as that error, kind
/// and all.
#[derive(Debug)]
pub(crate) struct ImportFailed(pub CallError);

impl fmt::Display for ImportFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ImportFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}
