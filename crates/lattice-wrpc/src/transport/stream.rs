//! Byte streams after a call's value (a Lattice extension): a body a client sends after its
//! parameters, and the result chunks a server streams back, each side paced by credit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::time::Instant;

use crate::error::{CallError, CallErrorKind};

use super::headers::{
    deadline_exceeded, header, header_value, nats_failed, transport, ERROR_HEADER,
};
use super::inbox::{check_host, CallSlot, Replies};
use super::watchdog::Watchdog;

pub use lattice_proto::wrpc::{CREDIT_STOP, STREAM_CHUNK, STREAM_WINDOW};

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

    pub(super) fn take(&self) -> Option<Chunks> {
        self.0.lock().ok()?.take()
    }
}

/// Aborts a task when dropped.
pub(super) struct AbortOnDrop(pub(super) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends `body` on `subject` in chunks, each when `credits` allows, then ends the stream
/// (with the reason in [`ERROR_HEADER`] if the body failed).
pub(super) async fn send_body(
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
        .map_err(|e| nats_failed("cannot end the body", e))
}

/// Sends `body` on `subject` as an upstream peer reads a `stream<u8>` on a nested path:
/// `list<u8>` chunks, an empty one last, then the end of the message stream. A body that
/// fails ends without the empty chunk, so the reader sees it cut short.
pub(super) async fn send_nested(
    nats: async_nats::Client,
    subject: String,
    mut body: Chunks,
) -> Result<(), CallError> {
    // Room for a chunk's length prefix.
    let piece = STREAM_CHUNK.min(nats.max_payload().max(1024)) - 8;
    let sent = async {
        while let Some(next) = body.next().await {
            let mut rest = next?;
            while !rest.is_empty() {
                let data = rest.split_to(piece.min(rest.len()));
                let mut chunk = Vec::with_capacity(data.len() + 8);
                crate::wrpc_http::encode_chunk(&data, &mut chunk);
                nats.publish(subject.clone(), chunk.into()).await?;
            }
        }
        Ok::<_, BodyError>(())
    }
    .await;
    if let Err(e) = &sent {
        tracing::debug!(error = %e, "a streamed body broke off");
    } else {
        nats.publish(subject.clone(), Bytes::from_static(&[0]))
            .await
            .map_err(|e| nats_failed("cannot end the body", e))?;
    }
    nats.publish(subject, Bytes::new())
        .await
        .map_err(|e| nats_failed("cannot end the body", e))
}

/// The byte chunks that follow a streamed call's value (see [`Client::invoke_streaming`]).
/// Dropping it before the end tells the server to stop.
pub struct ResultStream {
    pub(super) nats: async_nats::Client,
    pub(super) rx: Replies,
    pub(super) _slot: CallSlot,
    pub(super) results: String,
    pub(super) credit: Option<String>,
    pub(super) deadline: Instant,
    pub(super) ended: bool,
    /// A chunk was handed out and its credit not yet returned: returned when the reader asks
    /// for the next one, i.e. once it is done with this one.
    pub(super) unacknowledged: bool,
    /// Sends the call's body, if it has one, until the exchange ends.
    pub(super) _sender: Option<AbortOnDrop>,
    /// Checks on the host streaming the chunks when none came for a while.
    pub(super) watch: Option<StreamWatch>,
    /// For an upstream peer's nested `stream<u8>`: its `list<u8>` chunks, decoded as they
    /// come (see [`Client::invoke_nested`]).
    pub(super) nested: Option<crate::wrpc_http::ByteChunks>,
    /// Messages of the stream that came before the value was complete.
    pub(super) early: std::collections::VecDeque<async_nats::Message>,
}

/// What a [`ResultStream`] needs to ask whether its host is still there.
pub(super) struct StreamWatch {
    pub(super) watchdog: Watchdog,
    pub(super) host: String,
    pub(super) rc: String,
    pub(super) patience: Duration,
    pub(super) finished_seen: bool,
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
                    .map_err(|e| nats_failed("cannot return stream credit", e))?;
            }
        }
        loop {
            // A quiet stream (events minutes apart) is fine; a quiet host is checked on, so
            // one that died mid-stream is noticed in seconds, not at the deadline.
            let wake = match &self.watch {
                Some(w) => self.deadline.min(Instant::now() + w.patience),
                None => self.deadline,
            };
            let next = match self.early.pop_front() {
                Some(m) => Ok(Some(m)),
                None => tokio::time::timeout_at(wake, self.rx.recv()).await,
            };
            let msg = match next {
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
            if let Some(chunks) = &mut self.nested {
                if msg.payload.is_empty() {
                    self.ended = true;
                    if let Some(err) = header(msg.headers.as_ref(), ERROR_HEADER) {
                        return Err(CallError::from_header(err));
                    }
                    return match chunks.is_done() {
                        true => Ok(None),
                        false => Err(transport(
                            "results",
                            "the stream ended before its last chunk",
                        )),
                    };
                }
                let mut out = Vec::new();
                chunks.push(&msg.payload, &mut out).map_err(|e| {
                    self.ended = true;
                    CallError::new(CallErrorKind::Decode, format!("results stream: {e}"))
                })?;
                // Its last chunk ends it: what follows on the subject is only the end.
                self.ended = chunks.is_done();
                match out.len() {
                    0 if self.ended => return Ok(None),
                    0 => continue,
                    1 => return Ok(out.pop()),
                    _ => return Ok(Some(out.concat().into())),
                }
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
pub(super) struct BodyChunks {
    pub(super) sub: async_nats::Subscriber,
    pub(super) nats: Arc<async_nats::Client>,
    pub(super) credit: String,
    pub(super) deadline: Instant,
    pub(super) owe_credit: bool,
    pub(super) done: bool,
}

impl BodyChunks {
    pub(super) async fn next(&mut self) -> Result<Option<Bytes>, CallError> {
        if self.done {
            return Ok(None);
        }
        if std::mem::take(&mut self.owe_credit) {
            self.nats
                .publish(self.credit.clone(), Bytes::new())
                .await
                .map_err(|e| nats_failed("cannot return body credit", e))?;
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
