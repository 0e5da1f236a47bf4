//! A request forwarded to the host that runs its component, over wRPC
//! (`lattice_wrpc::http`), its body streamed both ways; and the other side, serving one.
//! When no Lattice host serves the component, the request goes as wasmCloud v1 hosts serve
//! HTTP components (`wrpc:http/incoming-handler@0.1.0.handle`, see [`forward_wrpc_http`]).

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use lattice_runtime::http::{full_body, ResponseBody};
use lattice_wrpc::transport::BodySource;
use lattice_wrpc::transport::{CALLER_HEADER, SOURCE_HEADER, TRACEPARENT_HEADER};
use lattice_wrpc::{CallError, CallErrorKind};

use super::context::Ingress;

use super::route::HTTP_SOURCE;

/// Largest request body that goes to another host whole, with the request, when its size
/// is known; any other streams after it.
const INLINE_BODY: u64 = 64 << 10;
/// The budget a forwarded request is sent with. The serving host holds the component to its
/// own execution limit, as it would here, and a host that dies is noticed by the watchdog;
/// so this is only a backstop, long enough for a response that streams for minutes.
const FORWARDED_BUDGET: std::time::Duration = std::time::Duration::from_secs(3600);

/// Header fields as they travel between hosts.
pub(super) fn wire_headers(h: &http::HeaderMap) -> lattice_wrpc::http::Headers {
    h.iter()
        .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
        .collect()
}

/// Serves a request with an instance of `target` elsewhere in the lattice.
pub(super) async fn forward(
    ingress: &Ingress,
    target: &str,
    req: Request<hyper::body::Incoming>,
    trace: lattice_wrpc::trace::TraceParent,
) -> Result<Response<ResponseBody>, CallError> {
    let (parts, body) = req.into_parts();
    // A body known to be small goes whole with the request; any other streams after it.
    let small = hyper::body::Body::is_end_stream(&body)
        || hyper::body::Body::size_hint(&body)
            .exact()
            .is_some_and(|n| n <= INLINE_BODY);
    let (inline, streamed) = if small {
        let whole = body.collect().await.map_err(|e| {
            CallError::new(
                CallErrorKind::Rejected,
                format!("cannot read the request body: {e}"),
            )
        })?;
        (whole.to_bytes().to_vec(), None)
    } else {
        (Vec::new(), Some(BodySource::new(data_chunks(body))))
    };
    let request = lattice_wrpc::http::Request {
        method: parts.method.as_str().to_string(),
        path_with_query: parts
            .uri
            .path_and_query()
            .map_or("/".to_string(), |p| p.as_str().to_string()),
        scheme: Some("http".into()),
        authority: parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string),
        headers: wire_headers(&parts.headers),
        body: inline,
        body_follows: streamed.is_some(),
    };
    let mut bytes = Vec::with_capacity(request.body.len() + 256);
    request.encode(&mut bytes);
    let bytes = Bytes::from(bytes);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(SOURCE_HEADER, HTTP_SOURCE);
    headers.insert(CALLER_HEADER, ingress.host_id.as_str());
    headers.insert(TRACEPARENT_HEADER, trace.to_string().as_str());
    let deadline = tokio::time::Instant::now() + FORWARDED_BUDGET;
    let prefix = lattice_proto::wrpc::component_prefix(&ingress.lattice, target);
    // RFC 9110's idempotent methods may be sent again when their outcome is unknown.
    let idempotent = matches!(
        parts.method,
        http::Method::GET
            | http::Method::HEAD
            | http::Method::OPTIONS
            | http::Method::TRACE
            | http::Method::PUT
            | http::Method::DELETE
    );
    // A streamed body is sent once: a call a host took is not sent again.
    let policy = ingress
        .calls
        .policy(target, idempotent && streamed.is_none());
    let calls = &ingress.calls;
    let result = calls
        .send(target, &policy, deadline, || async {
            let call = lattice_wrpc::transport::Call::new(
                &prefix,
                lattice_wrpc::http::HTTP_INSTANCE,
                lattice_wrpc::http::HTTP_FUNC,
                bytes.clone(),
                deadline,
            )
            .with_headers(headers.clone());
            let sent = calls
                .wrpc
                .invoke_streaming(
                    call,
                    lattice_wrpc::http::ResponseHead::decode,
                    streamed.clone(),
                )
                .await;
            match sent {
                Ok((head, rest)) => Ok((head, streamed_body(rest))),
                // No Lattice host serves it; a wasmCloud host may. Nobody at all: the first
                // error stands.
                Err(e) if e.kind() == CallErrorKind::NoResponders => {
                    let call = lattice_wrpc::transport::Call::new(
                        &prefix,
                        lattice_wrpc::wrpc_http::WRPC_HTTP_INSTANCE,
                        lattice_wrpc::http::HTTP_FUNC,
                        Bytes::new(),
                        deadline,
                    )
                    .with_headers(headers.clone());
                    forward_wrpc_http(&calls.wrpc, call, &request, streamed.clone())
                        .await
                        .map_err(|up| match up.kind() {
                            CallErrorKind::NoResponders => e,
                            _ => up,
                        })
                }
                Err(e) => Err(e),
            }
        })
        .await;
    let (head, body) = result?;
    let mut out = Response::new(body);
    *out.status_mut() = StatusCode::from_u16(head.status).map_err(|_| {
        CallError::new(
            CallErrorKind::Decode,
            format!("component answered with status {}", head.status),
        )
    })?;
    for (name, value) in head.headers {
        match (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_bytes(&value),
        ) {
            (Ok(n), Ok(v)) => {
                out.headers_mut().append(n, v);
            }
            _ => tracing::debug!(header = %name, "dropped an invalid response header"),
        }
    }
    Ok(out)
}

/// Sends `request` (and the rest of its body, `streamed`) as
/// `wrpc:http/incoming-handler@0.1.0.handle` to whoever serves `call`'s subject (a wasmCloud
/// v1 host), and returns the response head and body as they come. `call.params` is replaced
/// by the encoded request: its head, with the body when it is whole and not empty; any other
/// body (an empty one too) follows on its nested path.
async fn forward_wrpc_http(
    wrpc: &lattice_wrpc::transport::Client,
    mut call: lattice_wrpc::transport::Call<'_>,
    request: &lattice_wrpc::http::Request,
    streamed: Option<BodySource>,
) -> Result<(lattice_wrpc::http::ResponseHead, ResponseBody), CallError> {
    use lattice_wrpc::wrpc_http::{decode_outcome, WRPC_HTTP_BODY_PATH};
    let whole = (!request.body.is_empty()).then(|| request.body.clone());
    let body = match (&whole, streamed) {
        (Some(_), _) => None,
        (None, Some(s)) => Some(s),
        (None, None) => Some(BodySource::new(futures::stream::empty())),
    };
    let upstream = lattice_wrpc::wrpc_http::Request {
        method: request.method.clone(),
        path_with_query: Some(request.path_with_query.clone()),
        scheme: request.scheme.clone(),
        authority: request.authority.clone(),
        headers: request.headers.clone(),
        body: whole,
    };
    let mut bytes = Vec::with_capacity(256 + request.body.len());
    upstream.encode(&mut bytes);
    call.params = Bytes::from(bytes);
    let (outcome, rest) = wrpc
        .invoke_nested(call, decode_outcome, WRPC_HTTP_BODY_PATH, body)
        .await?;
    match outcome {
        Ok((head, Some(whole))) => Ok((head, full_body(whole))),
        Ok((head, None)) => Ok((head, streamed_body(rest))),
        Err(code) => Err(CallError::new(
            CallErrorKind::Trapped,
            format!("the component failed the request: {code}"),
        )),
    }
}

/// A response body read chunk by chunk from the host serving the request, as the client
/// takes it (each read returns the credit of the chunk before).
pub(super) fn streamed_body(rest: lattice_wrpc::transport::ResultStream) -> ResponseBody {
    let chunks = futures::stream::unfold(Some(rest), |rest| async move {
        let mut rest = rest?;
        match rest.next_chunk().await {
            Ok(Some(b)) => Some((Ok(hyper::body::Frame::data(b)), Some(rest))),
            Ok(None) => None,
            // The client sees the response cut short, as from a local guest that failed.
            Err(e) => Some((
                Err(lattice_runtime::http::BodyError::InternalError(Some(
                    e.to_string(),
                ))),
                None,
            )),
        }
    });
    http_body_util::StreamBody::new(chunks).boxed_unsync()
}

/// The data of a body as a stream of chunks, to stream to another host (trailers are not
/// forwarded).
pub(crate) fn data_chunks<B>(
    body: B,
) -> impl futures::Stream<Item = Result<Bytes, lattice_wrpc::transport::BodyError>> + Send
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<lattice_wrpc::transport::BodyError> + Send,
{
    use futures::StreamExt as _;
    http_body_util::BodyStream::new(body).filter_map(|frame| async move {
        match frame {
            Ok(f) => f.into_data().ok().map(Ok),
            Err(e) => Some(Err(e.into())),
        }
    })
}

/// Serves a request forwarded by another host (see [`forward`]): runs it in a local
/// instance and returns the response head once the guest set it; the body streams on.
pub(crate) async fn serve_forwarded(
    pool: &Arc<lattice_runtime::ComponentPool>,
    request: lattice_wrpc::http::Request,
    rest_of_body: Option<impl futures::Stream<Item = Result<Bytes, CallError>> + Send + 'static>,
    deadline: tokio::time::Instant,
) -> Result<(lattice_wrpc::http::ResponseHead, ResponseBody), CallError> {
    let mut builder = Request::builder()
        .method(request.method.as_str())
        .uri(request.path_with_query.as_str());
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_slice());
    }
    if let Some(a) = &request.authority {
        if !request
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("host"))
        {
            builder = builder.header(http::header::HOST, a.as_str());
        }
    }
    let body = match rest_of_body {
        None => full_body(request.body),
        Some(rest) => {
            use futures::StreamExt as _;
            let first = (!request.body.is_empty()).then(|| Ok(Bytes::from(request.body)));
            let chunks = futures::stream::iter(first).chain(rest).map(|chunk| {
                chunk.map(hyper::body::Frame::data).map_err(|e| {
                    lattice_runtime::http::BodyError::InternalError(Some(e.to_string()))
                })
            });
            http_body_util::StreamBody::new(chunks).boxed_unsync()
        }
    };
    let req = builder.body(body).map_err(|e| {
        CallError::new(
            CallErrorKind::Rejected,
            format!("bad forwarded request: {e}"),
        )
    })?;
    let run = async {
        let response = pool.handle_http(req).await.map_err(CallError::for_caller)?;
        let (parts, body) = response.into_parts();
        let head = lattice_wrpc::http::ResponseHead {
            status: parts.status.as_u16(),
            headers: wire_headers(&parts.headers),
        };
        Ok((head, body))
    };
    tokio::time::timeout_at(deadline, run).await.map_err(|_| {
        CallError::new(
            CallErrorKind::DeadlineExceeded,
            "the caller's deadline passed during the request",
        )
    })?
}
