//! Headers of the exchange (named in `lattice_proto::wrpc`), reading and writing them, and
//! the errors every side of a call makes alike.

use async_nats::HeaderMap;

use crate::error::{CallError, CallErrorKind};

pub use lattice_proto::wrpc::{
    CALLER_HEADER, ERROR_HEADER, LINK_HEADER, SERVER_HEADER, SOURCE_HEADER, STREAM_HEADER,
    TIMEOUT_HEADER, TRACEPARENT_HEADER, WHOLE_HEADER,
};

/// Largest parameters or results a peer accumulates for one call.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

pub(super) fn transport(what: &str, e: impl std::fmt::Display) -> CallError {
    CallError::new(CallErrorKind::Transport, format!("{what}: {e}"))
}

/// A transport error caused by NATS failing underneath, kept as its `source()`.
pub(super) fn nats_failed(
    what: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> CallError {
    transport(what, &e).with_source(e)
}

pub(super) fn deadline_exceeded(subject: &str, waiting_for: &str) -> CallError {
    CallError::new(
        CallErrorKind::DeadlineExceeded,
        format!("no {waiting_for} from {subject} before the call's deadline"),
    )
}

/// Bytes a header block adds to a NATS message.
pub(super) fn header_len(headers: &HeaderMap) -> usize {
    let mut n = b"NATS/1.0\r\n\r\n".len();
    for (k, vs) in headers.iter() {
        let k: &[u8] = k.as_ref();
        for v in vs {
            n += k.len() + 4 + v.as_str().len();
        }
    }
    n
}

/// The (first) value of header `name` in `headers`, found without building a `HeaderName`:
/// `HeaderMap::get` allocates one per lookup for names NATS does not define, and a served
/// call looks up a few on its way.
pub fn header<'h>(headers: Option<&'h HeaderMap>, name: &str) -> Option<&'h str> {
    let (_, values) = headers?.iter().find(|(k, _)| {
        let k: &str = k.as_ref();
        k == name
    })?;
    values.first().map(|v| v.as_str())
}

/// A header value: one line, bounded.
pub fn header_value(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    one_line.chars().take(1024).collect()
}
