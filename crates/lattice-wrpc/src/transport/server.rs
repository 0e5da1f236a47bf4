//! The server side of one call: accepting an invocation, the handshake, reading the
//! parameters, and answering with results (whole, chunked or streamed) or a failure.

use std::sync::Arc;
use std::time::Duration;

use async_nats::{HeaderMap, Message};
use bytes::Bytes;
use futures::StreamExt;
use tokio::time::Instant;

use crate::codec::DecodeError;
use crate::error::{CallError, CallErrorKind};
use crate::frames::{Frames, Progress};
use crate::subject;

use super::headers::{
    deadline_exceeded, header, header_value, nats_failed, transport, ERROR_HEADER,
    MAX_MESSAGE_BYTES, SERVER_HEADER, STREAM_HEADER, TIMEOUT_HEADER, WHOLE_HEADER,
};
use super::stream::{BodyChunks, CREDIT_STOP};
use super::stream::{BodyError, STREAM_CHUNK, STREAM_WINDOW};

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
        let rs = self.server_inbox();
        if expect_params {
            self.params_sub = Some(
                self.nats
                    .subscribe(subject::params(&rs))
                    .await
                    .map_err(|e| nats_failed("cannot subscribe the parameter inbox", e))?,
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
        sent.map_err(|e| nats_failed("cannot answer the handshake", e))?;
        self.handshaken = true;
        Ok(())
    }

    /// This server's inbox `Rs` for the call, made when first needed.
    fn server_inbox(&mut self) -> String {
        self.inbox
            .get_or_insert_with(|| self.nats.new_inbox())
            .clone()
    }

    /// The `stream<u8>` parameter the caller sends on nested `path` (`0.0`: field 0 of the
    /// first parameter), as it arrives. Call it before the handshake (before
    /// [`Invocation::read_params`] needs one), so no chunk can be missed; the caller sends
    /// nothing there before the handshake, which [`Invocation::acknowledge`] then answers.
    pub async fn nested_bytes(
        &mut self,
        path: &str,
    ) -> Result<impl futures::Stream<Item = Result<Bytes, CallError>> + Send + 'static, CallError>
    {
        if self.handshaken {
            return Err(transport("stream", "asked for after the handshake"));
        }
        let subject = subject::nested(&subject::params(&self.server_inbox()), path);
        let sub = self
            .nats
            .subscribe(subject)
            .await
            .map_err(|e| nats_failed("cannot subscribe a nested parameter", e))?;
        let state = (sub, crate::wrpc_http::ByteChunks::default(), self.deadline);
        Ok(futures::stream::unfold(Some(state), |state| async move {
            let (mut sub, mut chunks, deadline) = state?;
            loop {
                if chunks.is_done() {
                    return None;
                }
                let msg = match tokio::time::timeout_at(deadline, sub.next()).await {
                    Err(_) => return Some((Err(deadline_exceeded("stream", "the stream")), None)),
                    Ok(None) => {
                        return Some((Err(transport("stream", "subscription closed")), None))
                    }
                    Ok(Some(m)) => m,
                };
                if msg.payload.is_empty() {
                    return Some((
                        Err(transport("stream", "ended before its last chunk")),
                        None,
                    ));
                }
                let mut out = Vec::new();
                if let Err(e) = chunks.push(&msg.payload, &mut out) {
                    let e = CallError::new(CallErrorKind::Decode, format!("stream: {e}"));
                    return Some((Err(e), None));
                }
                let data: Vec<u8> = match out.len() {
                    0 => continue,
                    1 => return Some((Ok(out.remove(0)), Some((sub, chunks, deadline)))),
                    _ => out.iter().flat_map(|b| b.iter().copied()).collect(),
                };
                return Some((Ok(Bytes::from(data)), Some((sub, chunks, deadline))));
            }
        }))
    }

    /// Sends `value` (the encoded results), then `body` as the `stream<u8>` at nested `path`
    /// of the results, as it is produced; ends both streams. Upstream peers have no flow
    /// control: each chunk is published as it comes (NATS and the connection's buffer push
    /// back).
    pub async fn respond_nested<S>(
        &mut self,
        value: Bytes,
        path: &str,
        body: S,
    ) -> Result<(), CallError>
    where
        S: futures::Stream<Item = Result<Bytes, BodyError>>,
    {
        self.handshake(false).await?;
        let max = self.nats.max_payload().max(1024);
        self.publish_chunks(value, max).await?;
        let nested = subject::nested(&self.results(), path);
        // Room for a chunk's length prefix.
        let piece = STREAM_CHUNK.min(max) - 8;
        futures::pin_mut!(body);
        loop {
            let Some(mut rest) = self.next_piece(&mut body).await? else {
                break;
            };
            while !rest.is_empty() {
                let data = rest.split_to(piece.min(rest.len()));
                let mut chunk = Vec::with_capacity(data.len() + 8);
                crate::wrpc_http::encode_chunk(&data, &mut chunk);
                self.nats
                    .publish(nested.clone(), chunk.into())
                    .await
                    .map_err(|e| nats_failed("cannot send a chunk", e))?;
            }
        }
        // The last (empty) chunk, then the end of both message streams.
        for (subject, payload) in [
            (nested.clone(), Bytes::from_static(&[0])),
            (nested, Bytes::new()),
            (self.results(), Bytes::new()),
        ] {
            self.nats
                .publish(subject, payload)
                .await
                .map_err(|e| nats_failed("cannot end results", e))?;
        }
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
                .map_err(|e| nats_failed("cannot send results", e));
        }
        self.handshake(false).await?;
        self.publish_chunks(results, max).await?;
        self.nats
            .publish(self.results(), Bytes::new())
            .await
            .map_err(|e| nats_failed("cannot end results", e))
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
            .map_err(|e| nats_failed("cannot subscribe for stream credit", e))?;
        let max = self.nats.max_payload().max(1024);
        self.publish_chunks(value, max).await?;
        let chunk = STREAM_CHUNK.min(max);
        let (mut sent, mut credited) = (0u64, 0u64);
        futures::pin_mut!(body);
        loop {
            let Some(mut rest) = self.next_piece(&mut body).await? else {
                break;
            };
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
                    .map_err(|e| nats_failed("cannot send a chunk", e))?;
                sent += 1;
            }
        }
        self.nats
            .publish(self.results(), Bytes::new())
            .await
            .map_err(|e| nats_failed("cannot end results", e))
    }

    /// The next piece of a response body, within the call's deadline; `None` at its end.
    async fn next_piece<S>(
        &self,
        body: &mut std::pin::Pin<&mut S>,
    ) -> Result<Option<Bytes>, CallError>
    where
        S: futures::Stream<Item = Result<Bytes, BodyError>>,
    {
        let next = tokio::time::timeout_at(self.deadline, body.next())
            .await
            .map_err(|_| deadline_exceeded(&self.func, "the body"))?;
        next.transpose()
            .map_err(|e| CallError::new(CallErrorKind::Trapped, format!("body failed: {e}")))
    }

    /// Publishes `bytes` on the results subject in messages of at most `max` bytes.
    async fn publish_chunks(&self, mut rest: Bytes, max: usize) -> Result<(), CallError> {
        while !rest.is_empty() {
            let chunk = rest.split_to(max.min(rest.len()));
            self.nats
                .publish(self.results(), chunk)
                .await
                .map_err(|e| nats_failed("cannot send results", e))?;
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
