//! Serving running components' exports over wRPC.
//!
//! Each component id gets one queue subscription, `{lattice}.{id}.wrpc.0.0.1.>` in group
//! `{lattice}.{id}`, on every host running it: NATS hands each call to exactly one of them.
//! The subscription is live (flushed) before `component_scaled` is announced, so a caller
//! reacting to the event finds a server. Each call looks up the component's current pool, so
//! an update in place needs no resubscription.
//!
//! Calls run through `lattice_wrpc::serve::each` (inline while the host is idle), and the
//! results go out before the instance is freed and the next one made (see
//! `ComponentPool::call_then_clean_up`): neither stands between a caller and its results.

use std::sync::Arc;

use bytes::Bytes;
use lattice_runtime::Val;
use lattice_wrpc::trace::TraceParent;
use lattice_wrpc::transport::{self, Invocation};
use lattice_wrpc::{CallError, CallErrorKind};

use crate::admission::Admission;
use crate::calls::Calls;
use crate::components::Components;
use crate::serving::{InFlight, Serving};

/// How long a call runs before its caller is told it arrived.
const ACK_AFTER: std::time::Duration = std::time::Duration::from_millis(2);

/// What serving needs of its host, handed to it once at start-up.
pub(crate) struct Server {
    pub host_id: String,
    pub lattice: String,
    pub nats: async_nats::Client,
    pub components: Arc<Components>,
    /// Bounds on what callers make this host hold.
    pub admission: Arc<Admission>,
    /// For the watchdog's view of callers (see `caller_gone`).
    pub calls: Arc<Calls>,
    /// What is served, and the calls running now.
    pub serving: Serving,
    /// Where served calls are counted, when the host measures them.
    pub metrics: Option<Arc<lattice_telemetry::Metrics>>,
    /// Where served calls' spans go, when the host has traces on.
    pub tracing: Option<Arc<lattice_telemetry::Tracing>>,
}

/// Starts serving component `id` unless it is served already.
pub(crate) async fn ensure(server: &Arc<Server>, id: &str) -> Result<(), String> {
    if server.serving.serves(id) {
        return Ok(());
    }
    let prefix = lattice_proto::wrpc::component_prefix(&server.lattice, id);
    let sub = server
        .nats
        .queue_subscribe(
            lattice_wrpc::subject::serve_wildcard(&prefix),
            prefix.clone(),
        )
        .await
        .map_err(|e| format!("cannot serve {id}: {e}"))?;
    if let Err(e) = lattice_nats::sync_with_server(&server.nats).await {
        tracing::warn!(component_id = id, error = %e, "cannot confirm the subscription with the server");
    }
    let task = tokio::spawn(serve_loop(server.clone(), id.to_string(), prefix, sub));
    server.serving.insert(id, task);
    Ok(())
}

async fn serve_loop(server: Arc<Server>, id: String, prefix: String, sub: async_nats::Subscriber) {
    // Shared by every call, not copied per call.
    let (id, prefix): (Arc<str>, Arc<str>) = (id.into(), prefix.into());
    let server_id: Arc<str> = server.host_id.as_str().into();
    let nats = Arc::new(server.nats.clone());
    let share = crate::admission::ComponentShare::default();
    lattice_wrpc::serve::each(sub, |msg| {
        let server = server.clone();
        let (id, prefix, server_id) = (id.clone(), prefix.clone(), server_id.clone());
        let nats = nats.clone();
        let share = share.clone();
        async move {
            let running = server.components.get(&id);
            let limit = running
                .as_ref()
                .map(|r| r.pool.policy().limits.max_execution_time)
                .unwrap_or(crate::calls::DEFAULT_CALL_TIMEOUT);
            let mut inv = match transport::accept(&prefix, &nats, msg, limit) {
                Ok(inv) => inv.with_server_id(server_id),
                Err(e) => {
                    tracing::debug!(component_id = %id, error = %e, "refused an invocation");
                    return None;
                }
            };
            let _admitted = match server.admission.call(&share) {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(component_id = %id, error = %e, "refused an invocation");
                    inv.fail(&e).await;
                    return None;
                }
            };
            let _in_flight = InFlight::new(&server.serving, inv.reply_subject());
            let measured = (server.metrics.as_ref())
                .map(|m| (m, running.clone(), std::time::Instant::now()));
            let incoming = inv
                .header(lattice_wrpc::transport::TRACEPARENT_HEADER)
                .and_then(TraceParent::parse);
            let (span, trace) = crate::traces::start(
                server.tracing.as_deref(),
                lattice_telemetry::Kind::Server,
                incoming,
                || format!("{}/{}", inv.instance, inv.func),
                || {
                    let mut a = crate::traces::rpc(&inv.instance, &inv.func);
                    a.push(lattice_telemetry::KeyValue::new("lattice.component", id.to_string()));
                    a
                },
            );
            let outcome = handle(&server, &id, &share, running, &mut inv, trace).await;
            crate::traces::end(span, &outcome);
            if let Some((metrics, running, started)) = measured {
                let error = outcome.as_ref().err().map(|e| e.kind().label());
                measure(metrics, &id, running.as_deref(), &inv, started.elapsed(), error);
            }
            match outcome {
                Ok(then) => then,
                Err(e) => {
                    tracing::debug!(component_id = %id, func = %inv.func, error = %e, "call failed");
                    inv.fail(&e).await;
                    None
                }
            }
        }
    })
    .await
}

/// Records a served call. Its interface and function are labels only when the component
/// exports them (or they are the HTTP handler's): a caller naming made-up functions must not
/// grow the host's metrics, so those are `_OTHER`, as OpenTelemetry's conventions say.
fn measure(
    metrics: &lattice_telemetry::Metrics,
    id: &str,
    running: Option<&crate::components::Running>,
    inv: &Invocation,
    took: std::time::Duration,
    error: Option<&'static str>,
) {
    let http = inv.func == lattice_wrpc::http::HTTP_FUNC
        && (inv.instance == lattice_wrpc::http::HTTP_INSTANCE
            || inv.instance == lattice_wrpc::wrpc_http::WRPC_HTTP_INSTANCE);
    let known = http
        || running.is_some_and(|r| {
            let interface = (!inv.instance.is_empty()).then_some(inv.instance.as_str());
            r.pool.export(interface, &inv.func).is_ok()
        });
    let (interface, function) = if known {
        (inv.instance.as_str(), inv.func.as_str())
    } else {
        ("_OTHER", "_OTHER")
    };
    let call = lattice_telemetry::ServerCall {
        component: id,
        interface,
        function,
    };
    metrics.server_call(&call, took, error);
}

/// Serves one call of `running` (component `id`, if it still runs here); returns the work it
/// leaves for after its results went out.
async fn handle(
    server: &Server,
    id: &str,
    share: &crate::admission::ComponentShare,
    running: Option<Arc<crate::components::Running>>,
    inv: &mut Invocation,
    trace: Option<TraceParent>,
) -> Result<lattice_wrpc::serve::Then, CallError> {
    let running = running.ok_or_else(|| {
        CallError::new(
            CallErrorKind::NoResponders,
            format!("component {id} stopped on this host"),
        )
    })?;
    if inv.instance == lattice_wrpc::http::HTTP_INSTANCE
        && inv.func == lattice_wrpc::http::HTTP_FUNC
    {
        let serving = serve_http(server, &running.pool, inv);
        return lattice_runtime::CURRENT_TRACE
            .scope(trace, serving)
            .await
            .map(|()| None);
    }
    if inv.instance == lattice_wrpc::wrpc_http::WRPC_HTTP_INSTANCE
        && inv.func == lattice_wrpc::http::HTTP_FUNC
    {
        let serving = serve_wrpc_http(&running.pool, inv);
        return lattice_runtime::CURRENT_TRACE
            .scope(trace, serving)
            .await
            .map(|()| None);
    }
    let instance = inv.instance.clone();
    let interface = (!instance.is_empty()).then_some(instance.as_str());
    let export = running
        .pool
        .export(interface, &inv.func)
        .map_err(CallError::for_caller)?;
    let (params, size) = inv
        .read_params(|b| {
            lattice_wrpc::decode_values_within::<Val>(
                &export.params,
                b,
                crate::admission::MAX_CALL_PARAM_BYTES,
            )
            // The bytes as received stay with the call too.
            .map(|(params, decoded)| (params, decoded + b.len()))
        })
        .await?;
    // Held until the call ends: what many waiting calls hold together is bounded too.
    let _held = server.admission.hold(Some(share), size)?;
    // Calls this one makes (through the guest's imports) continue its trace.
    if let Some(t) = &trace {
        tracing::debug!(component_id = id, func = %inv.func, trace_id = %t.trace_id_hex(), "serving call");
    }
    let func = inv.func.clone();
    let call = lattice_runtime::CURRENT_TRACE.scope(
        trace,
        running.pool.call_then_clean_up(interface, &func, &params),
    );
    let call = tokio::time::timeout_at(inv.deadline, call);
    let (results, spent) = acknowledging(inv, call)
        .await?
        .map_err(|_| {
            CallError::new(
                CallErrorKind::DeadlineExceeded,
                "the caller's deadline passed during the call",
            )
        })?
        .map_err(CallError::for_caller)?;
    let mut bytes = Vec::new();
    lattice_wrpc::encode_values(&export.results, &results, &mut bytes)
        .map_err(|e| CallError::new(CallErrorKind::Decode, e.to_string()))?;
    inv.respond(Bytes::from(bytes)).await?;
    // Freed (and the next instance made) once the results are on the socket, not before.
    let written = inv.written();
    Ok(Some(Box::pin(async move {
        written.await;
        spent.clean_up().await
    })))
}

/// Serves an HTTP request another host forwarded (see `crate::http`). Its bodies stream
/// for as long as the component runs, so the forwarding host is checked on meanwhile: when
/// it is gone, the request ends at once rather than at the component's time limit.
async fn serve_http(
    server: &Server,
    pool: &Arc<lattice_runtime::ComponentPool>,
    inv: &mut Invocation,
) -> Result<(), CallError> {
    let caller = inv.header(transport::CALLER_HEADER).map(str::to_string);
    let work = serve_forwarded_http(pool, inv);
    let (Some(caller), Some(watchdog)) = (caller, server.calls.wrpc.watchdog()) else {
        return work.await;
    };
    tokio::select! {
        r = work => r,
        () = gone(watchdog, &caller) => Err(CallError::new(
            CallErrorKind::OutcomeUnknown,
            format!("host {caller}, which forwarded the request, is gone"),
        )),
    }
}

/// Returns once `host` is gone, checking every `min_timeout`.
async fn gone(watchdog: &transport::Watchdog, host: &str) {
    loop {
        tokio::time::sleep(watchdog.min_timeout).await;
        let state = (watchdog.probe)(host.to_string(), String::new(), watchdog.min_timeout).await;
        if state == transport::CallState::HostGone {
            return;
        }
    }
}

async fn serve_forwarded_http(
    pool: &Arc<lattice_runtime::ComponentPool>,
    inv: &mut Invocation,
) -> Result<(), CallError> {
    let request = inv.read_params(lattice_wrpc::http::Request::decode).await?;
    let rest_of_body = match request.body_follows {
        true => Some(inv.body_chunks().await?),
        false => None,
    };
    let call = crate::http::serve_forwarded(pool, request, rest_of_body, inv.deadline);
    let (head, body) = acknowledging(inv, call).await??;
    let mut bytes = Vec::new();
    head.encode(&mut bytes);
    inv.respond_streaming(Bytes::from(bytes), crate::http::data_chunks(body))
        .await
}

/// Serves a request as wasmCloud v1 sends one (its http-server provider, `wash call`, a
/// wasmCloud host): `wrpc:http/incoming-handler@0.1.0.handle`, bodies streamed on nested
/// paths (`lattice_wrpc::wrpc_http`). A failure of the component is the handler's
/// `error-code`, as a wasmCloud host reports it.
async fn serve_wrpc_http(
    pool: &Arc<lattice_runtime::ComponentPool>,
    inv: &mut Invocation,
) -> Result<(), CallError> {
    use lattice_wrpc::wrpc_http::{self as wrpc_http, ErrorCode, WRPC_HTTP_BODY_PATH};
    // Subscribed before the handshake, after which the caller sends a streamed body there.
    let nested = inv.nested_bytes(WRPC_HTTP_BODY_PATH).await?;
    let request = inv.read_params(wrpc_http::Request::decode).await?;
    let (body, rest_of_body) = match request.body {
        Some(whole) => (whole, None),
        None => {
            // The caller waits for the handshake before it sends the body.
            inv.acknowledge().await?;
            (Vec::new(), Some(nested))
        }
    };
    let forwarded = lattice_wrpc::http::Request {
        method: request.method,
        path_with_query: request.path_with_query.unwrap_or_else(|| "/".into()),
        scheme: request.scheme,
        authority: request.authority,
        headers: request.headers,
        body,
        body_follows: rest_of_body.is_some(),
    };
    let call = crate::http::serve_forwarded(pool, forwarded, rest_of_body, inv.deadline);
    let mut bytes = Vec::new();
    match acknowledging(inv, call).await? {
        Ok((head, body)) => {
            wrpc_http::encode_response(&head, &mut bytes);
            inv.respond_nested(
                Bytes::from(bytes),
                WRPC_HTTP_BODY_PATH,
                crate::http::data_chunks(body),
            )
            .await
        }
        Err(e) => {
            let code = match e.kind() {
                CallErrorKind::DeadlineExceeded => ErrorCode::ResponseTimeout,
                _ => ErrorCode::Internal(Some(e.to_string())),
            };
            code.encode_err(&mut bytes);
            inv.respond(Bytes::from(bytes)).await
        }
    }
}

/// Runs `call`; a short one answers the handshake together with its results, a longer one
/// tells the caller after [`ACK_AFTER`] that its call arrived.
async fn acknowledging<T>(
    inv: &mut Invocation,
    call: impl std::future::Future<Output = T>,
) -> Result<T, CallError> {
    tokio::pin!(call);
    // The call first: one that ends at once never arms the timer (arming one due before
    // the runtime's next wake-up wakes a parked thread: ~10 µs of CPU per call, measured).
    tokio::select! {
        biased;
        r = &mut call => Ok(r),
        _ = tokio::time::sleep(ACK_AFTER) => {
            inv.acknowledge().await?;
            Ok(call.await)
        }
    }
}
