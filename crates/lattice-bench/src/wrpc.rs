//! Call latency: raw NATS request-reply vs a Lattice call over wRPC vs a local-first call.
//!
//! Between raw NATS and a call served by a host, the rows add one layer at a time, so each
//! layer's cost is the difference between two rows measured side by side: the wRPC message
//! shape (subjects, the budget header, a shared wildcard inbox), then the Lattice client,
//! then the Lattice server, then the guest instance (made, called and freed per call).

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use bytes::Bytes;
use futures::StreamExt;
use lattice_host::{Host, HostConfig, NatsConfig, RuntimeConfig, Val};
use lattice_proto::ctl::Link;
use lattice_testkit::NatsServer;
use lattice_wrpc::transport;

use crate::stats::{summarize, us, Summary};

/// The exports the benches call: `calc`'s, and `relay`'s (which calls calc through a link).
pub(crate) const CALC: &str = "lattice:examples/calc@0.1.0";
pub(crate) const RELAY: Option<&str> = Some("lattice:examples/relay@0.1.0");

pub async fn run(calls: usize) -> anyhow::Result<()> {
    let nats = NatsServer::start()?;
    let client = async_nats::connect(nats.url()).await?;
    let ctl = lattice_ctl::Client::new(client.clone(), "default")?;
    let local = std::sync::Arc::new(start_host(&nats, false).await?);
    let remote = std::sync::Arc::new(start_host(&nats, true).await?);
    // A host with observability on (metrics endpoint, spans to an OTLP receiver that keeps
    // them): what measuring and tracing every call costs, beside the same call without.
    let collector = lattice_testkit::otlp::OtlpReceiver::start()?;
    let observed = Host::start(HostConfig {
        nats: NatsConfig::from_urls(&nats.url()),
        allow_file_load: true,
        metrics_address: Some(([127, 0, 0, 1], 0).into()),
        traces: Some(collector.endpoint()),
        ..HostConfig::default()
    })
    .await?;
    scale_as(&ctl, observed.id(), "calc", "calc-observed").await?;
    scale(&ctl, local.id(), "calc").await?;
    scale(&ctl, local.id(), "relay").await?;
    scale_as(&ctl, remote.id(), "relay", "relay-remote").await?;
    for source in ["relay", "relay-remote"] {
        ctl.put_link(&Link::new(source, "calc", "lattice", "examples", &["calc"]))
            .await?;
    }
    // Wait until both hosts see the links and calc is served.
    let args = [Val::S32(1), Val::S32(2)];
    let deadline = Instant::now() + Duration::from_secs(10);
    while local
        .call("relay", RELAY, "add-via-calc", &args)
        .await
        .is_err()
        || remote
            .call("relay-remote", RELAY, "add-via-calc", &args)
            .await
            .is_err()
    {
        anyhow::ensure!(Instant::now() < deadline, "links never reached the hosts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The wRPC payload of add(1, 2) is two bytes; raw NATS gets the same two bytes.
    let mut params = Vec::new();
    let param_types = [lattice_runtime::Type::S32, lattice_runtime::Type::S32];
    lattice_wrpc::encode_values(&param_types, &args, &mut params)?;
    let params = Bytes::from(params);
    spawn_responder(&nats, "bench.echo".into(), |m| Some((m.reply?, m.payload))).await?;
    client.flush().await?;
    let whole_only = spawn_whole_responder(&nats).await?;
    let protocol_only = spawn_echo_server(&nats).await?;
    let echo_client = transport::Client::new(client.clone());

    let raw = || async {
        client
            .request("bench.echo", params.clone())
            .await
            .map(drop)
            .map_err(anyhow::Error::from)
    };
    // The same request with the one header a Lattice invocation carries: what a header
    // costs the broker and both clients on its own.
    let raw_header = || async {
        let mut headers = HeaderMap::new();
        headers.insert(transport::TIMEOUT_HEADER, "5000");
        client
            .send_request(
                "bench.echo",
                async_nats::Request::new()
                    .payload(params.clone())
                    .headers(headers),
            )
            .await
            .map(drop)
            .map_err(anyhow::Error::from)
    };
    // The message shape of a Lattice call without the client: the invocation subject and
    // budget header out, the reply read off a wildcard inbox by the calls in turn.
    let bare_inbox = client.new_inbox();
    let bare_replies = tokio::sync::Mutex::new(client.subscribe(format!("{bare_inbox}.>")).await?);
    let bare_subject = lattice_wrpc::subject::invocation(whole_only, CALC, "add");
    let bare_ids = std::sync::atomic::AtomicU64::new(0);
    let bare = || async {
        let id = bare_ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut headers = HeaderMap::new();
        headers.insert(transport::TIMEOUT_HEADER, "5000");
        client
            .publish_with_reply_and_headers(
                bare_subject.clone(),
                format!("{bare_inbox}.{id}"),
                headers,
                params.clone(),
            )
            .await?;
        // Sequential calls: the next reply on the inbox is this call's.
        let mut replies = bare_replies.lock().await;
        let reply = tokio::time::timeout(Duration::from_secs(5), replies.next()).await?;
        anyhow::ensure!(reply.is_some(), "reply inbox closed");
        Ok(())
    };
    let add = |client: transport::Client, prefix: &'static str| {
        let params = params.clone();
        move || {
            let (client, params) = (client.clone(), params.clone());
            async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                let types = [lattice_runtime::Type::S32];
                client
                    .invoke(
                        lattice_wrpc::transport::Call::new(prefix, CALC, "add", params, deadline),
                        |b| lattice_wrpc::decode_values::<Val>(&types, b),
                    )
                    .await
                    .map(drop)
                    .map_err(anyhow::Error::from)
            }
        }
    };

    // A call of `func` on component `id` of `host`, for `measure`.
    let on = |host: &std::sync::Arc<Host>, id: &'static str, iface, func: &'static str| {
        let (host, args) = (host.clone(), args.clone());
        move || {
            let (host, args) = (host.clone(), args.clone());
            async move {
                host.call(id, iface, func, &args)
                    .await
                    .map(drop)
                    .map_err(anyhow::Error::from)
            }
        }
    };
    // Every path takes its turn in each of the rounds, so drift on a noisy machine hits all.
    let summaries = measure_interleaved(
        calls,
        vec![
            boxed(raw),
            boxed(raw_header),
            boxed(bare),
            boxed(add(echo_client.clone(), whole_only)),
            boxed(add(echo_client, protocol_only)),
            boxed(add(transport::Client::new(client.clone()), "default.calc")),
            boxed(add(
                transport::Client::new(client.clone()),
                "default.calc-observed",
            )),
            boxed(on(&local, "calc", Some(CALC), "add")),
            boxed(on(&local, "relay", RELAY, "add-via-calc")),
            boxed(on(&remote, "relay-remote", RELAY, "add-via-calc")),
        ],
    )
    .await?;
    let [raw, raw_header, bare, client_only, protocol, wrpc, observed_wrpc, direct, via_local, via_remote] =
        <[Summary; 10]>::try_from(summaries).map_err(|_| anyhow::anyhow!("ten paths"))?;
    anyhow::ensure!(
        !collector.spans().is_empty(),
        "the observed host exported no spans"
    );
    anyhow::ensure!(
        local.routing_stats().remote == 0,
        "local calls went over the network"
    );

    println!(
        "# lattice-bench wrpc ({calls} sequential calls each in {ROUNDS} interleaved rounds, add(1, 2), loopback nats-server; \
         every responder on its own connection)\n"
    );
    println!("| path | p50 | p99 | p50 / raw NATS |");
    println!("|---|---|---|---|");
    let row = |name: &str, s: &Summary| {
        println!(
            "| {name} | {} | {} | {:.2}x |",
            us(s.p50),
            us(s.p99),
            s.p50.as_secs_f64() / raw.p50.as_secs_f64()
        )
    };
    row("raw NATS request-reply (same 2-byte payload)", &raw);
    row(
        "raw NATS request-reply with one header (lattice-timeout-ms)",
        &raw_header,
    );
    row(
        "wRPC message shape alone (subjects, header, wildcard inbox; no client)",
        &bare,
    );
    row(
        "wRPC client, minimal responder (answers whole; no wRPC server)",
        &client_only,
    );
    row(
        "wRPC exchange alone (echo server, no wasm, own connection)",
        &protocol,
    );
    row("wRPC call to calc.add (client -> host)", &wrpc);
    row(
        "the same, host with metrics and traces on (OTLP to a local receiver)",
        &observed_wrpc,
    );
    row(
        "calc.add called directly in the host (fresh instance)",
        &direct,
    );
    row("relay -> calc, local-first (in-process)", &via_local);
    row(
        "relay -> calc, forced over wRPC (another host)",
        &via_remote,
    );
    println!(
        "\nobservability on / off, client -> host p50: {:.2}x",
        observed_wrpc.p50.as_secs_f64() / wrpc.p50.as_secs_f64()
    );
    println!(
        "\nlocal-first routing overhead (relay->calc local minus two direct instance calls): {}",
        us(via_local.p50.saturating_sub(direct.p50 * 2))
    );
    Ok(())
}

/// A responder that answers every invocation under its prefix at once, whole (as a Lattice
/// host answers a short call) with the first byte of its parameters (`a` of `add(a, b)` for
/// small `a`), and does nothing else: no handshake logic, no decoding. What a Lattice client
/// costs, measured against it. Returns the prefix it serves.
async fn spawn_whole_responder(nats: &NatsServer) -> anyhow::Result<&'static str> {
    const PREFIX: &str = "bench.whole";
    spawn_responder(nats, lattice_wrpc::subject::serve_wildcard(PREFIX), |m| {
        let a = Bytes::copy_from_slice(m.payload.get(..1)?);
        Some((lattice_wrpc::subject::whole(m.reply?.as_str()).into(), a))
    })
    .await?;
    Ok(PREFIX)
}

/// Answers every message on `subject`, on a connection of its own, with what `answer` makes
/// of it (where to, and what); subscribed before it returns.
pub(crate) async fn spawn_responder(
    nats: &NatsServer,
    subject: String,
    answer: impl Fn(async_nats::Message) -> Option<(async_nats::Subject, Bytes)> + Send + 'static,
) -> anyhow::Result<()> {
    let conn = async_nats::connect(nats.url()).await?;
    let mut messages = conn.subscribe(subject).await?;
    conn.flush().await?;
    tokio::spawn(async move {
        while let Some(m) = messages.next().await {
            if let Some((to, payload)) = answer(m) {
                let _ = conn.publish(to, payload).await;
            }
        }
    });
    Ok(())
}

/// A wRPC server without wasm that answers `add(a, b)` with `a`: the protocol's own cost.
/// Returns the prefix it serves.
async fn spawn_echo_server(nats: &NatsServer) -> anyhow::Result<&'static str> {
    const PREFIX: &str = "bench.wrpc-echo";
    let conn = std::sync::Arc::new(async_nats::connect(nats.url()).await?);
    let sub = conn
        .subscribe(lattice_wrpc::subject::serve_wildcard(PREFIX))
        .await?;
    conn.flush().await?;
    // Served the way a host serves (see `lattice_wrpc::serve`), naming itself in the
    // handshake like a host.
    let name: std::sync::Arc<str> = "echo".into();
    tokio::spawn(lattice_wrpc::serve::each(sub, move |msg| {
        let (conn, name) = (conn.clone(), name.clone());
        async move {
            let types = [lattice_runtime::Type::S32, lattice_runtime::Type::S32];
            let Ok(mut inv) = transport::accept(PREFIX, &conn, msg, Duration::from_secs(5))
                .map(|i| i.with_server_id(name))
            else {
                return None;
            };
            let Ok(params) = inv
                .read_params(|b| lattice_wrpc::decode_values::<Val>(&types, b))
                .await
            else {
                return None;
            };
            let mut out = Vec::new();
            if lattice_wrpc::encode_values(&types[..1], &params[..1], &mut out).is_ok() {
                let _ = inv.respond(Bytes::from(out)).await;
            }
            None
        }
    }));
    Ok(PREFIX)
}

/// Rounds of [`measure_interleaved`].
pub(crate) const ROUNDS: usize = 50;

/// One benchmarked path: each call yields one operation.
type Path<'a> = Box<dyn FnMut() -> futures::future::LocalBoxFuture<'a, anyhow::Result<()>> + 'a>;

pub(crate) fn boxed<'a, F, Fut>(mut f: F) -> Path<'a>
where
    F: FnMut() -> Fut + 'a,
    Fut: std::future::Future<Output = anyhow::Result<()>> + 'a,
{
    Box::new(move || Box::pin(f()))
}

/// `n` timed operations of each path (after `n / 10` untimed ones), in [`ROUNDS`] rounds
/// where every path takes its turn: short turns, so drift hits every path alike.
pub(crate) async fn measure_interleaved(
    n: usize,
    mut paths: Vec<Path<'_>>,
) -> anyhow::Result<Vec<Summary>> {
    for p in &mut paths {
        for _ in 0..n / 10 {
            p().await?;
        }
    }
    let mut samples: Vec<Vec<std::time::Duration>> =
        paths.iter().map(|_| Vec::with_capacity(n)).collect();
    for _ in 0..ROUNDS {
        for (p, s) in paths.iter_mut().zip(&mut samples) {
            for _ in 0..n / ROUNDS {
                let t = Instant::now();
                p().await?;
                s.push(t.elapsed());
            }
        }
    }
    Ok(samples.into_iter().map(summarize).collect())
}

pub(crate) async fn start_host(nats: &NatsServer, force_remote: bool) -> anyhow::Result<Host> {
    Ok(Host::start(HostConfig {
        nats: NatsConfig::from_urls(&nats.url()),
        allow_file_load: true,
        force_remote_calls: force_remote,
        runtime: RuntimeConfig::default(),
        ..HostConfig::default()
    })
    .await?)
}

pub(crate) async fn scale(ctl: &lattice_ctl::Client, host: &str, name: &str) -> anyhow::Result<()> {
    scale_as(ctl, host, name, name).await
}

async fn scale_as(
    ctl: &lattice_ctl::Client,
    host: &str,
    name: &str,
    id: &str,
) -> anyhow::Result<()> {
    scale_with(ctl, host, name, id, 8).await
}

/// Scales guest `name` as component `id` on `host`, up to `count` instances at once, and
/// waits for the outcome.
pub(crate) async fn scale_with(
    ctl: &lattice_ctl::Client,
    host: &str,
    name: &str,
    id: &str,
    count: u32,
) -> anyhow::Result<()> {
    let mut events = ctl.events().await?;
    let cmd = lattice_testkit::control::scale_cmd(
        &lattice_testkit::control::component_ref(name),
        id,
        count,
    );
    ctl.scale_component(host, &cmd).await?;
    while let Some(ev) = events.next().await {
        if ev.data["component_id"] == id {
            anyhow::ensure!(ev.event_type() == Some("component_scaled"), "{:?}", ev.data);
            return Ok(());
        }
    }
    anyhow::bail!("event stream ended")
}
