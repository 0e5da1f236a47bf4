//! The wRPC 0.0.1 NATS exchange: invoke (client) and accept/respond (server).
//!
//! 1. The client subscribes its inbox `Rc` (handshake) and `Rc.results`, then publishes the
//!    first chunk of the encoded parameters to the invocation subject with reply-to `Rc`.
//!    Subscribing first means no reply can be missed.
//! 2. The server subscribes its own inbox `Rs.params`, then answers `Rc` with an empty message
//!    whose reply-to is `Rs`.
//! 3. The client sends the rest of the parameters on `Rs.params` (chunks up to the server's
//!    `max_payload`), then an empty message (end of stream).
//! 4. The server sends the results on `Rc.results`, then an empty message. A server that cannot
//!    produce results sends only the empty message; Lattice adds a `lattice-error` header
//!    saying why (other peers ignore it).
//!
//! Headers carry `source-id`, `link-name`, W3C `traceparent`, and `lattice-timeout-ms`, the
//! caller's remaining time budget (relative, so clock skew between hosts does not matter).
//! No NATS status other than "no responders" is expected; a missing handshake within the
//! deadline is "deadline exceeded".

use std::time::Duration;

use async_nats::{HeaderMap, Message, StatusCode};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::time::Instant;

use crate::codec::DecodeError;
use crate::error::{CallError, CallErrorKind};
use crate::subject;

/// Header with the reason a server could not produce results.
pub const ERROR_HEADER: &str = "lattice-error";
/// Header with the caller's remaining time budget in milliseconds.
pub const TIMEOUT_HEADER: &str = "lattice-timeout-ms";
/// Header with the calling component's id (as wasmCloud sends it).
pub const SOURCE_HEADER: &str = "source-id";
/// Header with the link name the call went through.
pub const LINK_HEADER: &str = "link-name";
/// W3C trace-context header.
pub const TRACEPARENT_HEADER: &str = "traceparent";
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

/// A header value: one line, bounded.
pub fn header_value(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    one_line.chars().take(1024).collect()
}

/// Invokes `func` of `instance` under `prefix` with the encoded `params`, and decodes the
/// results with `decode` as they arrive. Never waits past `deadline`.
#[allow(clippy::too_many_arguments)]
pub async fn invoke<T>(
    nats: &async_nats::Client,
    prefix: &str,
    instance: &str,
    func: &str,
    params: Bytes,
    mut headers: HeaderMap,
    deadline: Instant,
    decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
) -> Result<T, CallError> {
    let target = subject::invocation(prefix, instance, func);
    let rc = nats.new_inbox();
    let mut handshake = nats
        .subscribe(rc.clone())
        .await
        .map_err(|e| transport("cannot subscribe the reply inbox", e))?;
    let mut results = nats
        .subscribe(subject::results(&rc))
        .await
        .map_err(|e| transport("cannot subscribe the results inbox", e))?;
    let budget = deadline.saturating_duration_since(Instant::now());
    headers.insert(TIMEOUT_HEADER, budget.as_millis().to_string().as_str());
    let max = nats.server_info().max_payload.max(1024);
    let first_len = max
        .saturating_sub(rc.len() + header_len(&headers) + 64)
        .min(params.len());
    let mut rest = params;
    let first = rest.split_to(first_len);
    nats.publish_with_reply_and_headers(target.clone(), rc, headers, first)
        .await
        .map_err(|e| transport("cannot publish the invocation", e))?;

    let accepted = match tokio::time::timeout_at(deadline, handshake.next()).await {
        Err(_) => return Err(deadline_exceeded(&target, "handshake")),
        Ok(None) => return Err(transport("handshake", "subscription closed")),
        Ok(Some(m)) => m,
    };
    match accepted.status {
        Some(StatusCode::NO_RESPONDERS) => {
            return Err(CallError::new(
                CallErrorKind::NoResponders,
                format!("nobody serves {target}: is the target component running?"),
            ))
        }
        Some(code) if !code.is_success() => {
            return Err(transport("handshake", format!("NATS status {code}")))
        }
        _ => {}
    }
    let rs = accepted
        .reply
        .ok_or_else(|| transport("handshake", "peer did not specify a reply subject"))?;
    let param_subject = subject::params(&rs);
    while !rest.is_empty() {
        let chunk = rest.split_to(max.min(rest.len()));
        nats.publish(param_subject.clone(), chunk)
            .await
            .map_err(|e| transport("cannot send parameters", e))?;
    }
    nats.publish(param_subject, Bytes::new())
        .await
        .map_err(|e| transport("cannot end parameters", e))?;

    let mut buf = BytesMut::new();
    loop {
        let msg = match tokio::time::timeout_at(deadline, results.next()).await {
            Err(_) => return Err(deadline_exceeded(&target, "results")),
            Ok(None) => return Err(transport("results", "subscription closed")),
            Ok(Some(m)) => m,
        };
        if msg.payload.is_empty() {
            if let Some(err) = msg.headers.as_ref().and_then(|h| h.get(ERROR_HEADER)) {
                return Err(CallError::parse(err.as_str()));
            }
            return decode(&buf).map_err(|e| match e {
                DecodeError::Incomplete => CallError::new(
                    CallErrorKind::Trapped,
                    format!("{target} ended the call without complete results (its guest may have trapped)"),
                ),
                DecodeError::Invalid(m) => CallError::new(CallErrorKind::Decode, format!("results: {m}")),
            });
        }
        if buf.len() + msg.payload.len() > MAX_MESSAGE_BYTES {
            return Err(CallError::new(
                CallErrorKind::Rejected,
                format!("results exceed {MAX_MESSAGE_BYTES} bytes"),
            ));
        }
        buf.extend_from_slice(&msg.payload);
        match decode(&buf) {
            Ok(v) => return Ok(v),
            Err(DecodeError::Incomplete) => continue,
            Err(DecodeError::Invalid(m)) => {
                return Err(CallError::new(
                    CallErrorKind::Decode,
                    format!("results: {m}"),
                ))
            }
        }
    }
}

/// An invocation a server accepted (handshake done), waiting for its parameters.
pub struct Invocation {
    nats: async_nats::Client,
    pub instance: String,
    pub func: String,
    pub headers: HeaderMap,
    pub deadline: Instant,
    buffer: BytesMut,
    params: async_nats::Subscriber,
    results: String,
    params_ended: bool,
}

/// Accepts `msg` (received on `{prefix}.wrpc.0.0.1.>`): subscribes the parameter inbox, then
/// answers the handshake. The deadline is the caller's budget, capped at `max_time`.
pub async fn accept(
    nats: &async_nats::Client,
    prefix: &str,
    msg: Message,
    max_time: Duration,
) -> Result<Invocation, CallError> {
    let (instance, func) = subject::parse_invocation(prefix, msg.subject.as_str())
        .map(|(i, f)| (i.to_string(), f.to_string()))
        .ok_or_else(|| {
            CallError::new(
                CallErrorKind::Rejected,
                format!("not an invocation subject: {}", msg.subject),
            )
        })?;
    let reply = msg.reply.ok_or_else(|| {
        CallError::new(
            CallErrorKind::Rejected,
            "peer did not specify a reply subject",
        )
    })?;
    let headers = msg.headers.unwrap_or_default();
    let budget = headers
        .get(TIMEOUT_HEADER)
        .and_then(|v| v.as_str().parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(max_time)
        .min(max_time);
    let rs = nats.new_inbox();
    let params = nats
        .subscribe(subject::params(&rs))
        .await
        .map_err(|e| transport("cannot subscribe the parameter inbox", e))?;
    nats.publish_with_reply(reply.clone(), rs, Bytes::new())
        .await
        .map_err(|e| transport("cannot answer the handshake", e))?;
    Ok(Invocation {
        nats: nats.clone(),
        instance,
        func,
        headers,
        deadline: Instant::now() + budget,
        buffer: BytesMut::from(&msg.payload[..]),
        params,
        results: subject::results(&reply),
        params_ended: false,
    })
}

impl Invocation {
    /// Reads parameters until `decode` accepts them (or the caller ends the stream).
    pub async fn read_params<T>(
        &mut self,
        decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<T, CallError> {
        loop {
            match decode(&self.buffer) {
                Ok(v) => return Ok(v),
                Err(DecodeError::Invalid(m)) => {
                    return Err(CallError::new(
                        CallErrorKind::Decode,
                        format!("parameters: {m}"),
                    ))
                }
                Err(DecodeError::Incomplete) if self.params_ended => {
                    return Err(CallError::new(
                        CallErrorKind::Decode,
                        "parameters ended before a complete value",
                    ))
                }
                Err(DecodeError::Incomplete) => {}
            }
            let msg = match tokio::time::timeout_at(self.deadline, self.params.next()).await {
                Err(_) => return Err(deadline_exceeded(&self.func, "parameters")),
                Ok(None) => return Err(transport("parameters", "subscription closed")),
                Ok(Some(m)) => m,
            };
            if msg.payload.is_empty() {
                self.params_ended = true;
                continue;
            }
            if self.buffer.len() + msg.payload.len() > MAX_MESSAGE_BYTES {
                return Err(CallError::new(
                    CallErrorKind::Rejected,
                    format!("parameters exceed {MAX_MESSAGE_BYTES} bytes"),
                ));
            }
            self.buffer.extend_from_slice(&msg.payload);
        }
    }

    /// Sends the encoded results, then ends the stream.
    pub async fn respond(&self, results: Bytes) -> Result<(), CallError> {
        let max = self.nats.server_info().max_payload.max(1024);
        let mut rest = results;
        while !rest.is_empty() {
            let chunk = rest.split_to(max.min(rest.len()));
            self.nats
                .publish(self.results.clone(), chunk)
                .await
                .map_err(|e| transport("cannot send results", e))?;
        }
        self.nats
            .publish(self.results.clone(), Bytes::new())
            .await
            .map_err(|e| transport("cannot end results", e))
    }

    /// Ends the call without results, saying why.
    pub async fn fail(&self, err: &CallError) {
        let mut headers = HeaderMap::new();
        headers.insert(ERROR_HEADER, header_value(&err.to_string()).as_str());
        if let Err(e) = self
            .nats
            .publish_with_headers(self.results.clone(), headers, Bytes::new())
            .await
        {
            tracing::warn!(error = %e, "cannot report a failed call");
        }
    }
}
