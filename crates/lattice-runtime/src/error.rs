//! Errors of preparing a component and of calling one.

use std::fmt;
use std::time::Duration;

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

/// What went wrong with a call, for callers to match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallErrorKind {
    /// The component exports no such interface or function.
    NoSuchFunction,
    /// The arguments do not match the function's parameters.
    BadArguments,
    /// The call ran past the component's max execution time and was interrupted.
    DeadlineExceeded,
    /// The guest tried to grow its memory past the component's limit.
    MemoryLimit,
    /// The guest trapped (panic, unreachable, a failing import, ...).
    Trapped,
    /// No instance could be created (e.g. the host's instance pool is exhausted).
    Instantiate,
    /// The component was stopped while the call waited for an instance.
    Stopped,
    /// A call the guest made through an import failed; the message is the router's error
    /// (e.g. "not linked: …", "no responders: …").
    Import,
}

/// Marks the error of an import call, so the trap it causes is reported as that error.
#[derive(Debug)]
pub(crate) struct ImportFailed(pub String);

impl fmt::Display for ImportFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ImportFailed {}

/// A failed call.
#[derive(Debug, Clone)]
pub struct CallError {
    kind: CallErrorKind,
    message: String,
}

impl CallError {
    pub(crate) fn new(kind: CallErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn deadline(limit: Duration) -> Self {
        Self::new(
            CallErrorKind::DeadlineExceeded,
            format!("call exceeded the max execution time of {limit:?} and was interrupted"),
        )
    }

    pub fn kind(&self) -> CallErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CallError {}
