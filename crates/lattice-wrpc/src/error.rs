//! Typed errors of wRPC calls, in async-nats style: a kind to match on, a message to show.

use std::fmt;

/// What went wrong with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallErrorKind {
    /// The caller's import has no link to a target.
    NotLinked,
    /// Nobody serves the target: no host runs it. Reported in milliseconds.
    NoResponders,
    /// The call's deadline passed before it completed.
    DeadlineExceeded,
    /// The target accepted the call, then failed: its guest trapped or the host failed.
    Trapped,
    /// Bytes on the wire did not decode, or a value did not fit its type.
    Decode,
    /// The request was refused before running (unknown function, oversized payload, ...).
    Rejected,
    /// NATS failed underneath (connection lost, publish refused).
    Transport,
    /// The call may or may not have run: the host that took it died or stopped answering
    /// before it reported back. Safe to retry only for idempotent functions.
    OutcomeUnknown,
    /// The target's host is at its bound of calls in flight and refused this one before
    /// running it: nothing ran, so it is safe to send again.
    Busy,
    /// The call's parameters (as decoded, not only as sent) exceed what the target's host
    /// holds for one call.
    TooLarge,
}

impl fmt::Display for CallErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CallErrorKind::NotLinked => "not linked",
            CallErrorKind::NoResponders => "no responders",
            CallErrorKind::DeadlineExceeded => "deadline exceeded",
            CallErrorKind::Trapped => "trapped",
            CallErrorKind::Decode => "decode error",
            CallErrorKind::Rejected => "rejected",
            CallErrorKind::Transport => "transport error",
            CallErrorKind::OutcomeUnknown => "outcome unknown",
            CallErrorKind::Busy => "busy",
            CallErrorKind::TooLarge => "too large",
        })
    }
}

/// A failed call: `kind()` for code, the message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    kind: CallErrorKind,
    message: String,
}

impl CallError {
    pub fn new(kind: CallErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> CallErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Parses the `kind: message` form [`fmt::Display`] writes (e.g. from an error header).
    pub fn parse(s: &str) -> Self {
        const KINDS: [CallErrorKind; 10] = [
            CallErrorKind::NotLinked,
            CallErrorKind::NoResponders,
            CallErrorKind::DeadlineExceeded,
            CallErrorKind::Trapped,
            CallErrorKind::Decode,
            CallErrorKind::Rejected,
            CallErrorKind::Transport,
            CallErrorKind::OutcomeUnknown,
            CallErrorKind::Busy,
            CallErrorKind::TooLarge,
        ];
        for kind in KINDS {
            if let Some(rest) = s.strip_prefix(&format!("{kind}: ")) {
                return Self::new(kind, rest);
            }
        }
        Self::new(CallErrorKind::Trapped, s)
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for CallError {}
