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
use lattice_proto::op::{Alive, Op};
use lattice_proto::subject::CtlSubjects;
use lattice_proto::CtlResponse;
use lattice_runtime::{Type, Val};
use lattice_wrpc::retry::{retry, RetryPolicy};
use lattice_wrpc::trace::TraceParent;
use lattice_wrpc::transport::{
    CallState, Watchdog, LINK_HEADER, SOURCE_HEADER, TRACEPARENT_HEADER,
};
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
    /// Extra attempts made by the retry policy.
    pub retried: AtomicU64,
    /// HTTP requests served by a component in this process.
    pub http_local: AtomicU64,
    /// HTTP requests forwarded to another host over wRPC.
    pub http_remote: AtomicU64,
}

impl RoutingStats {
    /// Counts the extra attempts of one retried call.
    pub(crate) fn count_retries(&self, attempts: &lattice_wrpc::retry::Attempts) {
        if attempts.made > 1 {
            self.retried
                .fetch_add(u64::from(attempts.made - 1), Ordering::Relaxed);
        }
    }

    pub fn counts(&self) -> RoutingCounts {
        RoutingCounts {
            local: self.local.load(Ordering::Relaxed),
            remote: self.remote.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            http_local: self.http_local.load(Ordering::Relaxed),
            http_remote: self.http_remote.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of [`RoutingStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoutingCounts {
    pub local: u64,
    pub remote: u64,
    pub retried: u64,
    pub http_local: u64,
    pub http_remote: u64,
}

pub(crate) struct HostRouter {
    pub shared: Weak<HostShared>,
}

impl lattice_runtime::Router for HostRouter {
    fn call(
        &self,
        source: Arc<str>,
        link_name: String,
        instance: String,
        func: String,
        params: Vec<Val>,
        param_types: Vec<Type>,
        results: Vec<Type>,
    ) -> BoxFuture<'static, Result<Vec<Val>, CallError>> {
        let shared = self.shared.clone();
        Box::pin(async move {
            let shared = shared
                .upgrade()
                .ok_or_else(|| CallError::new(CallErrorKind::Stopped, "the host is stopping"))?;
            route(
                &shared,
                &source,
                &link_name,
                &instance,
                &func,
                params,
                &param_types,
                &results,
            )
            .await
        })
    }
}

tokio::task_local! {
    /// The trace of the call being served, so calls it makes continue it.
    pub(crate) static CURRENT_TRACE: Option<TraceParent>;
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn route(
    shared: &HostShared,
    source: &str,
    link_name: &str,
    instance: &str,
    func: &str,
    params: Vec<Val>,
    param_types: &[Type],
    results: &[Type],
) -> Result<Vec<Val>, CallError> {
    let not_linked = || {
        CallError::new(
            CallErrorKind::NotLinked,
            format!(
                "{source} has no link{} for {instance} (add one: lattice link put {source} TARGET_ID NAMESPACE PACKAGE --interface INTERFACE{})",
                if link_name == "default" { String::new() } else { format!(" named {link_name:?}") },
                if link_name == "default" { String::new() } else { format!(" --name {link_name}") },
            ),
        )
    };
    let (ns, pkg, iface) = split_instance(instance).ok_or_else(not_linked)?;
    let route = shared
        .links
        .target(source, ns, pkg, iface, link_name)
        .ok_or_else(not_linked)?;
    let target = route.target;
    if !shared.force_remote_calls {
        if let Some(local) = shared.components.get(&target) {
            shared.routing.local.fetch_add(1, Ordering::Relaxed);
            return local
                .pool
                .call(Some(instance), func, &params)
                .await
                .map_err(CallError::for_caller);
        }
    }
    shared.routing.remote.fetch_add(1, Ordering::Relaxed);
    let mut bytes = Vec::new();
    lattice_wrpc::encode_values(param_types, &params, &mut bytes)
        .map_err(|e| CallError::new(CallErrorKind::Decode, e.to_string()))?;
    let bytes = Bytes::from(bytes);
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
    let prefix = lattice_proto::wrpc::component_prefix(&shared.lattice, &target);
    let mut policy = RetryPolicy::default().idempotent(route.idempotent);
    if shared.connected_at.within(SETTLING) {
        // Just (re)connected: interest from the rest of the cluster may not have reached our
        // server yet, so "no responders" may be wrong. Keep trying until the deadline.
        policy.no_responders_for = shared.call_timeout;
    } else if shared.recently_answered(&target) {
        // It answered moments ago: its hosts are more likely moving (reconnecting to another
        // server, restarting) than gone. Give them a moment, not the whole deadline.
        policy.no_responders_for = MOVING_GRACE;
    }
    let (result, attempts) = retry(&policy, deadline, || {
        shared.wrpc.invoke(
            &prefix,
            instance,
            func,
            bytes.clone(),
            headers.clone(),
            deadline,
            |b| lattice_wrpc::decode_values::<Val>(results, b),
        )
    })
    .await;
    shared.routing.count_retries(&attempts);
    if result.is_ok() {
        shared.answered(&target);
    }
    result
}

/// How a host's calls notice that the host running them is gone: a call nobody acknowledges
/// in time (2 s, or more on a slow link; Lattice hosts acknowledge any call still running
/// after 2 ms), or whose host fails a liveness check (every 250 ms), ends "outcome unknown"
/// rather than waiting out its deadline. See [`lattice_wrpc::retry`] for what happens next.
pub(crate) fn watchdog(nats: async_nats::Client, subjects: CtlSubjects) -> Watchdog {
    Watchdog {
        min_timeout: Duration::from_secs(2),
        probe_every: Duration::from_millis(250),
        probe: Arc::new(move |host: String, call: String, timeout: Duration| {
            let nats = nats.clone();
            let subject = subjects.host_op(Op::HostAlive, &host);
            Box::pin(async move {
                let asked = nats.request(subject, Bytes::from(call));
                match tokio::time::timeout(timeout, asked).await {
                    Ok(Ok(reply)) => {
                        match serde_json::from_slice::<CtlResponse<()>>(&reply.payload) {
                            Ok(r) if Alive::parse(&r.message) == Some(Alive::Finished) => {
                                CallState::Finished
                            }
                            _ => CallState::Running,
                        }
                    }
                    Ok(Err(e))
                        if matches!(e.kind(), async_nats::RequestErrorKind::NoResponders) =>
                    {
                        tracing::debug!(host_id = %host, "host of a running call is gone");
                        CallState::HostGone
                    }
                    // Our own connection's trouble says nothing about the host.
                    Ok(Err(e)) => {
                        tracing::debug!(host_id = %host, error = %e, "cannot ask about a call");
                        CallState::Running
                    }
                    Err(_) => {
                        tracing::debug!(host_id = %host, "host of a running call is silent");
                        CallState::HostGone
                    }
                }
            })
        }),
    }
}

/// How long after a (re)connect "no responders" is not believed.
const SETTLING: Duration = Duration::from_secs(5);
/// How long "no responders" is retried for a target that answered within [`RECENTLY`].
pub(crate) const MOVING_GRACE: Duration = Duration::from_secs(2);
/// See [`MOVING_GRACE`].
pub(crate) const RECENTLY: Duration = Duration::from_secs(30);

/// When the host's NATS connection was last re-established (the first connection is not a
/// reconnect: the server it joins already knows the cluster's interest).
#[derive(Debug)]
pub struct ConnectedAt {
    epoch: std::time::Instant,
    first_seen: std::sync::atomic::AtomicBool,
    /// Milliseconds after `epoch`, plus one (0: never).
    at_ms: AtomicU64,
}

impl Default for ConnectedAt {
    fn default() -> Self {
        Self {
            epoch: std::time::Instant::now(),
            first_seen: Default::default(),
            at_ms: AtomicU64::new(0),
        }
    }
}

impl ConnectedAt {
    /// Records a connection event.
    pub fn now(&self) {
        if !self.first_seen.swap(true, Ordering::Relaxed) {
            return;
        }
        let ms = self.epoch.elapsed().as_millis() as u64 + 1;
        self.at_ms.store(ms, Ordering::Relaxed);
    }

    /// Whether a connection was made less than `d` ago.
    pub fn within(&self, d: Duration) -> bool {
        match self.at_ms.load(Ordering::Relaxed) {
            0 => false,
            ms => {
                let at = Duration::from_millis(ms - 1);
                self.epoch.elapsed().saturating_sub(at) < d
            }
        }
    }
}

/// Default budget of a call routed from a component's import.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);
