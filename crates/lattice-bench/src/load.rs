//! Throughput and correctness under load, side by side with raw NATS: the same number of
//! calls at 1, 8, 32 and 128 in flight through three paths, interleaved in rounds so drift on
//! a noisy machine hits every path alike, each call's result checked.
//!
//! - raw NATS request-reply to a responder on its own connection (the floor);
//! - a client calling `calc.add` on a host over wRPC (what `lattice call` and wash do);
//! - `relay` on one host calling `calc` on another through a link (host -> host).

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use futures::StreamExt;
use lattice_host::Val;
use lattice_proto::ctl::Link;
use lattice_testkit::NatsServer;
use lattice_wrpc::transport::{self, Call};

use crate::wrpc::{scale, spawn_responder, start_host, CALC, RELAY};

/// Calls in flight at once, per measurement.
const CONCURRENCY: [usize; 4] = [1, 8, 32, 128];
/// Rounds each (path, concurrency) is split into, alternating with the other paths.
const ROUNDS: usize = 5;

/// One call of a path: true when it returned the right answer for `i`.
type Path<'a> = Box<dyn Fn(usize) -> LocalBoxFuture<'a, bool> + 'a>;

pub async fn run(calls: usize) -> anyhow::Result<()> {
    let nats = NatsServer::start()?;
    let client = async_nats::connect(nats.url()).await?;
    let ctl = lattice_ctl::Client::new(client.clone(), "default")?;
    let caller = std::sync::Arc::new(start_host(&nats, false).await?);
    let server = start_host(&nats, false).await?;
    scale(&ctl, caller.id(), "relay").await?;
    scale(&ctl, server.id(), "calc").await?;
    ctl.put_link(&Link::new(
        "relay",
        "calc",
        "lattice",
        "examples",
        &["calc"],
    ))
    .await?;
    let linked = |i: usize| {
        let caller = caller.clone();
        Box::pin(async move {
            let args = [Val::S32(i as i32), Val::S32(1)];
            let r = caller.call("relay", RELAY, "add-via-calc", &args).await;
            matches!(r.as_deref(), Ok([Val::S32(v)]) if *v == i as i32 + 1)
        }) as LocalBoxFuture<'_, bool>
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !linked(0).await {
        anyhow::ensure!(Instant::now() < deadline, "the link never reached the host");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    spawn_responder(&nats, "bench.load".into(), |m| Some((m.reply?, m.payload))).await?;
    client.flush().await?;
    let raw = |i: usize| {
        let client = client.clone();
        Box::pin(async move {
            let payload = Bytes::from((i as u64).to_le_bytes().to_vec());
            matches!(client.request("bench.load", payload.clone()).await, Ok(m) if m.payload == payload)
        }) as LocalBoxFuture<'_, bool>
    };
    let wrpc = transport::Client::new(client.clone());
    let prefix = lattice_proto::wrpc::component_prefix("default", "calc");
    let direct = |i: usize| {
        let (wrpc, prefix) = (wrpc.clone(), prefix.clone());
        Box::pin(async move {
            let mut params = Vec::new();
            let types = [lattice_runtime::Type::S32, lattice_runtime::Type::S32];
            if lattice_wrpc::encode_values(&types, &[Val::S32(i as i32), Val::S32(1)], &mut params)
                .is_err()
            {
                return false;
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            let call = Call::new(&prefix, CALC, "add", params.into(), deadline);
            let r = wrpc
                .invoke(call, |b| {
                    lattice_wrpc::decode_values::<Val>(&[lattice_runtime::Type::S32], b)
                })
                .await;
            matches!(r.as_deref(), Ok([Val::S32(v)]) if *v == i as i32 + 1)
        }) as LocalBoxFuture<'_, bool>
    };
    let paths: [(&str, Path<'_>); 3] = [
        ("raw NATS request-reply", Box::new(raw)),
        ("client -> host (wRPC, calc.add)", Box::new(direct)),
        ("host -> host (relay -> calc link)", Box::new(linked)),
    ];

    println!(
        "# lattice-bench load ({calls} calls per path and concurrency, in {ROUNDS} interleaved rounds; \
         every result checked; loopback nats-server, two hosts)\n"
    );
    println!("| in flight | path | calls/s | / raw NATS | failed |");
    println!("|---|---|---|---|---|");
    let mut failed_total = 0;
    for concurrency in CONCURRENCY {
        let mut took = [Duration::ZERO; 3];
        let mut failed = [0usize; 3];
        for round in 0..ROUNDS {
            let range = round * calls / ROUNDS..(round + 1) * calls / ROUNDS;
            for (k, (_, path)) in paths.iter().enumerate() {
                let started = Instant::now();
                let ok: Vec<bool> = futures::stream::iter(range.clone())
                    .map(path)
                    .buffer_unordered(concurrency)
                    .collect()
                    .await;
                took[k] += started.elapsed();
                failed[k] += ok.iter().filter(|ok| !**ok).count();
            }
        }
        let rate = |k: usize| calls as f64 / took[k].as_secs_f64();
        for (k, (name, _)) in paths.iter().enumerate() {
            println!(
                "| {concurrency} | {name} | {:.0} | {:.2}x | {} |",
                rate(k),
                rate(k) / rate(0),
                failed[k]
            );
        }
        failed_total += failed.iter().sum::<usize>();
    }
    println!("\ngoals: client -> host at least 0.7x and host -> host at least 0.5x raw NATS at 32 in flight");
    anyhow::ensure!(failed_total == 0, "{failed_total} calls failed");
    Ok(())
}
