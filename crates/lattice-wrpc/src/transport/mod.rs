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
//! Upstream functions whose values hold a `stream<u8>` (wasmCloud's `wrpc:http`) send it on a
//! nested path of the parameters or results (`Rs.params.0.0`, `Rc.results.0.0`) as `list<u8>`
//! chunks, the last one empty: [`Invocation::nested_bytes`] and
//! [`Invocation::respond_nested`] serve them, [`Client::invoke_nested`] calls them.
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
//! - `headers`: the headers (named in `lattice_proto::wrpc`), reading and writing them, and
//!   the errors every side makes alike.

mod client;
mod headers;
mod inbox;
mod server;
mod stream;
mod watchdog;

pub use client::{Call, Client};
pub use headers::{
    header, header_value, CALLER_HEADER, ERROR_HEADER, LINK_HEADER, MAX_MESSAGE_BYTES,
    SERVER_HEADER, SOURCE_HEADER, STREAM_HEADER, TIMEOUT_HEADER, TRACEPARENT_HEADER, WHOLE_HEADER,
};
pub use server::{accept, Invocation};
pub use stream::{BodyError, BodySource, ResultStream, STREAM_CHUNK, STREAM_WINDOW};
pub use watchdog::{CallState, Liveness, Watchdog};
