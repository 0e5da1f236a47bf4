//! The client side of calls: one shared inbox per client, calls filed under random ids, and
//! plain calls that read their own replies off the inbox (see `Replies`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::{HeaderMap, StatusCode};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::codec::DecodeError;
use crate::error::{CallError, CallErrorKind};
use crate::frames::{Frames, Progress};
use crate::subject;

use super::headers::{
    deadline_exceeded, header, header_len, nats_failed, transport, ERROR_HEADER, MAX_MESSAGE_BYTES,
    SERVER_HEADER, STREAM_HEADER, TIMEOUT_HEADER, WHOLE_HEADER,
};
use super::inbox::{check_host, CallRoute, CallSlot, ClientInner, Replies};
use super::stream::{
    send_body, send_nested, AbortOnDrop, BodySource, ResultStream, StreamWatch, STREAM_WINDOW,
};
use super::watchdog::{RoundTrips, Watchdog};

/// One invocation to send: where to, what, and by when. A retry sends the same value again,
/// so it is cheap to clone (the parameters are shared `Bytes`).
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// The target's subject prefix, `{lattice}.{component}` for a Lattice component (see
    /// [`crate::subject::component_prefix`]).
    pub prefix: &'a str,
    /// The exported instance, e.g. `wasi:http/incoming-handler@0.2.0`.
    pub instance: &'a str,
    pub func: &'a str,
    /// The encoded parameters.
    pub params: Bytes,
    /// Headers to send with the invocation; the client adds its own (the time budget).
    pub headers: HeaderMap,
    /// The call is never waited for past this instant.
    pub deadline: Instant,
}

impl<'a> Call<'a> {
    /// A call of `func` of `instance` under `prefix`, with no headers of its own.
    pub fn new(
        prefix: &'a str,
        instance: &'a str,
        func: &'a str,
        params: Bytes,
        deadline: Instant,
    ) -> Self {
        Self {
            prefix,
            instance,
            func,
            params,
            headers: HeaderMap::new(),
            deadline,
        }
    }

    /// The same call with `headers` sent along.
    pub fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }
}

/// How a call's results come, and its body goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode<'p> {
    /// A value and nothing after it.
    Plain,
    /// A value, then Lattice's result chunks with credit (and a body after the parameters).
    Streamed,
    /// A value with a `stream<u8>` at this nested path of the results (and of the parameters,
    /// for a body), as upstream peers send it.
    Nested(&'p str),
}

/// A wRPC client over one NATS connection. All its calls share one wildcard inbox
/// subscription (`{inbox}.>`), demultiplexed by call, so a call costs no SUB/UNSUB round of
/// its own on the server: the same trick NATS request-reply uses.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl Client {
    /// A client that waits for each call until its deadline.
    pub fn new(nats: async_nats::Client) -> Self {
        Self::build(nats, None)
    }

    /// A client that gives up on calls whose host is gone (see [`Watchdog`]).
    pub fn with_watchdog(nats: async_nats::Client, watchdog: Watchdog) -> Self {
        Self::build(nats, Some(watchdog))
    }

    fn build(nats: async_nats::Client, watchdog: Option<Watchdog>) -> Self {
        Self {
            inner: Arc::new(ClientInner {
                watchdog,
                round_trips: Mutex::new(RoundTrips::default()),
                calls: Mutex::new(HashMap::new()),
                inbox: nats.new_inbox(),
                led: tokio::sync::OnceCell::new(),
                stream_inbox: nats.new_inbox(),
                demux: tokio::sync::OnceCell::new(),
                nats,
            }),
        }
    }

    pub fn nats(&self) -> &async_nats::Client {
        &self.inner.nats
    }

    /// How this client checks on hosts, if it does.
    pub fn watchdog(&self) -> Option<&Watchdog> {
        self.inner.watchdog.as_ref()
    }

    /// Subscribes the inbox of plain calls once.
    async fn led(&self) -> Result<(), CallError> {
        let inner = &self.inner;
        inner
            .led
            .get_or_try_init(|| async {
                let sub = inner
                    .nats
                    .subscribe(format!("{}.>", inner.inbox))
                    .await
                    .map_err(|e| nats_failed("cannot subscribe the reply inbox", e))?;
                Ok::<_, CallError>(tokio::sync::Mutex::new(sub))
            })
            .await
            .map(drop)
    }

    /// Subscribes the inbox of streamed calls once and routes each reply to its call.
    async fn demux(&self) -> Result<(), CallError> {
        let inner = &self.inner;
        inner
            .demux
            .get_or_try_init(|| async {
                let mut sub = inner
                    .nats
                    .subscribe(format!("{}.>", inner.stream_inbox))
                    .await
                    .map_err(|e| nats_failed("cannot subscribe the reply inbox", e))?;
                let weak = Arc::downgrade(&self.inner);
                let prefix_len = inner.stream_inbox.len() + 1;
                Ok::<_, CallError>(tokio::spawn(async move {
                    while let Some(msg) = sub.next().await {
                        let Some(inner) = weak.upgrade() else { return };
                        inner.route(msg, prefix_len, None);
                    }
                }))
            })
            .await
            .map(drop)
    }

    /// Makes `call` and decodes its results with `decode` as they arrive. Never waits past
    /// the call's deadline.
    pub async fn invoke<T>(
        &self,
        call: Call<'_>,
        decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<T, CallError> {
        self.start(call, decode, Mode::Plain, None)
            .await
            .map(|(v, _)| v)
    }

    /// Like [`Client::invoke`], for a function whose results are a value followed by a
    /// stream of byte chunks (Lattice's forwarded HTTP responses): returns the value as soon
    /// as it arrived, and the chunks to read from [`ResultStream`]. The server sends at most
    /// [`STREAM_WINDOW`] chunks ahead of what the caller read, so a slow reader holds back a
    /// fast writer instead of being flooded. With `body`, the parameters are followed by its
    /// chunks, sent as the server takes them (the same window the other way), while the
    /// results come in. Lattice servers only.
    pub async fn invoke_streaming<T>(
        &self,
        call: Call<'_>,
        decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
        body: Option<BodySource>,
    ) -> Result<(T, ResultStream), CallError> {
        let (value, rest) = self.start(call, decode, Mode::Streamed, body).await?;
        let rest =
            rest.ok_or_else(|| transport("results", "a streamed call ended without its stream"))?;
        Ok((value, rest))
    }

    /// Like [`Client::invoke_streaming`], for an upstream function whose results hold a
    /// `stream<u8>` that follows on nested `path` (wasmCloud's `wrpc:http` response body, at
    /// `0.0`): returns the value, and that stream's data to read from [`ResultStream`]. With
    /// `body`, the parameters' `stream<u8>` at the same `path` (the request body) is sent
    /// there after the handshake, as its chunks come: upstream peers take no credit, so
    /// NATS and the connection's buffer are what push back. If the value says the stream
    /// came whole in place, nothing follows: drop the [`ResultStream`].
    pub async fn invoke_nested<T>(
        &self,
        call: Call<'_>,
        decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
        path: &str,
        body: Option<BodySource>,
    ) -> Result<(T, ResultStream), CallError> {
        let (value, rest) = self.start(call, decode, Mode::Nested(path), body).await?;
        let rest =
            rest.ok_or_else(|| transport("results", "a streamed call ended without its stream"))?;
        Ok((value, rest))
    }

    /// Makes the call and waits for its (first) value: the exchange both kinds of call share.
    /// Only a streamed call gets the rest of its results as a [`ResultStream`]: a plain
    /// call's value is all there is, and building one (a client clone, a subject) showed in
    /// profiles of short calls.
    async fn start<T>(
        &self,
        call: Call<'_>,
        decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
        mode: Mode<'_>,
        body: Option<BodySource>,
    ) -> Result<(T, Option<ResultStream>), CallError> {
        let streaming = mode != Mode::Plain;
        let Call {
            prefix,
            instance,
            func,
            params,
            mut headers,
            deadline,
        } = call;
        if streaming {
            self.demux().await?;
        } else {
            self.led().await?;
        }
        let inner = &self.inner;
        let nats = &inner.nats;
        let target = subject::invocation(prefix, instance, func);
        let (tx, rx) = mpsc::unbounded_channel();
        // Only a Lattice call with a body takes credit: plain calls allocate nothing for it.
        let credits = (body.is_some() && mode == Mode::Streamed)
            .then(|| Arc::new(tokio::sync::Semaphore::new(STREAM_WINDOW as usize)));
        let route = CallRoute {
            tx,
            credits: credits.clone(),
        };
        let id = inner.register(route);
        let mut rx = Replies {
            rx,
            led: (!streaming).then(|| (inner.clone(), id)),
        };
        let slot = CallSlot {
            inner: inner.clone(),
            id,
        };
        let inbox = if streaming {
            &inner.stream_inbox
        } else {
            &inner.inbox
        };
        let rc = format!("{inbox}.{id}");
        // `Rc.results`, told apart without making the subject (a whole reply never needs it).
        let is_results = |s: &str| s.strip_prefix(rc.as_str()) == Some(".results");
        // Where an upstream peer sends the nested stream, and what of it came early.
        let nested = match mode {
            Mode::Nested(path) => Some(subject::nested(&subject::results(&rc), path)),
            _ => None,
        };
        let mut early = std::collections::VecDeque::new();

        let budget = deadline.saturating_duration_since(Instant::now());
        let budget_ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX);
        headers.insert(TIMEOUT_HEADER, budget_ms.to_string().as_str());
        if streaming {
            headers.insert(STREAM_HEADER, "1");
        }
        let max = nats.max_payload().max(1024);
        let first_len = max
            .saturating_sub(rc.len() + header_len(&headers) + 64)
            .min(params.len());
        let mut rest = params;
        let first = rest.split_to(first_len);
        nats.publish_with_reply_and_headers(target.clone(), rc.clone(), headers, first)
            .await
            .map_err(|e| nats_failed("cannot publish the invocation", e))?;

        let mut handshaken = false;
        // Who accepted the call (Lattice hosts say so in the handshake), and when to check
        // next that it is still alive.
        let mut accepted_by: Option<String> = None;
        let mut finished_seen = false;
        let started = Instant::now();
        let mut next_probe = deadline;
        let patience = match &inner.watchdog {
            Some(w) => inner
                .round_trips
                .lock()
                .map(|r| r.timeout(w.min_timeout))
                .unwrap_or(w.min_timeout),
            None => Duration::ZERO,
        };
        let mut results = Frames::new("results", &[], MAX_MESSAGE_BYTES);
        let mut server_inbox: Option<String> = None;
        // Sends the call's body, if it has one.
        let mut sender: Option<AbortOnDrop> = None;
        loop {
            let wake = match (&self.inner.watchdog, handshaken) {
                (Some(_), false) => deadline.min(started + patience),
                (Some(_), true) if accepted_by.is_some() => deadline.min(next_probe),
                _ => deadline,
            };
            let msg = match tokio::time::timeout_at(wake, rx.recv()).await {
                Ok(Some(m)) => m,
                Ok(None) => return Err(transport("reply inbox", "subscription closed")),
                Err(_) if Instant::now() >= deadline => {
                    let waiting_for = if handshaken { "results" } else { "handshake" };
                    return Err(deadline_exceeded(&target, waiting_for));
                }
                Err(_) if !handshaken => {
                    return Err(CallError::new(
                        CallErrorKind::OutcomeUnknown,
                        format!(
                            "nobody acknowledged the call to {target} within {:?}: the host that took it may be down",
                            patience
                        ),
                    ))
                }
                Err(_) => {
                    let (Some(w), Some(host)) = (&self.inner.watchdog, &accepted_by) else {
                        continue;
                    };
                    let checked = check_host(w, host, &rc, patience, &mut finished_seen, &mut rx);
                    match checked.await {
                        Ok(Some(m)) => m,
                        Ok(None) => {
                            next_probe = Instant::now() + w.probe_every.min(patience);
                            continue;
                        }
                        Err(why) => {
                            return Err(CallError::new(
                                CallErrorKind::OutcomeUnknown,
                                format!("host {host} accepted the call to {target}, then {why}"),
                            ))
                        }
                    }
                }
            };
            if nested.as_deref() == Some(msg.subject.as_str()) {
                early.push_back(msg);
                continue;
            }
            if msg.subject.ends_with(".whole") && !streaming {
                // Handshake, results and their end in one message.
                inner.observe_round_trip(started);
                results.push(&msg.payload)?;
                results.push(&[])?;
            } else if !is_results(msg.subject.as_str()) {
                // The handshake (or a NATS status about the invocation).
                match msg.status {
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
                if handshaken {
                    continue;
                }
                handshaken = true;
                accepted_by = header(msg.headers.as_ref(), SERVER_HEADER).map(str::to_string);
                if let Some(w) = &self.inner.watchdog {
                    next_probe = Instant::now() + w.probe_every;
                }
                inner.observe_round_trip(started);
                let whole = header(msg.headers.as_ref(), WHOLE_HEADER);
                if streaming || whole.is_none() {
                    let rs = msg.reply.ok_or_else(|| {
                        transport("handshake", "peer did not specify a reply subject")
                    })?;
                    server_inbox = Some(rs.to_string());
                    // A Lattice host that had every parameter in the first message listens for
                    // no more (see `Invocation::handshake`): the end of the stream would only be
                    // one more message on the wire. Upstream peers get it.
                    if rest.is_empty() && accepted_by.is_some() && body.is_none() {
                        continue;
                    }
                    let param_subject = subject::params(&rs);
                    while !rest.is_empty() {
                        let chunk = rest.split_to(max.min(rest.len()));
                        nats.publish(param_subject.clone(), chunk)
                            .await
                            .map_err(|e| nats_failed("cannot send parameters", e))?;
                    }
                    let stream = body.as_ref().and_then(BodySource::take);
                    match (stream, &credits, mode) {
                        (Some(stream), Some(credits), _) => {
                            let send =
                                send_body(nats.clone(), param_subject, stream, credits.clone());
                            let send = tokio::time::timeout_at(deadline, send);
                            sender = Some(AbortOnDrop(tokio::spawn(async move {
                                let _ = send.await;
                            })));
                        }
                        (stream, _, _) => {
                            // End of the parameter stream, as upstream peers expect.
                            nats.publish(param_subject.clone(), Bytes::new())
                                .await
                                .map_err(|e| nats_failed("cannot end parameters", e))?;
                            if let (Some(stream), Mode::Nested(path)) = (stream, mode) {
                                let to = subject::nested(&param_subject, path);
                                let send = send_nested(nats.clone(), to, stream);
                                let send = tokio::time::timeout_at(deadline, send);
                                sender = Some(AbortOnDrop(tokio::spawn(async move {
                                    let _ = send.await;
                                })));
                            }
                        }
                    }
                    continue;
                }
                // A failure in place of the handshake: nothing follows.
                let err = header(msg.headers.as_ref(), ERROR_HEADER);
                return Err(err.map_or_else(
                    || transport("handshake", "marked whole without an error"),
                    CallError::from_header,
                ));
            } else {
                if msg.payload.is_empty() {
                    if let Some(err) = header(msg.headers.as_ref(), ERROR_HEADER) {
                        return Err(CallError::from_header(err));
                    }
                }
                results.push(&msg.payload)?;
            }
            match results.decode(&decode) {
                Ok(Progress::Done(v)) if !streaming => return Ok((v, None)),
                Ok(Progress::Done(v)) => {
                    let rest = ResultStream {
                        nats: nats.clone(),
                        rx,
                        _slot: slot,
                        results: nested.clone().unwrap_or_else(|| subject::results(&rc)),
                        credit: server_inbox
                            .as_deref()
                            .filter(|_| mode == Mode::Streamed)
                            .map(subject::credit),
                        nested: nested
                            .is_some()
                            .then(crate::wrpc_http::ByteChunks::default),
                        early: std::mem::take(&mut early),
                        deadline,
                        ended: results.ended() && nested.is_none(),
                        unacknowledged: false,
                        _sender: sender,
                        watch: match (&inner.watchdog, accepted_by) {
                            (Some(w), Some(host)) if streaming => Some(StreamWatch {
                                watchdog: w.clone(),
                                host,
                                rc,
                                patience,
                                finished_seen: false,
                            }),
                            _ => None,
                        },
                    };
                    return Ok((v, Some(rest)));
                }
                Ok(Progress::More) => continue,
                // A stream ended short: the server gave up mid-call.
                Err(e) if results.ended() => {
                    return Err(CallError::new(
                        CallErrorKind::Trapped,
                        format!("{target} ended the call without complete results (its guest may have trapped): {e}"),
                    ))
                }
                Err(e) => return Err(e),
            }
        }
    }
}
