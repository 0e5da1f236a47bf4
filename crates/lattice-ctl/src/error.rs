//! Errors of control-interface calls, in async-nats style: a kind to match on, a message to show.

use std::fmt;
use std::sync::Arc;

/// What went wrong with a control-interface call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Nobody is subscribed to the subject: no such host, or no host in the lattice.
    NoResponders,
    /// A responder exists but did not answer before the timeout.
    TimedOut,
    /// The host answered `success: false`; the message says why.
    Rejected,
    /// The reply could not be decoded.
    Decode,
    /// The caller passed something that cannot be sent (bad name, bad lattice).
    InvalidInput,
    /// NATS failed (connection lost, publish failed, ...).
    Transport,
}

/// A failed control-interface call, with the error that caused it (if any) as its
/// `source()`.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// An error of `kind` caused by `source`, whose text is the message.
    pub(crate) fn caused_by(
        kind: ErrorKind,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind,
            message: source.to_string(),
            source: Some(Arc::new(source)),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::Rejected => write!(f, "rejected by host: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
