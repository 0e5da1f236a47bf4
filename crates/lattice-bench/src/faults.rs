//! How fast a call to a target nobody serves fails, next to raw NATS's own "no responders".
//!
//! Tests assert that such calls fail with `no responders` rather than waiting out their
//! deadline (a kind, not a time); this bench measures how long that takes, side by side with
//! the broker's no-responders answer to a plain request: a client call over wRPC, and a call
//! through a link from a component in a host.

use std::time::Duration;

use bytes::Bytes;
use lattice_host::{CallErrorKind, InvokeError, Val};
use lattice_proto::ctl::Link;
use lattice_testkit::NatsServer;
use lattice_wrpc::transport;

use crate::stats::{us, Summary};
use crate::wrpc::{boxed, measure_interleaved, scale, start_host, CALC, RELAY, ROUNDS};

pub async fn run(calls: usize) -> anyhow::Result<()> {
    let nats = NatsServer::start()?;
    let client = async_nats::connect(nats.url()).await?;
    let ctl = lattice_ctl::Client::new(client.clone(), "default")?;
    let host = std::sync::Arc::new(start_host(&nats, false).await?);
    scale(&ctl, host.id(), "relay").await?;
    ctl.put_link(&Link::new(
        "relay",
        "ghost",
        "lattice",
        "examples",
        &["calc"],
    ))
    .await?;
    let args = [Val::S32(1), Val::S32(2)];
    let linked = || {
        let (host, args) = (host.clone(), args.clone());
        async move {
            match host.call("relay", RELAY, "add-via-calc", &args).await {
                Err(InvokeError::Call(e)) if e.kind() == CallErrorKind::NoResponders => Ok(()),
                other => anyhow::bail!("expected no responders, got {other:?}"),
            }
        }
    };
    // The link reaches the host's table within moments; until then the call is "not linked".
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while linked().await.is_err() {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the link never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let raw = || async {
        match client.request("bench.nobody", Bytes::new()).await {
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => Ok(()),
            other => anyhow::bail!("expected no responders, got {other:?}"),
        }
    };
    let wrpc = transport::Client::new(client.clone());
    let direct = || {
        let wrpc = wrpc.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            let r = wrpc
                .invoke(
                    lattice_wrpc::transport::Call::new(
                        &lattice_proto::wrpc::component_prefix("default", "ghost"),
                        CALC,
                        "add",
                        Bytes::from_static(&[1, 2]),
                        deadline,
                    ),
                    |_| Ok::<_, lattice_wrpc::DecodeError>(()),
                )
                .await;
            match r {
                Err(e) if e.kind() == CallErrorKind::NoResponders => Ok(()),
                other => anyhow::bail!("expected no responders, got {other:?}"),
            }
        }
    };
    let summaries =
        measure_interleaved(calls, vec![boxed(raw), boxed(direct), boxed(linked)]).await?;
    let [raw, direct, linked] =
        <[Summary; 3]>::try_from(summaries).map_err(|_| anyhow::anyhow!("three paths"))?;

    println!(
        "# lattice-bench faults ({calls} sequential calls each in {ROUNDS} interleaved rounds to a \
         target nobody serves, loopback nats-server)\n"
    );
    println!("| path | p50 | p99 | p50 / raw NATS |");
    println!("|---|---|---|---|");
    for (name, s) in [
        ("raw NATS request, no subscriber (no responders)", &raw),
        ("wRPC call, nobody serves the component", &direct),
        ("linked call from a host, nobody serves the target", &linked),
    ] {
        println!(
            "| {name} | {} | {} | {:.2}x |",
            us(s.p50),
            us(s.p99),
            s.p50.as_secs_f64() / raw.p50.as_secs_f64()
        );
    }
    Ok(())
}
