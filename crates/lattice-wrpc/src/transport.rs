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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::{HeaderMap, Message, StatusCode};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::codec::DecodeError;
use crate::error::{CallError, CallErrorKind};
use crate::frames::{Frames, Progress};
use crate::subject;

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

/// A wRPC client over one NATS connection. All its calls share one wildcard inbox
/// subscription (`{inbox}.>`), demultiplexed by call, so a call costs no SUB/UNSUB round of
/// its own on the server: the same trick NATS request-reply uses.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

/// What a host says about a call it accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// The call is still running there.
    Running,
    /// The host is done with it (its results are on their way, or were lost).
    Finished,
    /// The host is gone or did not answer in time.
    HostGone,
}

/// Asks host `id` about the call whose reply subject is `reply`, within `timeout` (see
/// [`Watchdog`]).
pub type Liveness =
    Arc<dyn Fn(String, String, Duration) -> BoxFuture<'static, CallState> + Send + Sync>;

/// How a client notices that the host running its call is gone, rather than waiting out the
/// call's deadline. A call nobody acknowledges in time, or whose host is gone or finished it
/// without its results arriving (asked with `probe` every `probe_every` while results are
/// due), ends with [`CallErrorKind::OutcomeUnknown`].
///
/// "In time" adapts to the link like TCP's retransmission timeout: the smoothed handshake
/// round trip plus four times its variation, never less than `min_timeout`. A slow but
/// working link (a leaf node across a WAN) so stays usable, and a dead host on a fast one is
/// noticed in about `min_timeout`.
#[derive(Clone)]
pub struct Watchdog {
    pub min_timeout: Duration,
    pub probe_every: Duration,
    pub probe: Liveness,
}

/// Round-trip estimate of handshakes (RFC 6298's smoothing, in seconds).
#[derive(Debug, Default)]
struct RoundTrips {
    srtt: f64,
    rttvar: f64,
    samples: u64,
}

impl RoundTrips {
    fn observe(&mut self, rtt: Duration) {
        let r = rtt.as_secs_f64();
        if self.samples == 0 {
            self.srtt = r;
            self.rttvar = r / 2.0;
        } else {
            self.rttvar = 0.75 * self.rttvar + 0.25 * (self.srtt - r).abs();
            self.srtt = 0.875 * self.srtt + 0.125 * r;
        }
        self.samples += 1;
    }

    fn timeout(&self, min: Duration) -> Duration {
        min.max(Duration::from_secs_f64(self.srtt + 4.0 * self.rttvar))
    }
}

struct ClientInner {
    nats: async_nats::Client,
    watchdog: Option<Watchdog>,
    round_trips: Mutex<RoundTrips>,
    calls: Mutex<HashMap<u64, CallRoute>>,
    /// Inbox of plain calls, read by the calls themselves (see [`Replies`]).
    inbox: String,
    led: tokio::sync::OnceCell<tokio::sync::Mutex<async_nats::Subscriber>>,
    /// Inbox of streamed calls, read by the demultiplexer task: their body's credit must
    /// keep coming while nobody waits for their results.
    stream_inbox: String,
    demux: tokio::sync::OnceCell<tokio::task::JoinHandle<()>>,
}

impl ClientInner {
    /// Files a new call under a random id: a call's reply subjects (`{inbox}.{id}…`) cannot be
    /// guessed from another call's, so a peer that saw one cannot forge replies or stream
    /// credit for the next.
    fn register(&self, route: CallRoute) -> u64 {
        let Ok(mut calls) = self.calls.lock() else {
            return rand::random();
        };
        loop {
            let id = rand::random::<u64>();
            if let std::collections::hash_map::Entry::Vacant(e) = calls.entry(id) {
                e.insert(route);
                return id;
            }
        }
    }

    /// Hands `msg` (received on `{inbox}.>`, `inbox` being `prefix_len - 1` bytes long) to
    /// the call it is for. Returns it instead if that call is `me`. Late replies of calls
    /// that ended are dropped.
    fn route(&self, msg: Message, prefix_len: usize, me: Option<u64>) -> Option<Message> {
        let (id, rest) = msg
            .subject
            .get(prefix_len..)
            .map(|rest| rest.split_once('.').unwrap_or((rest, "")))?;
        let id = id.parse::<u64>().ok()?;
        if Some(id) == me {
            return Some(msg);
        }
        let route = self.calls.lock().ok()?.get(&id).cloned()?;
        if rest == "credit" {
            // Never more than a window ahead, whoever sends credit: extra (forged or
            // duplicated) credit cannot make the body outrun its reader.
            if let Some(c) = route
                .credits
                .as_ref()
                .filter(|c| c.available_permits() < STREAM_WINDOW as usize)
            {
                c.add_permits(1)
            }
        } else {
            drop(route.tx.send(msg));
        }
        None
    }

    /// Counts the round trip of a handshake sent at `started` into the watchdog's patience
    /// (see [`Watchdog`]); without a watchdog, reads no clock.
    fn observe_round_trip(&self, started: Instant) {
        if self.watchdog.is_some() {
            if let Ok(mut r) = self.round_trips.lock() {
                r.observe(started.elapsed());
            }
        }
    }
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        if let Some(task) = self.demux.get() {
            task.abort();
        }
    }
}

/// Where the demultiplexer sends what arrives for one call.
#[derive(Clone)]
struct CallRoute {
    /// Handshake and results.
    tx: mpsc::UnboundedSender<Message>,
    /// Credit for the chunks of the call's body, if it has one (see
    /// [`Client::invoke_streaming`]): counted here, so it keeps flowing while nobody reads the
    /// call's results.
    credits: Option<Arc<tokio::sync::Semaphore>>,
}

/// Unregisters a call when it ends, however it ends.
struct CallSlot {
    inner: Arc<ClientInner>,
    id: u64,
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        if let Ok(mut calls) = self.inner.calls.lock() {
            calls.remove(&self.id);
        }
    }
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
                    .map_err(|e| transport("cannot subscribe the reply inbox", e))?;
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
                    .map_err(|e| transport("cannot subscribe the reply inbox", e))?;
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

    /// Invokes `func` of `instance` under `prefix` with the encoded `params`, and decodes the
    /// results with `decode` as they arrive. Never waits past `deadline`.
    #[allow(clippy::too_many_arguments)]
    pub async fn invoke<T>(
        &self,
        prefix: &str,
        instance: &str,
        func: &str,
        params: Bytes,
        headers: HeaderMap,
        deadline: Instant,
        decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<T, CallError> {
        let call = self.start(
            prefix, instance, func, params, headers, deadline, decode, false, None,
        );
        call.await.map(|(v, _)| v)
    }

    /// Like [`Client::invoke`], for a function whose results are a value followed by a
    /// stream of byte chunks (Lattice's forwarded HTTP responses): returns the value as soon
    /// as it arrived, and the chunks to read from [`ResultStream`]. The server sends at most
    /// [`STREAM_WINDOW`] chunks ahead of what the caller read, so a slow reader holds back a
    /// fast writer instead of being flooded. With `body`, the parameters are followed by its
    /// chunks, sent as the server takes them (the same window the other way), while the
    /// results come in. Lattice servers only.
    #[allow(clippy::too_many_arguments)]
    pub async fn invoke_streaming<T>(
        &self,
        prefix: &str,
        instance: &str,
        func: &str,
        params: Bytes,
        headers: HeaderMap,
        deadline: Instant,
        decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
        body: Option<BodySource>,
    ) -> Result<(T, ResultStream), CallError> {
        let (value, rest) = self
            .start(
                prefix, instance, func, params, headers, deadline, decode, true, body,
            )
            .await?;
        let rest =
            rest.ok_or_else(|| transport("results", "a streamed call ended without its stream"))?;
        Ok((value, rest))
    }

    /// Makes the call and waits for its (first) value: the exchange both kinds of call share.
    /// Only a streamed call gets the rest of its results as a [`ResultStream`]: a plain
    /// call's value is all there is, and building one (a client clone, a subject) showed in
    /// profiles of short calls.
    #[allow(clippy::too_many_arguments)]
    async fn start<T>(
        &self,
        prefix: &str,
        instance: &str,
        func: &str,
        params: Bytes,
        mut headers: HeaderMap,
        deadline: Instant,
        decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
        streaming: bool,
        body: Option<BodySource>,
    ) -> Result<(T, Option<ResultStream>), CallError> {
        if streaming {
            self.demux().await?;
        } else {
            self.led().await?;
        }
        let inner = &self.inner;
        let nats = &inner.nats;
        let target = subject::invocation(prefix, instance, func);
        let (tx, rx) = mpsc::unbounded_channel();
        // Only a call with a body takes credit: plain calls allocate nothing for it.
        let credits = body
            .is_some()
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
            .map_err(|e| transport("cannot publish the invocation", e))?;

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
                            .map_err(|e| transport("cannot send parameters", e))?;
                    }
                    if let (Some(stream), Some(credits)) =
                        (body.as_ref().and_then(BodySource::take), &credits)
                    {
                        let send = send_body(nats.clone(), param_subject, stream, credits.clone());
                        let send = tokio::time::timeout_at(deadline, send);
                        sender = Some(AbortOnDrop(tokio::spawn(async move {
                            let _ = send.await;
                        })));
                        continue;
                    }
                    // End of the parameter stream, as upstream peers expect.
                    nats.publish(param_subject, Bytes::new())
                        .await
                        .map_err(|e| transport("cannot end parameters", e))?;
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
                        results: subject::results(&rc),
                        credit: server_inbox
                            .as_deref()
                            .filter(|_| streaming)
                            .map(subject::credit),
                        deadline,
                        ended: results.ended(),
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

/// Chunks a server streams after a call's value, at most this many ahead of the reader.
pub const STREAM_WINDOW: u64 = 16;
/// Largest chunk of a result stream (capped by the server's `max_payload`).
pub const STREAM_CHUNK: usize = 64 << 10;
/// Credit payload by which a reader that lost interest stops the stream.
const CREDIT_STOP: &[u8] = b"stop";

/// A body to stream after a call's parameters (see [`Client::invoke_streaming`]): shared
/// by the attempts of one call, the first one the server accepts takes it.
#[derive(Clone)]
pub struct BodySource(Arc<Mutex<Option<Chunks>>>);

/// Why a body being streamed broke off (an HTTP body's own error, say).
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A body as chunks of bytes, or the reason it broke off.
type Chunks = BoxStream<'static, Result<Bytes, BodyError>>;

impl BodySource {
    pub fn new(
        stream: impl futures::Stream<Item = Result<Bytes, BodyError>> + Send + 'static,
    ) -> Self {
        Self(Arc::new(Mutex::new(Some(Box::pin(stream)))))
    }

    fn take(&self) -> Option<Chunks> {
        self.0.lock().ok()?.take()
    }
}

/// What arrives for one call. A streamed call's replies come routed by the client's
/// demultiplexer task. A plain call's are read off the shared inbox by the calls waiting
/// for them: whichever waits first reads for all, handing others theirs, until its own
/// comes; then the next waiting call takes over. A lone call so takes its reply straight
/// from the connection, as a NATS request does, without a task in between (one task hop less
/// per call: `scripts/bench wrpc`'s client -> host p50 fell ~0.05x of a raw request-reply, in
/// alternated runs). Replies that come while no call waits wait in the subscription.
struct Replies {
    rx: mpsc::UnboundedReceiver<Message>,
    /// For a plain call: its client and its id.
    led: Option<(Arc<ClientInner>, u64)>,
}

impl Replies {
    /// The call's next message; `None` once the inbox is closed.
    async fn recv(&mut self) -> Option<Message> {
        let Some((inner, me)) = &self.led else {
            return self.rx.recv().await;
        };
        let shared = inner.led.get()?;
        let prefix_len = inner.inbox.len() + 1;
        let mut sub = tokio::select! {
            biased;
            m = self.rx.recv() => return m,
            sub = shared.lock() => sub,
        };
        loop {
            // Handed over by the call that read before.
            if let Ok(m) = self.rx.try_recv() {
                return Some(m);
            }
            if let Some(m) = inner.route(sub.next().await?, prefix_len, Some(*me)) {
                return Some(m);
            }
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends `body` on `subject` in chunks, each when `credits` allows, then ends the stream
/// (with the reason in [`ERROR_HEADER`] if the body failed).
async fn send_body(
    nats: async_nats::Client,
    subject: String,
    mut body: Chunks,
    credits: Arc<tokio::sync::Semaphore>,
) -> Result<(), CallError> {
    let chunk = STREAM_CHUNK.min(nats.max_payload().max(1024));
    let sent = async {
        while let Some(next) = body.next().await {
            let mut rest = next?;
            while !rest.is_empty() {
                credits.acquire().await?.forget();
                nats.publish(subject.clone(), rest.split_to(chunk.min(rest.len())))
                    .await?;
            }
        }
        Ok::<_, BodyError>(())
    }
    .await;
    let mut headers = HeaderMap::new();
    if let Err(e) = &sent {
        headers.insert(
            ERROR_HEADER,
            header_value(&format!("body failed: {e}")).as_str(),
        );
    }
    nats.publish_with_headers(subject, headers, Bytes::new())
        .await
        .map_err(|e| transport("cannot end the body", e))
}

/// The byte chunks that follow a streamed call's value (see [`Client::invoke_streaming`]).
/// Dropping it before the end tells the server to stop.
pub struct ResultStream {
    nats: async_nats::Client,
    rx: Replies,
    _slot: CallSlot,
    results: String,
    credit: Option<String>,
    deadline: Instant,
    ended: bool,
    /// A chunk was handed out and its credit not yet returned: returned when the reader asks
    /// for the next one, i.e. once it is done with this one.
    unacknowledged: bool,
    /// Sends the call's body, if it has one, until the exchange ends.
    _sender: Option<AbortOnDrop>,
    /// Checks on the host streaming the chunks when none came for a while.
    watch: Option<StreamWatch>,
}

/// What a [`ResultStream`] needs to ask whether its host is still there.
struct StreamWatch {
    watchdog: Watchdog,
    host: String,
    rc: String,
    patience: Duration,
    finished_seen: bool,
}

impl ResultStream {
    /// The next chunk, `None` at the end. An error when the server failed mid-stream (its
    /// reason), or at the call's deadline.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, CallError> {
        if self.ended {
            return Ok(None);
        }
        if std::mem::take(&mut self.unacknowledged) {
            if let Some(credit) = &self.credit {
                self.nats
                    .publish(credit.clone(), Bytes::new())
                    .await
                    .map_err(|e| transport("cannot return stream credit", e))?;
            }
        }
        loop {
            // A quiet stream (events minutes apart) is fine; a quiet host is checked on, so
            // one that died mid-stream is noticed in seconds, not at the deadline.
            let wake = match &self.watch {
                Some(w) => self.deadline.min(Instant::now() + w.patience),
                None => self.deadline,
            };
            let msg = match tokio::time::timeout_at(wake, self.rx.recv()).await {
                Ok(Some(m)) => m,
                Ok(None) => return Err(transport("reply inbox", "subscription closed")),
                Err(_) if Instant::now() >= self.deadline => {
                    return Err(deadline_exceeded(&self.results, "rest of the results"))
                }
                Err(_) => {
                    let Some(w) = &mut self.watch else { continue };
                    let checked = check_host(
                        &w.watchdog,
                        &w.host,
                        &w.rc,
                        w.patience,
                        &mut w.finished_seen,
                        &mut self.rx,
                    );
                    match checked.await {
                        Ok(Some(m)) => m,
                        Ok(None) => continue,
                        Err(why) => {
                            self.ended = true;
                            return Err(CallError::new(
                                CallErrorKind::OutcomeUnknown,
                                format!("host {} was streaming results, then {why}", w.host),
                            ));
                        }
                    }
                }
            };
            if msg.subject.as_str() != self.results {
                continue;
            }
            if msg.payload.is_empty() {
                self.ended = true;
                return match header(msg.headers.as_ref(), ERROR_HEADER) {
                    Some(err) => Err(CallError::from_header(err)),
                    None => Ok(None),
                };
            }
            self.unacknowledged = true;
            return Ok(Some(msg.payload));
        }
    }
}

impl Drop for ResultStream {
    fn drop(&mut self) {
        let (Some(credit), false) = (self.credit.take(), self.ended) else {
            return;
        };
        // Publishing is async; without a runtime (shutdown) the server's deadline ends it.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let nats = self.nats.clone();
            rt.spawn(async move {
                let _ = nats.publish(credit, Bytes::from_static(CREDIT_STOP)).await;
            });
        }
    }
}

/// A server's side of a streamed body (see [`Invocation::body_chunks`]).
struct BodyChunks {
    sub: async_nats::Subscriber,
    nats: Arc<async_nats::Client>,
    credit: String,
    deadline: Instant,
    owe_credit: bool,
    done: bool,
}

impl BodyChunks {
    async fn next(&mut self) -> Result<Option<Bytes>, CallError> {
        if self.done {
            return Ok(None);
        }
        if std::mem::take(&mut self.owe_credit) {
            self.nats
                .publish(self.credit.clone(), Bytes::new())
                .await
                .map_err(|e| transport("cannot return body credit", e))?;
        }
        let msg = tokio::time::timeout_at(self.deadline, self.sub.next()).await;
        let msg = msg
            .map_err(|_| {
                self.done = true;
                deadline_exceeded("the caller", "body")
            })?
            .ok_or_else(|| transport("body", "subscription closed"))?;
        if msg.payload.is_empty() {
            self.done = true;
            return match header(msg.headers.as_ref(), ERROR_HEADER) {
                Some(e) => Err(CallError::new(CallErrorKind::Transport, e)),
                None => Ok(None),
            };
        }
        self.owe_credit = true;
        Ok(Some(msg.payload))
    }
}

/// Asks `host`, which accepted call `rc`, whether it still runs it, while still taking what
/// arrives (so results racing with the question are not lost). `Ok(Some(msg))`: a message
/// arrived meanwhile; `Ok(None)`: running (or finished once, its results maybe in flight);
/// `Err(why)`: it is gone, or finished without the results ever arriving.
async fn check_host(
    w: &Watchdog,
    host: &str,
    rc: &str,
    patience: Duration,
    finished_seen: &mut bool,
    rx: &mut Replies,
) -> Result<Option<Message>, String> {
    let probe = (w.probe)(host.to_string(), rc.to_string(), patience);
    tokio::select! {
        m = rx.recv() => m
            .map(Some)
            .ok_or_else(|| "its reply inbox closed".to_string()),
        state = probe => match state {
            CallState::Running => Ok(None),
            CallState::HostGone => Err("went away before answering".into()),
            // Its results are in flight, or were lost (e.g. with the server the host was
            // connected to): one more round trip.
            CallState::Finished if *finished_seen => {
                Err("finished it, but its results never arrived".into())
            }
            CallState::Finished => {
                *finished_seen = true;
                Ok(None)
            }
        },
    }
}

/// An invocation a server received, before its parameters are read.
pub struct Invocation {
    nats: Arc<async_nats::Client>,
    pub instance: String,
    pub func: String,
    pub headers: HeaderMap,
    pub deadline: Instant,
    params: Frames,
    reply: async_nats::Subject,
    handshaken: bool,
    params_sub: Option<async_nats::Subscriber>,
    server_id: Option<Arc<str>>,
    /// This server's inbox, once the handshake named it.
    inbox: Option<String>,
    /// The caller takes the handshake and the whole result stream as one message.
    whole: bool,
}

/// Takes `msg` (received on `{prefix}.wrpc.0.0.1.>`) as an invocation. The deadline is the
/// caller's budget, capped at `max_time`. Nothing is sent yet: the handshake goes out with
/// [`Invocation::read_params`] (or [`Invocation::fail`]). A server's invocations share its
/// client (`nats`): cloning an async-nats client per call showed in profiles of short calls.
pub fn accept(
    prefix: &str,
    nats: &Arc<async_nats::Client>,
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
    let timeout = header(Some(&headers), TIMEOUT_HEADER);
    // A Lattice client (the only kind that sends its budget) takes a plain call's results
    // in one message.
    let whole = timeout.is_some() && header(Some(&headers), STREAM_HEADER).is_none();
    let budget = timeout
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(max_time)
        .min(max_time);
    Ok(Invocation {
        nats: nats.clone(),
        instance,
        func,
        headers,
        deadline: Instant::now() + budget,
        params: Frames::new("parameters", &msg.payload, MAX_MESSAGE_BYTES),
        reply,
        handshaken: false,
        params_sub: None,
        server_id: None,
        inbox: None,
        whole,
    })
}

impl Invocation {
    /// The (first) value of the invocation's header `name` (see [`header`]).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(Some(&self.headers), name)
    }

    /// Where the results go when they are not sent whole (made when needed: a short call
    /// between Lattice peers never needs it).
    fn results(&self) -> String {
        subject::results(&self.reply)
    }

    /// The caller's reply subject: unique per call, so it names the call to the caller.
    pub fn reply_subject(&self) -> &str {
        self.reply.as_str()
    }

    /// Names this server (a host id) in the handshake, so the caller can check on it.
    pub fn with_server_id(mut self, id: Arc<str>) -> Self {
        self.server_id = Some(id);
        self
    }

    /// Tells the caller the call was accepted (answers the handshake) if that was not done
    /// yet. A server whose call is still running after a moment calls this so the caller
    /// learns early that its call arrived; a short call needs not: [`Invocation::respond`]
    /// answers the handshake in the same write as the results, saving a round on the wire.
    pub async fn acknowledge(&mut self) -> Result<(), CallError> {
        self.handshake(false).await
    }

    /// Answers the handshake. When more parameters are due, their subscription is made first,
    /// so no chunk can be missed; when the first message held them all, none is made.
    async fn handshake(&mut self, expect_params: bool) -> Result<(), CallError> {
        if self.handshaken {
            return Ok(());
        }
        let rs = self.nats.new_inbox();
        if expect_params {
            self.params_sub = Some(
                self.nats
                    .subscribe(subject::params(&rs))
                    .await
                    .map_err(|e| transport("cannot subscribe the parameter inbox", e))?,
            );
        }
        self.inbox = Some(rs.clone());
        let sent = match &self.server_id {
            Some(id) => {
                let mut headers = HeaderMap::new();
                headers.insert(SERVER_HEADER, &**id);
                self.nats
                    .publish_with_reply_and_headers(self.reply.clone(), rs, headers, Bytes::new())
                    .await
            }
            None => {
                self.nats
                    .publish_with_reply(self.reply.clone(), rs, Bytes::new())
                    .await
            }
        };
        sent.map_err(|e| transport("cannot answer the handshake", e))?;
        self.handshaken = true;
        Ok(())
    }

    /// Reads parameters until `decode` accepts them (or the caller ends the stream).
    pub async fn read_params<T>(
        &mut self,
        decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<T, CallError> {
        loop {
            // The handshake waits for the results (or `acknowledge`) when nothing more is due.
            if let Progress::Done(v) = self.params.decode(&decode)? {
                return Ok(v);
            }
            self.handshake(true).await?;
            let Some(sub) = self.params_sub.as_mut() else {
                return Err(transport("parameters", "no parameter subscription"));
            };
            let msg = match tokio::time::timeout_at(self.deadline, sub.next()).await {
                Err(_) => return Err(deadline_exceeded(&self.func, "parameters")),
                Ok(None) => return Err(transport("parameters", "subscription closed")),
                Ok(Some(m)) => m,
            };
            self.params.push(&msg.payload)?;
        }
    }

    /// Resolves once what this invocation published so far is written to the connection
    /// (async-nats writes in order and reports a flush after the write), so work left for
    /// after a call can wait until its results are on their way. While the client is
    /// disconnected it waits for the reconnection, as the results do.
    pub fn written(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let nats = self.nats.clone();
        async move {
            let _ = nats.flush().await;
        }
    }

    /// Sends the encoded results (after the handshake, if it is still due), then ends the
    /// stream.
    pub async fn respond(&mut self, results: Bytes) -> Result<(), CallError> {
        let max = self.nats.max_payload().max(1024);
        if self.whole && !self.handshaken && results.len() + 256 <= max {
            self.handshaken = true;
            return self
                .nats
                .publish(subject::whole(&self.reply), results)
                .await
                .map_err(|e| transport("cannot send results", e));
        }
        self.handshake(false).await?;
        self.publish_chunks(results, max).await?;
        self.nats
            .publish(self.results(), Bytes::new())
            .await
            .map_err(|e| transport("cannot end results", e))
    }

    /// The body the caller streams after the parameters (see
    /// [`Client::invoke_streaming`]), chunk by chunk; each read returns the credit of the
    /// chunk before. Call it after [`Invocation::read_params`] and before anything else.
    pub async fn body_chunks(
        &mut self,
    ) -> Result<impl futures::Stream<Item = Result<Bytes, CallError>> + Send + 'static, CallError>
    {
        // Subscribes first when the handshake is still due, so no chunk can be missed.
        self.handshake(true).await?;
        let sub = self.params_sub.take().ok_or_else(|| {
            transport(
                "body",
                "the handshake was answered before the body was asked for",
            )
        })?;
        let state = BodyChunks {
            sub,
            nats: self.nats.clone(),
            credit: subject::credit(self.reply.as_str()),
            deadline: self.deadline,
            owe_credit: false,
            done: false,
        };
        Ok(futures::stream::unfold(state, |mut s| async move {
            let next = s.next().await.transpose()?;
            Some((next, s))
        }))
    }

    /// Sends `value` (the encoded first result), then every chunk of `body` as the caller
    /// reads them (see [`Client::invoke_streaming`]), then ends the stream. Stops early with
    /// an error when `body` fails, the caller stops reading, or the deadline passes; the
    /// caller of this then [`fail`](Self::fail)s the call.
    pub async fn respond_streaming<S>(&mut self, value: Bytes, body: S) -> Result<(), CallError>
    where
        S: futures::Stream<Item = Result<Bytes, BodyError>>,
    {
        self.handshake(false).await?;
        let inbox = self
            .inbox
            .clone()
            .ok_or_else(|| transport("stream", "no handshake"))?;
        // Before the first chunk goes out, so no credit can be missed.
        let mut credits = self
            .nats
            .subscribe(subject::credit(&inbox))
            .await
            .map_err(|e| transport("cannot subscribe for stream credit", e))?;
        let max = self.nats.max_payload().max(1024);
        self.publish_chunks(value, max).await?;
        let chunk = STREAM_CHUNK.min(max);
        let (mut sent, mut credited) = (0u64, 0u64);
        futures::pin_mut!(body);
        loop {
            let next = tokio::time::timeout_at(self.deadline, body.next())
                .await
                .map_err(|_| deadline_exceeded(&self.func, "the body"))?;
            let Some(next) = next else { break };
            let mut rest = next
                .map_err(|e| CallError::new(CallErrorKind::Trapped, format!("body failed: {e}")))?;
            while !rest.is_empty() {
                while sent - credited >= STREAM_WINDOW {
                    let credit = tokio::time::timeout_at(self.deadline, credits.next())
                        .await
                        .map_err(|_| deadline_exceeded(&self.func, "credit from the caller"))?
                        .ok_or_else(|| transport("stream credit", "subscription closed"))?;
                    if credit.payload.as_ref() == CREDIT_STOP {
                        return Err(CallError::new(
                            CallErrorKind::Transport,
                            "the caller stopped reading",
                        ));
                    }
                    credited += 1;
                }
                let piece = rest.split_to(chunk.min(rest.len()));
                self.nats
                    .publish(self.results(), piece)
                    .await
                    .map_err(|e| transport("cannot send a chunk", e))?;
                sent += 1;
            }
        }
        self.nats
            .publish(self.results(), Bytes::new())
            .await
            .map_err(|e| transport("cannot end results", e))
    }

    /// Publishes `bytes` on the results subject in messages of at most `max` bytes.
    async fn publish_chunks(&self, mut rest: Bytes, max: usize) -> Result<(), CallError> {
        while !rest.is_empty() {
            let chunk = rest.split_to(max.min(rest.len()));
            self.nats
                .publish(self.results(), chunk)
                .await
                .map_err(|e| transport("cannot send results", e))?;
        }
        Ok(())
    }

    /// Ends the call without results, saying why. Answers the handshake first if it was not
    /// yet, so a peer waiting for it learns of the failure at once.
    pub async fn fail(&mut self, err: &CallError) {
        let mut headers = HeaderMap::new();
        headers.insert(ERROR_HEADER, header_value(&err.header_value()).as_str());
        if self.whole && !self.handshaken {
            // The handshake, marked whole, with the reason: nothing follows.
            headers.insert(WHOLE_HEADER, "1");
            if let Some(id) = &self.server_id {
                headers.insert(SERVER_HEADER, &**id);
            }
            self.handshaken = true;
            if let Err(e) = self
                .nats
                .publish_with_headers(self.reply.clone(), headers, Bytes::new())
                .await
            {
                tracing::warn!(error = %e, "cannot report a failed call");
            }
            return;
        }
        if let Err(e) = self.handshake(false).await {
            tracing::debug!(error = %e, "cannot answer the handshake of a failed call");
        }
        if let Err(e) = self
            .nats
            .publish_with_headers(self.results(), headers, Bytes::new())
            .await
        {
            tracing::warn!(error = %e, "cannot report a failed call");
        }
    }
}
