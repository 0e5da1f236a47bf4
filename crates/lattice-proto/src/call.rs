//! A call's outcome when it fails: one [`CallError`] for every kind of call (in-process,
//! over wRPC, forwarded HTTP), with a [`CallErrorKind`] to match on.
//!
//! The kinds are part of the wire: a Lattice server that cannot produce results says why in
//! the `lattice-error` header as `{kind}: {message}` ([`CallError::header_value`]), and a
//! Lattice client reads the kind back from it ([`CallError::from_header`]). Some kinds are
//! only ever seen inside a host (a guest's memory limit, a stopped component); before an error
//! leaves the host, [`CallError::for_caller`] folds them into the kinds every peer knows.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// What went wrong with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallErrorKind {
    /// The caller's import has no link to a target.
    NotLinked,
    /// Nobody serves the target: no host runs it. Reported in milliseconds.
    NoResponders,
    /// The call's deadline (or the guest's max execution time) passed before it completed.
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
    /// In a host: the component exports no such interface or function (`Rejected` on the wire).
    NoSuchFunction,
    /// In a host: the arguments do not match the function's parameters (`Rejected`).
    BadArguments,
    /// In a host: the guest tried to grow its memory past its limit (`Trapped`).
    MemoryLimit,
    /// In a host: no instance could be made, e.g. the instance pool is exhausted (`Trapped`).
    Instantiate,
    /// In a host: the component was stopped while the call waited (`NoResponders`: another
    /// host may serve it).
    Stopped,
}

impl CallErrorKind {
    /// The kinds that travel between peers, in the order `from_header` tries them.
    const ON_THE_WIRE: [CallErrorKind; 10] = [
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

    /// The kind a caller outside the host sees.
    pub fn for_caller(self) -> CallErrorKind {
        match self {
            CallErrorKind::NoSuchFunction | CallErrorKind::BadArguments => CallErrorKind::Rejected,
            CallErrorKind::MemoryLimit | CallErrorKind::Instantiate => CallErrorKind::Trapped,
            CallErrorKind::Stopped => CallErrorKind::NoResponders,
            other => other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
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
            CallErrorKind::NoSuchFunction => "no such function",
            CallErrorKind::BadArguments => "bad arguments",
            CallErrorKind::MemoryLimit => "memory limit",
            CallErrorKind::Instantiate => "cannot instantiate",
            CallErrorKind::Stopped => "stopped",
        }
    }
}

impl CallErrorKind {
    /// The kind as a metric label's value (`error.type`): `as_str` in snake case.
    pub fn label(self) -> &'static str {
        match self {
            CallErrorKind::NotLinked => "not_linked",
            CallErrorKind::NoResponders => "no_responders",
            CallErrorKind::DeadlineExceeded => "deadline_exceeded",
            CallErrorKind::Trapped => "trapped",
            CallErrorKind::Decode => "decode_error",
            CallErrorKind::Rejected => "rejected",
            CallErrorKind::Transport => "transport_error",
            CallErrorKind::OutcomeUnknown => "outcome_unknown",
            CallErrorKind::Busy => "busy",
            CallErrorKind::TooLarge => "too_large",
            CallErrorKind::NoSuchFunction => "no_such_function",
            CallErrorKind::BadArguments => "bad_arguments",
            CallErrorKind::MemoryLimit => "memory_limit",
            CallErrorKind::Instantiate => "cannot_instantiate",
            CallErrorKind::Stopped => "stopped",
        }
    }
}

impl fmt::Display for CallErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed call: `kind()` for code, the message for people, and the underlying error (if
/// one caused it) as its `source()`.
#[derive(Debug, Clone)]
pub struct CallError {
    kind: CallErrorKind,
    message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl CallError {
    pub fn new(kind: CallErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Keeps `source` as the error's cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// A guest interrupted at its max execution time.
    pub fn execution_time(limit: Duration) -> Self {
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

    /// The same error as a caller outside the host sees it (see [`CallErrorKind::for_caller`]).
    pub fn for_caller(mut self) -> Self {
        self.kind = self.kind.for_caller();
        self
    }

    /// The `lattice-error` header's value: `{kind}: {message}`, with the kind a caller sees.
    pub fn header_value(&self) -> String {
        format!("{}: {}", self.kind.for_caller(), self.message)
    }

    /// Reads a `lattice-error` header (or any `{kind}: {message}` text a peer sent). A value
    /// without a known kind is a trap whose message is the whole value.
    pub fn from_header(value: &str) -> Self {
        for kind in CallErrorKind::ON_THE_WIRE {
            if let Some(rest) = value
                .strip_prefix(kind.as_str())
                .and_then(|r| r.strip_prefix(": "))
            {
                return Self::new(kind, rest);
            }
        }
        Self::new(CallErrorKind::Trapped, value)
    }
}

impl PartialEq for CallError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.message == other.message
    }
}

impl Eq for CallError {}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for CallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_labels_are_the_names_in_snake_case() {
        use CallErrorKind::*;
        let in_host = [
            NoSuchFunction,
            BadArguments,
            MemoryLimit,
            Instantiate,
            Stopped,
        ];
        for kind in CallErrorKind::ON_THE_WIRE.into_iter().chain(in_host) {
            assert_eq!(kind.label(), kind.as_str().replace(' ', "_"), "{kind:?}");
        }
    }

    #[test]
    fn header_values_read_back_with_their_kind() {
        for kind in CallErrorKind::ON_THE_WIRE {
            let e = CallError::new(kind, "why: with a colon");
            assert_eq!(CallError::from_header(&e.header_value()), e);
        }
        let local = CallError::new(CallErrorKind::MemoryLimit, "grew");
        let seen = CallError::from_header(&local.header_value());
        assert_eq!(seen.kind(), CallErrorKind::Trapped);
        assert_eq!(seen.message(), "grew");
        assert_eq!(
            CallError::from_header("something else").kind(),
            CallErrorKind::Trapped
        );
    }

    #[test]
    fn the_cause_is_the_source() {
        use std::error::Error;
        let io = std::io::Error::other("socket closed");
        let e = CallError::new(CallErrorKind::Transport, "publish").with_source(io);
        assert_eq!(
            e.source().map(|s| s.to_string()).as_deref(),
            Some("socket closed")
        );
    }
}
