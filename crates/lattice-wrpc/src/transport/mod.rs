//! The wRPC 0.0.1 NATS exchange: invoke (client) and accept/respond (server).
//!
//! 1. The client (subscribed once to `{inbox}.>`, so it already receives `Rc` and
//!    `Rc.results` for any call `Rc` under it) publishes the first chunk of the encoded
//!    parameters to the invocation subject with reply-to `Rc`. No reply can be missed.
//!    A plain call's replies are read off that subscription by the calls waiting for them
//!    (see [`Replies`]); a streamed call's by a task of the client's.
//! 2. The server answers `Rc` with an empty message whose reply-to is its inbox `Rs`; when more
//!    parameters are due it subscribes `Rs.params` first.
//! 3. The client sends the rest of the parameters on `Rs.params` (chunks up to the server's
//!    `max_payload`), then an empty message (end of stream).
//! 4. The server sends the results on `Rc.results`, then an empty message. A server that cannot
//!    produce results sends only the empty message; Lattice adds a `lattice-error` header
//!    saying why (other peers ignore it).
//!
//! Between Lattice peers a short call takes one message each way: a client that sends
//! `lattice-timeout-ms` (only Lattice clients do) and not `lattice-stream: 1` (the mark of a
//! streamed call) lets the server answer a call that is done before its handshake was due
//! with one message that stands for the handshake, all the results and their end: the
//! results on `Rc.whole` (no headers), or the error as the handshake marked
//! `lattice-whole: 1`. Upstream peers never send the header, so they always get steps 2-4.
//! Plain calls say it with the header they need anyway, one header fewer to write, route
//! and parse per call (`scripts/bench wrpc` measures a request-reply with one header).
//!
//! Headers carry `source-id`, `link-name`, W3C `traceparent`, and `lattice-timeout-ms`, the
//! caller's remaining time budget (relative, so clock skew between hosts does not matter).
//! No NATS status other than "no responders" is expected; a missing handshake within the
//! deadline is "deadline exceeded".

//! # Layout
//! - `client`: [`Client`]: plain and streamed calls, retried by nothing (see `retry`).
//! - `inbox`: a client's shared inbox, the calls in flight, and how each gets its replies.
//! - `stream`: bodies streamed after a call's value, both ways, with per-chunk credit.
//! - `watchdog`: [`Watchdog`], how a client notices that its call's host is gone.
//! - `server`: [`accept`] and [`Invocation`], a server's side of one call.
//! - here: the headers (defined in `lattice_proto::wrpc`) and what every side shares.

use async_nats::HeaderMap;

use crate::error::{CallError, CallErrorKind};

mod client;
mod inbox;
mod server;
mod stream;
mod watchdog;

pub use client::Client;
pub use server::{accept, Invocation};
pub use stream::{BodyError, BodySource, ResultStream, STREAM_CHUNK, STREAM_WINDOW};
pub use watchdog::{CallState, Liveness, Watchdog};

pub use lattice_proto::wrpc::{
    CALLER_HEADER, ERROR_HEADER, LINK_HEADER, SERVER_HEADER, SOURCE_HEADER, STREAM_HEADER,
    TIMEOUT_HEADER, TRACEPARENT_HEADER, WHOLE_HEADER,
};

/// Largest parameters or results a peer accumulates for one call.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

fn transport(what: &str, e: impl std::fmt::Display) -> CallError {
    CallError::new(CallErrorKind::Transport, format!("{what}: {e}"))
}

fn deadline_exceeded(subject: &str, waiting_for: &str) -> CallError {
    CallError::new(
        CallErrorKind::DeadlineExceeded,
        format!("no {waiting_for} from {subject} before the call's deadline"),
    )
}

/// Bytes a header block adds to a NATS message.
fn header_len(headers: &HeaderMap) -> usize {
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
