//! The load that the chaos scenarios run and what they measure: a caller host in the test
//! process running `relay` linked to `calc` on host processes, calls at a steady rate each
//! checked for the right sum, and a [`Report`] printed as one row of the chaos table.
//! The scenarios themselves live in the parent module and in `partitions`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lattice_host::{CallErrorKind, Host, InvokeError, Val};
use lattice_proto::ctl::Link;
use lattice_testkit::{HostProcess, HostSpec, NatsServer};

use crate::common::*;

pub(crate) const RELAY: Option<&str> = Some("lattice:examples/relay@0.1.0");
/// Each call's deadline, set on the caller host.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Outcome of a load run.
#[derive(Default)]
pub(crate) struct Report {
    /// (started after the run began, took) per call that succeeded.
    pub(crate) ok: Vec<(Duration, Duration)>,
    /// Failures by kind, with the longest time one took.
    pub(crate) failed: BTreeMap<Failure, (u64, Duration)>,
    pub(crate) retried: u64,
}

impl Report {
    pub(crate) fn sent(&self) -> u64 {
        self.ok.len() as u64 + self.failed_count()
    }

    pub(crate) fn failed_count(&self) -> u64 {
        self.failed.values().map(|(n, _)| n).sum()
    }

    /// p-th percentile latency of the successful calls started in `window` (all if `None`).
    pub(crate) fn percentile(&self, p: f64, window: Option<(Duration, Duration)>) -> Duration {
        let mut took: Vec<Duration> = self
            .ok
            .iter()
            .filter(|(at, _)| window.is_none_or(|(from, to)| *at >= from && *at < to))
            .map(|(_, t)| *t)
            .collect();
        took.sort();
        if took.is_empty() {
            return Duration::ZERO;
        }
        took[((took.len() as f64 * p) as usize).min(took.len() - 1)]
    }

    /// p99 and slowest of the calls started from 1 s before a fault to 2 s after it (those in
    /// flight when it struck included): how long failover made anyone wait.
    pub(crate) fn around(&self, fault: Duration) -> String {
        let window = Some((
            fault.saturating_sub(Duration::from_secs(1)),
            fault + Duration::from_secs(2),
        ));
        format!(
            "calls around the fault: p99 {:.1?}, slowest {:.1?}",
            self.percentile(0.99, window),
            self.percentile(1.0, window)
        )
    }

    pub(crate) fn row(&self, scenario: &str, detect: &str) {
        let failed = if self.failed.is_empty() {
            "0".to_string()
        } else {
            self.failed
                .iter()
                .map(|(k, (n, _))| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "\n| scenario | sent | succeeded | failed | retried | p50 | p99 | detect / reroute |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        println!(
            "| {scenario} | {} | {} | {failed} | {} | {:.1?} | {:.1?} | {detect} |",
            self.sent(),
            self.ok.len(),
            self.retried,
            self.percentile(0.5, None),
            self.percentile(0.99, None),
        );
    }
}

/// A caller host in this process running `relay`, linked to `calc` (idempotent or not).
pub(crate) async fn caller(
    url: &str,
    lattice: &str,
    idempotent: bool,
    kv_replicas: usize,
) -> Arc<Host> {
    let caller = in_process_host_with(url, lattice, |c| {
        c.call_timeout = CALL_TIMEOUT;
        c.kv_replicas = kv_replicas;
    })
    .await;
    let ctl = ctl(url, lattice).await;
    let ev = scale(
        &ctl,
        caller.id(),
        &scale_cmd(&component_ref("relay"), "relay", 64),
    )
    .await;
    assert_eq!(ev.event_type(), Some("component_scaled"), "{:?}", ev.data);
    let mut link = Link::new("relay", "calc", "lattice", "examples", &["calc"]);
    link.idempotent = idempotent;
    lattice_testkit::wait::until_async(
        "the link to be stored",
        Duration::from_secs(20),
        Duration::from_millis(200),
        || async {
            ctl.put_link(&link)
                .await
                // Shown if the test fails: why a put was refused while the lattice formed.
                .map_err(|e| eprintln!("link put failed: {e}"))
                .ok()
        },
    )
    .await
    .unwrap();
    Arc::new(caller)
}

/// `n` host processes on `urls[i % urls.len()]`, each running `calc`.
pub(crate) async fn calc_hosts(
    urls: &[String],
    lattice: &str,
    n: usize,
    extra: &[&str],
) -> Vec<HostProcess> {
    let ctl = ctl(&urls[0], lattice).await;
    let mut hosts = Vec::new();
    for i in 0..n {
        let mut spec = calc_spec(&urls[i % urls.len()], lattice);
        for a in extra {
            spec = spec.arg(*a);
        }
        hosts.push(calc_host(&ctl, &spec).await);
    }
    hosts
}

/// A host of the load: heartbeats every 500 ms, may load components from files.
pub(crate) fn calc_spec(url: &str, lattice: &str) -> HostSpec {
    host(url, lattice)
        .heartbeat(Duration::from_millis(500))
        .arg("--allow-file-load")
}

/// Starts `spec` and runs 16 instances of `calc` on it, once `ctl` can reach it.
pub(crate) async fn calc_host(ctl: &lattice_ctl::Client, spec: &HostSpec) -> HostProcess {
    let h = spec.start().unwrap();
    // A host on another cluster member is reachable once its interest crossed the route.
    lattice_testkit::wait::until_async(
        "the host to be reachable from the first server",
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async { ctl.host_inventory(&h.id).await.ok() },
    )
    .await
    .unwrap();
    let ev = scale(ctl, &h.id, &scale_cmd(&component_ref("calc"), "calc", 16)).await;
    assert_eq!(ev.event_type(), Some("component_scaled"), "{:?}", ev.data);
    h
}

/// How one call of the load failed: the kind of its error, or a wrong answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Failure {
    Call(CallErrorKind),
    /// `relay` itself is not running on the caller host.
    NotRunning,
    WrongResult,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Call(kind) => write!(f, "{kind:?}"),
            Failure::NotRunning => f.write_str("NotRunning"),
            Failure::WrongResult => f.write_str("WrongResult"),
        }
    }
}

/// A failed call: its kind and, for the log, its message.
pub(crate) type Failed = (Failure, String);

/// One call of `relay.add-via-calc(i, 1)` (or, with `wait_ms`, of `relay.wait-via-calc`,
/// which holds a `calc` instance busy that long): Ok(took) when it returned the right value.
pub(crate) async fn call_once(caller: &Host, i: i32, wait_ms: u32) -> Result<Duration, Failed> {
    let started = Instant::now();
    let (func, args, expected) = match wait_ms {
        0 => (
            "add-via-calc",
            vec![Val::S32(i), Val::S32(1)],
            Val::S32(i + 1),
        ),
        ms => ("wait-via-calc", vec![Val::U32(ms)], Val::U32(ms)),
    };
    match caller.call("relay", RELAY, func, &args).await {
        Ok(v) if v == [expected] => Ok(started.elapsed()),
        Ok(v) => Err((Failure::WrongResult, format!("wrong result {v:?}"))),
        Err(e @ InvokeError::NotRunning(_)) => Err((Failure::NotRunning, e.to_string())),
        Err(InvokeError::Call(e)) => Err((Failure::Call(e.kind()), e.to_string())),
    }
}

/// Waits until calls through the link succeed.
pub(crate) async fn wait_calls(caller: &Host) {
    let last = std::sync::Mutex::new(String::new());
    lattice_testkit::wait::until_async(
        "calls through the link",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async {
            call_once(caller, 0, 0)
                .await
                .map_err(|(_, e)| *last.lock().unwrap() = e)
                .ok()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; last error: {}", last.lock().unwrap()));
}

/// Calls at `rate` per second for `duration`, each on its own task (a slow call never slows
/// the rate); `fault` runs once, `fault_at` into the run, on a blocking thread.
pub(crate) async fn steady_load(
    caller: &Arc<Host>,
    wait_ms: u32,
    rate: u32,
    duration: Duration,
    fault_at: Duration,
    fault: impl FnOnce() + Send + 'static,
) -> Report {
    let retried_before = caller.routing_stats().retried;
    let started = Instant::now();
    let mut fault = Some(fault);
    let mut tasks = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut i = 0;
    while started.elapsed() < duration {
        tick.tick().await;
        if started.elapsed() >= fault_at {
            if let Some(f) = fault.take() {
                tasks.push(tokio::task::spawn_blocking(move || {
                    f();
                    None
                }));
            }
        }
        let caller = caller.clone();
        let at = started.elapsed();
        i += 1;
        let n = i;
        tasks.push(tokio::spawn(async move {
            let r = call_once(&caller, n, wait_ms).await;
            Some((at, r, started.elapsed() - at))
        }));
    }
    let mut report = Report::default();
    for t in tasks {
        match t.await.expect("load task") {
            Some((at, Ok(took), _)) => report.ok.push((at, took)),
            Some((at, Err((kind, e)), took)) => {
                let entry = report.failed.entry(kind).or_default();
                entry.0 += 1;
                entry.1 = entry.1.max(took);
                eprintln!("call started at {at:.1?} failed after {took:.1?}: {e}");
            }
            None => {}
        }
    }
    report.retried = caller.routing_stats().retried - retried_before;
    report
}

/// Calls served per host, read from each host's inventory.
pub(crate) async fn served(ctl: &lattice_ctl::Client, hosts: &[&str]) -> Vec<u64> {
    let mut out = Vec::new();
    for h in hosts {
        let inv = ctl.host_inventory(h).await.unwrap();
        let calls = inv
            .components
            .iter()
            .find(|c| c.id == "calc")
            .and_then(|c| c.calls)
            .unwrap_or(0);
        out.push(calls);
    }
    out
}

/// How long after the fault (its time set in `at` when it struck) `nats` held fewer than
/// `connections` client connections: when the server dropped a silent host, after which it
/// gets no calls.
pub(crate) async fn dropped_after(
    nats: &NatsServer,
    connections: u64,
    at: &Mutex<Option<Instant>>,
) -> Duration {
    lattice_testkit::wait::until_async(
        "the server to drop the silent host",
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async {
            let at = (*at.lock().unwrap())?;
            (nats.connections()? < connections).then(|| at.elapsed())
        },
    )
    .await
    .unwrap()
}
