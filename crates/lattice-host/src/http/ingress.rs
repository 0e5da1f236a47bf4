//! Serving one request: its route's options, then the component here or, when it runs
//! elsewhere, forwarding.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use http::{Request, Response, StatusCode};
use lattice_runtime::http::{full_body, ResponseBody};
use lattice_telemetry::KeyValue;
use lattice_wrpc::trace::TraceParent;
use lattice_wrpc::{CallError, CallErrorKind};

use super::context::Ingress;

use super::forward::forward;
use super::routes::{find, Routes};

pub(super) async fn serve(
    ingress: &Ingress,
    routes: &Routes,
    addr: SocketAddr,
    req: Request<hyper::body::Incoming>,
) -> Response<ResponseBody> {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let Some(route) = find(routes, &addr, host.as_deref(), req.uri().path()) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("no component serves {}", req.uri().path()),
        );
    };
    let target = route.target.clone();
    let options = &route.options;
    let origin = req.headers().get(http::header::ORIGIN).cloned();
    if let Some(origin) = &origin {
        if req.method() == http::Method::OPTIONS
            && req
                .headers()
                .contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return options.cors.preflight(origin);
        }
    }
    if options.readonly && !matches!(*req.method(), http::Method::GET | http::Method::HEAD) {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{target} is read-only here: GET and HEAD only"),
        );
        r.headers_mut().insert(
            http::header::ALLOW,
            http::HeaderValue::from_static("GET, HEAD"),
        );
        return r;
    }
    let local = (!ingress.calls.force_remote)
        .then(|| ingress.components.get(&target))
        .flatten()
        .filter(|r| r.pool.serves_http());
    // The request's span continues the client's trace (a `traceparent` header) if it sent one.
    let incoming = req
        .headers()
        .get(lattice_wrpc::transport::TRACEPARENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse);
    let method = req.method().to_string();
    let measured = ingress
        .metrics
        .as_ref()
        .map(|m| (m, req.method().clone(), std::time::Instant::now()));
    let (span, trace) = crate::traces::start(
        ingress.tracing.as_deref(),
        lattice_telemetry::Kind::Server,
        incoming,
        || method.clone(),
        || {
            vec![
                KeyValue::new("http.request.method", method.clone()),
                KeyValue::new("url.path", req.uri().path().to_string()),
                KeyValue::new("lattice.target", target.clone()),
            ]
        },
    );
    let trace = trace.unwrap_or_else(TraceParent::root);
    let answer = async {
        match local {
            Some(running) => {
                ingress
                    .calls
                    .stats
                    .http_local
                    .fetch_add(1, Ordering::Relaxed);
                let req = req.map(lattice_runtime::http::incoming_body);
                let handled = running.pool.handle_http(req);
                lattice_runtime::CURRENT_TRACE
                    .scope(Some(trace), handled)
                    .await
                    .map_err(CallError::for_caller)
            }
            None => {
                ingress
                    .calls
                    .stats
                    .http_remote
                    .fetch_add(1, Ordering::Relaxed);
                forward(ingress, &target, req, trace).await
            }
        }
    };
    let result = match options.timeout {
        None => answer.await,
        Some(t) => match tokio::time::timeout(t, answer).await {
            Ok(r) => r,
            // Answered like any other response (counted, its span ended, CORS headers).
            Err(_) => Ok(text(
                StatusCode::REQUEST_TIMEOUT,
                format!("{target} did not answer within {t:?} (timeout_ms)"),
            )),
        },
    };
    crate::traces::end(
        span,
        &result.as_ref().map(|r| r.status()).map_err(Clone::clone),
    );
    let mut response = result.unwrap_or_else(|e| {
        tracing::debug!(component_id = %target, error = %e, "HTTP request failed");
        text(status_of(&e), format!("{target}: {e}"))
    });
    if let Some(cc) = &options.cache_control {
        response
            .headers_mut()
            .entry(http::header::CACHE_CONTROL)
            .or_insert_with(|| cc.clone());
    }
    if let Some(origin) = &origin {
        options.cors.decorate(origin, &mut response);
    }
    if let Some((metrics, method, started)) = measured {
        let req = lattice_telemetry::HttpRequest {
            method: &method,
            status: response.status().as_u16(),
            target: &target,
        };
        metrics.http_request(&req, started.elapsed());
    }
    response
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response<ResponseBody> {
    let mut body = msg.into();
    body.push('\n');
    let mut r = Response::new(full_body(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The status a failed call becomes.
fn status_of(e: &CallError) -> StatusCode {
    match e.kind() {
        CallErrorKind::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        CallErrorKind::Trapped => StatusCode::INTERNAL_SERVER_ERROR,
        CallErrorKind::Busy => StatusCode::SERVICE_UNAVAILABLE,
        CallErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_GATEWAY,
    }
}
