//! `wasi:http` in the runtime: serving a component's `wasi:http/incoming-handler` export
//! ([`ComponentPool::handle_http`]). The outgoing-request grant is `outgoing`'s.
//!
//! What a request is and where it comes from (listeners, routes, other hosts) is the host's
//! business; here a request goes into one fresh instance and a response comes out, its body
//! streamed from the guest while the instance keeps running.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiBody, WasiHttpCtxView, WasiHttpView};

use crate::error::{CallError, CallErrorKind};
use crate::pool::ComponentPool;
use crate::store::Ctx;

/// The body of a request handed to a component: anything that yields bytes.
pub type RequestBody = WasiBody;
/// The body of a component's response, streamed while its instance runs.
pub type ResponseBody = wasmtime_wasi_http::p2::body::HyperOutgoingBody;
/// Why a body stopped short.
pub use wasmtime_wasi_http::Error as BodyError;

/// The WIT name of the export that serves HTTP.
pub const INCOMING_HANDLER: &str = "wasi:http/incoming-handler";

/// A body made of bytes already in memory.
pub fn full_body(bytes: impl Into<Bytes>) -> RequestBody {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The body of a request a hyper server received.
pub fn incoming_body(body: hyper::body::Incoming) -> RequestBody {
    body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync()
}

impl WasiHttpView for Ctx {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outgoing,
        }
    }
}

impl ComponentPool {
    /// Whether the component exports `wasi:http/incoming-handler`.
    pub fn serves_http(&self) -> bool {
        self.proxy_pre().is_some()
    }

    /// Serves one HTTP request in a fresh instance. Returns once the guest has set its
    /// response; the body then streams from the instance, which runs (holding its slot and
    /// its execution-time limit) until it finishes writing.
    pub async fn handle_http(
        self: &Arc<Self>,
        request: ::http::Request<RequestBody>,
    ) -> Result<::http::Response<ResponseBody>, CallError> {
        let pre = self.proxy_pre().cloned().ok_or_else(|| {
            CallError::new(
                CallErrorKind::NoSuchFunction,
                format!("component {} does not export {INCOMING_HANDLER}", self.id()),
            )
        })?;
        let permit = self.acquire().await?;
        let mut store = self.new_store();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let scheme = match request.uri().scheme_str() {
            Some("https") => Scheme::Https,
            _ => Scheme::Http,
        };
        let setup = store
            .data_mut()
            .http()
            .new_incoming_request(scheme, request)
            .and_then(|req| Ok((req, store.data_mut().http().new_response_outparam(tx)?)));
        let (req, out) = setup.map_err(|e| {
            CallError::new(CallErrorKind::BadArguments, format!("bad request: {e:#}"))
        })?;
        let pool = self.clone();
        let limit = self.policy().limits.max_execution_time;
        // The handler runs on a task of its own: its calls continue this request's trace.
        let trace = crate::CURRENT_TRACE.try_with(|t| *t).ok().flatten();
        let task = tokio::spawn(crate::CURRENT_TRACE.scope(trace, async move {
            let run = async {
                let proxy = pre
                    .instantiate_async(&mut store)
                    .await
                    .map_err(|e| (e, CallErrorKind::Instantiate))?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await
                    .map_err(|e| (e, CallErrorKind::Trapped))
            };
            let result = match tokio::time::timeout(limit, run).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err((e, kind))) => Err(pool.classify(&store, e, kind)),
                Err(_) => Err(CallError::execution_time(limit)),
            };
            pool.finish(permit, result.as_ref().err());
            result
        }));
        match rx.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(CallError::new(
                CallErrorKind::Trapped,
                format!("component {} answered with error {code:?}", self.id()),
            )),
            // The guest dropped its response-outparam unset: the task says why.
            Err(_) => match task.await {
                Ok(Err(e)) => Err(e),
                Ok(Ok(())) => Err(CallError::new(
                    CallErrorKind::Trapped,
                    format!(
                        "component {} returned without setting a response",
                        self.id()
                    ),
                )),
                Err(e) => Err(CallError::new(CallErrorKind::Trapped, e.to_string())),
            },
        }
    }
}
