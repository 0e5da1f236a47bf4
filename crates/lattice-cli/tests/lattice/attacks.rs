//! Hostile peers against one host process, on loopback: a raw NATS client sends malformed,
//! abandoned, oversized and flooding wRPC invocations, floods a subscribed subject and the
//! control interface; a raw TCP client is a slow-loris HTTP client. Every attack is bounded
//! in count and time. Under each, the host must keep answering pings, a normal `calc.add`
//! and a normal HTTP GET, refuse what is past its bounds with a typed answer, and give back
//! what the attack made it subscribe.
//!
//! Hostile OCI registries are in `registries.rs`, on the same target.
//!
//! Each attack prints a row of the table `scripts/hostile` collects: attack, messages sent,
//! what the host answered, whether it kept serving, `host.ping` p99 during the attack, and the
//! host's peak RSS against its RSS before.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use futures::StreamExt;
use lattice_proto::ctl::Link;
use lattice_testkit::{HostProcess, NatsServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasm_wave::value::{Type, Value};
use wasm_wave::wasm::WasmValue;

use crate::common::*;

const CALC: &str = "lattice:examples/calc@0.1.0";

/// A lattice of one host process running `calc`, `slow` (calc, two instances, calls up to
/// 3 s), `echo` (subscribed to `flood.>`) and `hello` (HTTP on `/hello`).
pub(crate) struct Target {
    nats: NatsServer,
    pub host: HostProcess,
    pub ctl: lattice_ctl::Client,
    http: String,
}

async fn target() -> Target {
    target_with(&[]).await
}

/// [`target`], the host started with `args` too.
pub(crate) async fn target_with(args: &[&str]) -> Target {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let port = lattice_testkit::free_port();
    let mut spec = host(&url, "default")
        .arg("--allow-file-load")
        .arg("--http-address")
        .arg(format!("127.0.0.1:{port}"));
    for a in args {
        spec = spec.arg(*a);
    }
    let host = spec.start().unwrap();
    let ctl = ctl(&url, "default").await;
    let mut slow = scale_cmd(&component_ref("calc"), "slow", 2);
    slow.component_limits = Some([("max_execution_time".to_string(), "3000".to_string())].into());
    for cmd in [
        scale_cmd(&component_ref("calc"), "calc", 4),
        slow,
        scale_cmd(&component_ref("echo"), "echo", 4),
        scale_cmd(&component_ref("http_hello"), "hello", 4),
    ] {
        let ev = scale(&ctl, &host.id, &cmd).await;
        assert_eq!(ev.event_type(), Some("component_scaled"), "{:?}", ev.data);
    }
    put_config(&ctl, "flood-subs", &[("subscriptions", "flood.>")]).await;
    let mut subs = Link::new("messaging", "echo", "wasmcloud", "messaging", &["handler"]);
    subs.source_config = vec!["flood-subs".into()];
    ctl.put_link(&subs).await.unwrap();
    put_config(&ctl, "hello-route", &[("path", "/hello")]).await;
    let mut route = Link::new("http", "hello", "wasi", "http", &["incoming-handler"]);
    route.name = "hello".into();
    route.source_config = vec!["hello-route".into()];
    ctl.put_link(&route).await.unwrap();
    let t = Target {
        nats,
        host,
        ctl,
        http: format!("127.0.0.1:{port}"),
    };
    lattice_testkit::wait::until_async(
        "the host serving calc, HTTP and messages",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async { t.serving().await.then_some(()) },
    )
    .await
    .unwrap();
    t
}

impl Target {
    /// Whether the host answers a ping, a `calc.add`, an HTTP GET and a message request.
    async fn serving(&self) -> bool {
        let ping = self.ping().await.is_some();
        let add = add(&self.ctl).await == Some(42);
        let get = lattice_testkit::http::get(&self.http, "/hello")
            .await
            .is_ok_and(|r| r.status == 200);
        let asked = self.ctl.nats().request("flood.ask", "hi".into());
        let echo = tokio::time::timeout(Duration::from_secs(5), asked)
            .await
            .is_ok_and(|r| r.is_ok_and(|m| &m.payload[..] == b"HI"));
        ping && add && get && echo
    }

    /// One `host.ping`'s round trip to the first answer.
    async fn ping(&self) -> Option<Duration> {
        let subject = lattice_proto::subject::CtlSubjects::new("default")
            .unwrap()
            .host_ping();
        let started = Instant::now();
        let asked = self.ctl.nats().request(subject, "".into());
        tokio::time::timeout(Duration::from_secs(10), asked)
            .await
            .ok()?
            .ok()?;
        Some(started.elapsed())
    }

    /// Subscriptions the NATS server holds now, but the server's and JetStream's own (`$…`:
    /// JetStream's consumers come and go with KV reads whatever an attack does).
    fn subscriptions(&self) -> usize {
        self.nats
            .subscription_subjects()
            .expect("the server's /subsz")
            .iter()
            .filter(|s| !s.starts_with('$'))
            .count()
    }

    /// The host's resident memory now and at its peak, in bytes (`/proc`).
    fn rss(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.host.process.pid())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .map(|kib| kib * 1024)
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Runs `attack` while pinging the host every 20 ms; prints the attack's row and returns
    /// what it reported. Fails the test if any ping went unanswered or the host stopped
    /// serving afterwards.
    pub(crate) async fn under<F, Fut>(&self, name: &str, attack: F) -> Report
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Report>,
    {
        // Each attack's peak is its own: reset the kernel's high-water mark (`clear_refs` 5).
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.host.process.pid()), "5");
        let (before, _) = self.rss();
        let done = Arc::new(AtomicBool::new(false));
        // The pinger runs on a thread and a runtime of its own, with its own connection, so
        // what it measures is the host, not this process busy sending the attack.
        let pings = {
            let done = done.clone();
            let url = self.nats.url();
            let http = self.http.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let nats = async_nats::connect(url).await.unwrap();
                    let subject = lattice_proto::subject::CtlSubjects::new("default")
                        .unwrap()
                        .host_ping();
                    let client = lattice_wrpc::transport::Client::new(nats.clone());
                    let mut times = Vec::new();
                    let (mut lost, mut normal, mut failed) = (0, 0, Vec::new());
                    let mut i = 0u64;
                    while !done.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let asked = nats.request(subject.clone(), "".into());
                        match tokio::time::timeout(Duration::from_secs(10), asked).await {
                            Ok(Ok(_)) => times.push(started.elapsed()),
                            _ => lost += 1,
                        }
                        // Every 10th round, the work of well-behaved users too.
                        if i.is_multiple_of(10) {
                            normal += 1;
                            if let Err(e) = add_with(&client).await {
                                failed.push(format!("calc.add: {e}"));
                            }
                            match lattice_testkit::http::get(&http, "/hello").await {
                                Ok(r) if r.status == 200 => {}
                                other => failed.push(format!("GET /hello: {other:?}")),
                            }
                        }
                        i += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    (times, lost, normal, failed)
                })
            })
        };
        let mut report = attack().await;
        report.rss_before = before;
        done.store(true, Ordering::Relaxed);
        let (mut times, lost, normal, failed) =
            tokio::task::spawn_blocking(move || pings.join().unwrap())
                .await
                .unwrap();
        assert_eq!(lost, 0, "{name}: pings went unanswered");
        assert!(
            failed.is_empty(),
            "{name}: normal work failed during the attack: {failed:?}"
        );
        // Serving again as soon as the attack's backlog is worked off (a flood still queued
        // in the host's subscriptions may refuse a request or two meanwhile).
        let serving = lattice_testkit::wait::until_async(
            "serving after the attack",
            Duration::from_secs(15),
            Duration::from_millis(200),
            || async { self.serving().await.then_some(()) },
        )
        .await
        .is_ok();
        let (_, peak) = self.rss();
        times.sort();
        let p99 = times
            .get((times.len() * 99 / 100).min(times.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default();
        println!(
            "| {name} | {} | {} | {} ({normal} calc.add + GET during it) | {:.1} ms ({} pings) | {} MiB (from {} MiB) |",
            report.sent,
            report.answered,
            if serving { "yes" } else { "NO" },
            p99.as_secs_f64() * 1e3,
            times.len(),
            peak >> 20,
            before >> 20,
        );
        assert!(serving, "{name}: the host stopped serving");
        report
    }
}

/// What an attack sent and how the host answered.
pub(crate) struct Report {
    pub sent: usize,
    pub answered: String,
    /// Replies by kind (`busy`, `decode error`, `ok`, ...).
    pub kinds: HashMap<String, usize>,
    /// The host's RSS before the attack (filled in by [`Target::under`]).
    rss_before: u64,
}

impl Report {
    pub(crate) fn new(
        sent: usize,
        answered: impl Into<String>,
        kinds: HashMap<String, usize>,
    ) -> Self {
        Self {
            sent,
            answered: answered.into(),
            kinds,
            rss_before: 0,
        }
    }
}

/// `calc.add(20, 22)` over wRPC, as a well-behaved client makes it.
async fn add(ctl: &lattice_ctl::Client) -> Option<i32> {
    let client = lattice_wrpc::transport::Client::new(ctl.nats().clone());
    add_with(&client).await.ok()
}

async fn add_with(client: &lattice_wrpc::transport::Client) -> Result<i32, String> {
    let params = [Value::make_s32(20), Value::make_s32(22)];
    let mut bytes = Vec::new();
    lattice_wrpc::encode_values(&[Type::S32, Type::S32], &params, &mut bytes)
        .map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let out = client
        .invoke(
            lattice_wrpc::transport::Call::new("default.calc", CALC, "add", bytes.into(), deadline),
            |b| lattice_wrpc::decode_values::<Value>(&[Type::S32], b),
        )
        .await
        .map_err(|e| e.to_string())?;
    match out[0].unwrap_s32() {
        42 => Ok(42),
        other => Err(format!("20 + 22 = {other}")),
    }
}

/// Sends `n` raw invocations of `func` on component `id` with payloads from `params`, each
/// with its own reply subject and the budget `budget_ms`, and sorts the first reply to each
/// by kind (the `lattice-error` header's kind, else `ok`) until every call has one or
/// `settle` passes.
async fn invoke_raw(
    ctl: &lattice_ctl::Client,
    id: &str,
    func: &str,
    n: usize,
    budget_ms: u64,
    settle: Duration,
    params: impl Fn(usize) -> Vec<u8>,
) -> Report {
    let nats = ctl.nats();
    let inbox = nats.new_inbox();
    let mut replies = nats.subscribe(format!("{inbox}.>")).await.unwrap();
    nats.flush().await.unwrap();
    let subject = lattice_wrpc::subject::invocation(&format!("default.{id}"), CALC, func);
    for i in 0..n {
        let mut headers = HeaderMap::new();
        headers.insert(
            lattice_wrpc::transport::TIMEOUT_HEADER,
            budget_ms.to_string().as_str(),
        );
        nats.publish_with_reply_and_headers(
            subject.clone(),
            format!("{inbox}.{i}"),
            headers,
            params(i).into(),
        )
        .await
        .unwrap();
    }
    nats.flush().await.unwrap();
    let mut first: HashMap<String, String> = HashMap::new();
    let _ = tokio::time::timeout(settle, async {
        while let Some(m) = replies.next().await {
            let call = m.subject[inbox.len() + 1..]
                .split('.')
                .next()
                .unwrap_or_default()
                .to_string();
            let kind = m
                .headers
                .as_ref()
                .and_then(|h| h.get(lattice_wrpc::transport::ERROR_HEADER))
                .map(|e| {
                    lattice_wrpc::CallError::from_header(e.as_str())
                        .kind()
                        .to_string()
                });
            // A handshake without an error is not an answer yet; the results (or an error) are.
            let is_handshake = m.subject.ends_with(&format!(".{call}")) && kind.is_none();
            if is_handshake && m.payload.is_empty() {
                continue;
            }
            first
                .entry(call)
                .or_insert_with(|| kind.unwrap_or_else(|| "ok".into()));
            if first.len() == n {
                break;
            }
        }
    })
    .await;
    let mut kinds: HashMap<String, usize> = HashMap::new();
    for k in first.values() {
        *kinds.entry(k.clone()).or_default() += 1;
    }
    let unanswered = n - first.len();
    if unanswered > 0 {
        kinds.insert("no answer".into(), unanswered);
    }
    let mut parts: Vec<String> = kinds.iter().map(|(k, v)| format!("{v} {k}")).collect();
    parts.sort();
    Report::new(n, parts.join(", "), kinds)
}

/// Messages `echo` has handled on the target's host.
async fn echo_calls(t: &Target) -> u64 {
    let inv = t.ctl.host_inventory(&t.host.id).await.unwrap();
    inv.components
        .iter()
        .find(|c| c.id == "echo")
        .and_then(|c| c.calls)
        .unwrap_or(0)
}

fn s32(v: i32) -> Vec<u8> {
    let mut out = Vec::new();
    lattice_wrpc::encode_values(&[Type::S32], &[Value::make_s32(v)], &mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_wrpc_peers_get_typed_refusals_and_the_host_keeps_serving() {
    let t = target().await;
    let baseline = t.subscriptions();

    // Malformed: random bytes where two s32s belong, and functions that do not exist.
    let r = t
        .under("wRPC malformed parameters", || {
            invoke_raw(
                &t.ctl,
                "calc",
                "add",
                2000,
                5000,
                Duration::from_secs(20),
                |i| {
                    // Random bytes, then enough zeros to end every number: the decoder sees
                    // overlong numbers or bytes left over, never a value waiting for more.
                    (0..(i % 40) + 3)
                        .map(|_| fastrand::u8(..))
                        .chain([0; 12])
                        .collect()
                },
            )
        })
        .await;
    assert!(
        r.kinds.get("decode error").copied().unwrap_or(0) > 0,
        "{}",
        r.answered
    );
    assert_eq!(r.kinds.get("no answer"), None, "{}", r.answered);
    let r = t
        .under("wRPC unknown functions", || {
            invoke_raw(
                &t.ctl,
                "calc",
                "nope",
                500,
                5000,
                Duration::from_secs(20),
                |_| s32(1),
            )
        })
        .await;
    assert_eq!(
        r.kinds.get("rejected").copied(),
        Some(500),
        "{}",
        r.answered
    );

    // Abandoned: parameters that promise more (an unfinished LEB128) and never come.
    let r = t
        .under("wRPC abandoned parameters", || {
            invoke_raw(
                &t.ctl,
                "calc",
                "add",
                300,
                2000,
                Duration::from_secs(10),
                |_| vec![0x80],
            )
        })
        .await;
    assert_eq!(r.kinds.get("ok"), None, "{}", r.answered);
    // What they made the host subscribe (their parameter streams) is given back once their
    // 2 s budget is spent, within 5 s more.
    lattice_testkit::wait::until_async(
        "subscriptions back to their baseline",
        Duration::from_secs(7),
        Duration::from_millis(100),
        || async { (t.subscriptions() <= baseline).then_some(()) },
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}: {} now, {baseline} before: {}",
            t.subscriptions(),
            t.nats.subscription_subjects().unwrap_or_default().join(" ")
        )
    });

    // Flood: far more slow calls than `slow` may hold; past its bound they are busy at once.
    let r = t
        .under("wRPC flood (3,000 calls of 2 s on 2 instances)", || {
            invoke_raw(
                &t.ctl,
                "slow",
                "wait",
                3000,
                4000,
                Duration::from_secs(10),
                |_| {
                    let mut out = Vec::new();
                    lattice_wrpc::encode_values(&[Type::U32], &[Value::make_u32(2000)], &mut out)
                        .unwrap();
                    out
                },
            )
        })
        .await;
    let busy = r.kinds.get("busy").copied().unwrap_or(0);
    // 512 admitted (a few more as calls end during the send), the rest refused unrun.
    assert!(busy >= 3000 - 600, "{}", r.answered);

    // Oversized: 900 KB strings queued behind busy instances; the host holds at most its
    // bound of decoded parameters and refuses the rest.
    let big = "x".repeat(900 << 10);
    let occupy = invoke_raw(&t.ctl, "slow", "wait", 2, 4000, Duration::ZERO, |_| {
        let mut out = Vec::new();
        lattice_wrpc::encode_values(&[Type::U32], &[Value::make_u32(2500)], &mut out).unwrap();
        out
    });
    occupy.await;
    let r = t
        .under("wRPC oversized (400 queued 900 KB strings)", || {
            invoke_raw(
                &t.ctl,
                "slow",
                "reverse",
                400,
                4000,
                Duration::from_secs(10),
                |_| {
                    let mut out = Vec::new();
                    lattice_wrpc::encode_values(
                        &[Type::STRING],
                        &[Value::make_string(big.as_str().into())],
                        &mut out,
                    )
                    .unwrap();
                    out
                },
            )
        })
        .await;
    assert!(
        r.kinds.get("busy").copied().unwrap_or(0) > 0,
        "{}",
        r.answered
    );
    let (now, peak) = t.rss();
    // The host holds at most 256 MiB of parameters (as received and decoded); with what is
    // still on its way to it, its growth stays within twice that.
    assert!(
        peak.saturating_sub(r.rss_before) < 512 << 20,
        "peak RSS {} MiB, {} MiB before",
        peak >> 20,
        r.rss_before >> 20
    );
    let _ = now;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_and_control_floods_are_bounded_and_pings_never_wait() {
    let t = target().await;
    let nats = t.ctl.nats().clone();

    // 20,000 messages of 16 KiB on a subject `echo` is subscribed to.
    let body = bytes::Bytes::from(vec![b'm'; 16 << 10]);
    let before = echo_calls(&t).await;
    let r = t
        .under("messaging flood (20,000 x 16 KiB)", || async {
            for _ in 0..20_000 {
                nats.publish("flood.x", body.clone()).await.unwrap();
            }
            nats.flush().await.unwrap();
            // Handled ones are counted by the host; the rest were dropped past its bound.
            let handled = lattice_testkit::wait::until_async(
                "the flood worked off",
                Duration::from_secs(30),
                Duration::from_millis(200),
                || async {
                    let now = echo_calls(&t).await;
                    let settled = now == echo_calls(&t).await;
                    settled.then_some(now)
                },
            )
            .await
            .unwrap()
                - before;
            Report::new(
                20_000,
                format!(
                    "{handled} handled, {} dropped past the bound",
                    20_000 - handled
                ),
                HashMap::new(),
            )
        })
        .await;
    assert_eq!(r.sent, 20_000);

    // 3,000 link.put requests at once: past 64 running and 1,024 waiting, "busy" at once.
    let subjects = lattice_proto::subject::CtlSubjects::new("default").unwrap();
    let r = t
        .under("control flood (3,000 link.put at once)", || async {
            let inbox = nats.new_inbox();
            let mut replies = nats.subscribe(format!("{inbox}.>")).await.unwrap();
            nats.flush().await.unwrap();
            for i in 0..3000 {
                let link = Link::new(&format!("src{i}"), "calc", "lattice", "examples", &["calc"]);
                nats.publish_with_reply(
                    subjects.lattice_op(lattice_proto::op::Op::LinkPut),
                    format!("{inbox}.{i}"),
                    serde_json::to_vec(&link).unwrap().into(),
                )
                .await
                .unwrap();
            }
            nats.flush().await.unwrap();
            let mut kinds: HashMap<String, usize> = HashMap::new();
            let mut got = 0;
            let _ = tokio::time::timeout(Duration::from_secs(60), async {
                while let Some(m) = replies.next().await {
                    let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
                    let kind = if v["success"] == true {
                        "ok"
                    } else if v["message"].as_str().unwrap_or("").starts_with("busy") {
                        "busy"
                    } else {
                        "error"
                    };
                    *kinds.entry(kind.into()).or_default() += 1;
                    got += 1;
                    if got == 3000 {
                        break;
                    }
                }
            })
            .await;
            let mut parts: Vec<String> = kinds.iter().map(|(k, v)| format!("{v} {k}")).collect();
            parts.sort();
            Report::new(3000, parts.join(", "), kinds)
        })
        .await;
    assert_eq!(r.kinds.values().sum::<usize>(), 3000, "{}", r.answered);
    assert!(
        r.kinds.get("busy").copied().unwrap_or(0) > 0,
        "{}",
        r.answered
    );
    assert_eq!(r.kinds.get("error"), None, "{}", r.answered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_loris_client_holds_connections_only_until_the_header_timeout() {
    let t = target().await;
    let started = Instant::now();
    let mut conns = Vec::new();
    let r = t
        .under(
            "slow-loris HTTP (200 connections, a header byte a second)",
            || async {
                for _ in 0..200 {
                    let mut c = tokio::net::TcpStream::connect(&t.http).await.unwrap();
                    c.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
                        .await
                        .unwrap();
                    conns.push(c);
                }
                // Trickle: one more header byte per connection, twice, a second apart.
                for _ in 0..2 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    for c in &mut conns {
                        let _ = c.write_all(b"X").await;
                    }
                }
                Report::new(200, "normal GETs kept being served", HashMap::new())
            },
        )
        .await;
    assert_eq!(r.sent, 200);
    // The host closes every one of them once its header timeout (10 s) has passed.
    for mut c in conns {
        let mut buf = [0u8; 1024];
        let closed = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match c.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "a slow-loris connection was held open");
    }
    println!(
        "| slow-loris connections closed by the host | 200 | closed after {:.1} s | yes | - | - |",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_cannot_aim_a_components_answer_at_the_lattices_own_subjects() {
    let t = target().await;
    let nats = t.ctl.nats().clone();
    let root = lattice_proto::subject::CtlSubjects::new("default").unwrap();
    let stop = root.host_op(lattice_proto::op::Op::HostStop, &t.host.id);
    let mut watch = nats.subscribe(format!("{}.>", root.root())).await.unwrap();
    let mut wrpc = nats.subscribe("default.*.wrpc.>").await.unwrap();
    nats.flush().await.unwrap();
    let before = echo_calls(&t).await;
    // echo answers every message that has a reply subject: a peer picks host.stop (with a
    // body echo's upper-casing leaves a valid request) and a wRPC subject.
    let r = t
        .under("replies aimed at host.stop and wRPC", || async {
            for reply in [
                stop.as_str(),
                "default.calc.wrpc.0.0.1.lattice:examples/calc@0.1.0.add",
            ] {
                for _ in 0..100 {
                    nats.publish_with_reply("flood.x", reply.to_string(), "{}".into())
                        .await
                        .unwrap();
                }
            }
            nats.flush().await.unwrap();
            Report::new(200, "no answer sent to either", HashMap::new())
        })
        .await;
    assert_eq!(r.sent, 200);
    // echo has handled them all ...
    lattice_testkit::wait::until_async(
        "echo done with the 200",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async { (echo_calls(&t).await >= before + 200).then_some(()) },
    )
    .await
    .unwrap();
    // ... and sent nothing to the control interface or wRPC (what it would have sent was on
    // its way before each handler returned), and the host still runs.
    let mut aimed = Vec::new();
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            tokio::select! {
                Some(m) = watch.next() => if m.subject.as_str() == stop {
                    aimed.push(m.subject.to_string());
                },
                Some(m) = wrpc.next() => if &m.payload[..] == b"{}" {
                    aimed.push(m.subject.to_string());
                },
            }
        }
    })
    .await;
    assert!(aimed.is_empty(), "echo answered on {aimed:?}");
    assert!(t.ping().await.is_some(), "the host stopped");
}
