//! Where a component's import calls go: resolve the link, then call the target in-process when
//! it runs on this host (no serialization, no NATS hop), else over wRPC.
//!
//! The call path is router → link lookup → local pool or wRPC transport; each step reports a
//! typed [`CallError`] whose text becomes the calling guest's trap ("not linked: …",
//! "no responders: …", "deadline exceeded: …").

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use futures::future::BoxFuture;
use lattice_proto::ctl::split_instance;
use lattice_runtime::{CallErrorKind as RunKind, Type, Val};
use lattice_wrpc::trace::TraceParent;
use lattice_wrpc::transport::{LINK_HEADER, SOURCE_HEADER, TRACEPARENT_HEADER};
use lattice_wrpc::{CallError, CallErrorKind};
use tokio::time::Instant;

use crate::host::HostShared;

/// Counters of routed calls.
#[derive(Debug, Default)]
pub struct RoutingStats {
    /// Calls that stayed in this process.
    pub local: AtomicU64,
    /// Calls sent over wRPC.
    pub remote: AtomicU64,
}

pub(crate) struct HostRouter {
    pub shared: Weak<HostShared>,
}

impl lattice_runtime::Router for HostRouter {
    fn call(
        &self,
        source: Arc<str>,
        instance: String,
        func: String,
        params: Vec<Val>,
        param_types: Vec<Type>,
        results: Vec<Type>,
    ) -> BoxFuture<'static, Result<Vec<Val>, String>> {
        let shared = self.shared.clone();
        Box::pin(async move {
            let shared = shared.upgrade().ok_or("the host is stopping")?;
            route(
                &shared,
                &source,
                &instance,
                &func,
                params,
                &param_types,
                &results,
            )
            .await
            .map_err(|e| e.to_string())
        })
    }
}

tokio::task_local! {
    /// The trace of the call being served, so calls it makes continue it.
    pub(crate) static CURRENT_TRACE: Option<TraceParent>;
}

/// Maps a local call failure onto the wire's error kinds.
pub(crate) fn from_runtime(e: lattice_runtime::CallError) -> CallError {
    let kind = match e.kind() {
        // The guest's own import call failed: report that failure as it was.
        RunKind::Import => return CallError::parse(e.message()),
        RunKind::NoSuchFunction | RunKind::BadArguments => CallErrorKind::Rejected,
        RunKind::DeadlineExceeded => CallErrorKind::DeadlineExceeded,
        RunKind::Stopped => CallErrorKind::NoResponders,
        RunKind::MemoryLimit | RunKind::Trapped | RunKind::Instantiate => CallErrorKind::Trapped,
    };
    CallError::new(kind, e.message())
}

pub(crate) async fn route(
    shared: &HostShared,
    source: &str,
    instance: &str,
    func: &str,
    params: Vec<Val>,
    param_types: &[Type],
    results: &[Type],
) -> Result<Vec<Val>, CallError> {
    let link_name = "default";
    let not_linked = || {
        CallError::new(
            CallErrorKind::NotLinked,
            format!(
                "{source} has no link for {instance} (add one: lattice link put {source} TARGET_ID NAMESPACE PACKAGE --interface INTERFACE)"
            ),
        )
    };
    let (ns, pkg, iface) = split_instance(instance).ok_or_else(not_linked)?;
    let target = shared
        .links
        .target(source, ns, pkg, iface, link_name)
        .ok_or_else(not_linked)?;
    if !shared.force_remote_calls {
        if let Some(local) = shared.components.get(&target) {
            shared.routing.local.fetch_add(1, Ordering::Relaxed);
            return local
                .pool
                .call(Some(instance), func, &params)
                .await
                .map_err(from_runtime);
        }
    }
    shared.routing.remote.fetch_add(1, Ordering::Relaxed);
    let mut bytes = Vec::new();
    lattice_wrpc::encode_values(param_types, &params, &mut bytes)
        .map_err(|e| CallError::new(CallErrorKind::Decode, e.to_string()))?;
    let mut headers = HeaderMap::new();
    headers.insert(SOURCE_HEADER, source);
    headers.insert(LINK_HEADER, link_name);
    let trace = CURRENT_TRACE
        .try_with(|t| *t)
        .ok()
        .flatten()
        .map(|t| t.child())
        .unwrap_or_else(TraceParent::root);
    headers.insert(TRACEPARENT_HEADER, trace.to_string().as_str());
    let deadline = Instant::now() + shared.call_timeout;
    shared
        .wrpc
        .invoke(
            &format!("{}.{target}", shared.lattice),
            instance,
            func,
            Bytes::from(bytes),
            headers,
            deadline,
            |b| lattice_wrpc::decode_values::<Val>(results, b),
        )
        .await
}

/// Default budget of a call routed from a component's import.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);
