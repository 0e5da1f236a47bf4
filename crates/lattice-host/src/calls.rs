//! Every call this host sends to a component elsewhere, a linked import's call or a
//! forwarded HTTP request alike, goes through [`Calls`]: one retry policy, one watchdog, one
//! notion of whether a target is reachable, one set of counters.
//!
//! - **Retries** ([`lattice_wrpc::retry`]): "no responders" and "busy" are tried again for a
//!   while, since nothing ran; "outcome unknown" only for idempotent calls.
//! - **Reachability**: just after a (re)connect ([`SETTLING`]), interest from the rest of the
//!   cluster may not have reached our server yet, so "no responders" is retried for the call
//!   timeout; a target that answered within [`RECENTLY`] is more likely moving (its host
//!   reconnecting or restarting) than gone, so it is retried for [`MOVING_GRACE`].
//! - **Watchdog** ([`watchdog`]): a call whose host died ends "outcome unknown" in seconds.
//!
//! Not here: which target a call goes to (`router`, `http`) and serving calls (`serve`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use lattice_proto::op::{Alive, Op};
use lattice_proto::subject::CtlSubjects;
use lattice_proto::CtlResponse;
use lattice_wrpc::retry::{retry, RetryPolicy};
use lattice_wrpc::transport::{CallState, Watchdog};
use lattice_wrpc::CallError;

/// Default budget of a call routed from a component's import.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Calls to components elsewhere, and what they have learnt about the targets.
pub(crate) struct Calls {
    /// The client every remote call is sent with (one shared inbox).
    pub wrpc: lattice_wrpc::transport::Client,
    pub stats: RoutingStats,
    connected_at: Arc<ConnectedAt>,
    /// When each remote target last answered a call from here.
    answered_at: Mutex<HashMap<String, Instant>>,
    /// The budget of a call made through a component's import.
    pub timeout: Duration,
    /// Never call in-process (for tests).
    pub force_remote: bool,
}

impl Calls {
    pub(crate) fn new(
        nats: async_nats::Client,
        subjects: CtlSubjects,
        connected_at: Arc<ConnectedAt>,
        timeout: Duration,
        force_remote: bool,
    ) -> Self {
        Self {
            wrpc: lattice_wrpc::transport::Client::with_watchdog(
                nats.clone(),
                watchdog(nats, subjects),
            ),
            stats: RoutingStats::default(),
            connected_at,
            answered_at: Mutex::new(HashMap::new()),
            timeout,
            force_remote,
        }
    }

    /// The retry policy of a call to `target` (`idempotent`: it may run twice).
    pub(crate) fn policy(&self, target: &str, idempotent: bool) -> RetryPolicy {
        let mut policy = RetryPolicy::default().idempotent(idempotent);
        if self.connected_at.within(SETTLING) {
            policy.no_responders_for = self.timeout;
        } else if self.recently_answered(target) {
            policy.no_responders_for = MOVING_GRACE;
        }
        policy
    }

    /// Sends a call to `target`: `attempt` makes one try, tried again under `policy` until
    /// `deadline`. Counts the retries and remembers that the target answered.
    pub(crate) async fn send<T, F, Fut>(
        &self,
        target: &str,
        policy: &RetryPolicy,
        deadline: tokio::time::Instant,
        attempt: F,
    ) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        self.send_counted(target, policy, deadline, attempt).await.0
    }

    /// [`Calls::send`], also saying how many times the call was sent again.
    pub(crate) async fn send_counted<T, F, Fut>(
        &self,
        target: &str,
        policy: &RetryPolicy,
        deadline: tokio::time::Instant,
        attempt: F,
    ) -> (Result<T, CallError>, u32)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let (result, attempts) = retry(policy, deadline, attempt).await;
        self.stats.count_retries(&attempts);
        if result.is_ok() {
            self.answered(target);
        }
        (result, attempts.made.saturating_sub(1))
    }

    fn answered(&self, id: &str) {
        if let Ok(mut a) = self.answered_at.lock() {
            if let Some(at) = a.get_mut(id) {
                *at = Instant::now();
            } else {
                a.insert(id.to_string(), Instant::now());
            }
        }
    }

    fn recently_answered(&self, id: &str) -> bool {
        self.answered_at
            .lock()
            .ok()
            .and_then(|a| a.get(id).map(|at| at.elapsed() < RECENTLY))
            .unwrap_or(false)
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
    /// Reconnections since the host started (the metrics' `lattice.nats.reconnects`).
    pub reconnects: Arc<AtomicU64>,
}

impl Default for ConnectedAt {
    fn default() -> Self {
        Self {
            epoch: std::time::Instant::now(),
            first_seen: Default::default(),
            at_ms: AtomicU64::new(0),
            reconnects: Default::default(),
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
        self.reconnects.fetch_add(1, Ordering::Relaxed);
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
