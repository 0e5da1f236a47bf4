//! An upstream wRPC peer for Lattice's interop test, built on `wrpc-transport-nats` 0.31.
//!
//! - `invoke NATS_URL PREFIX`: calls `lattice:examples/calc@0.1.0` `add(40, 2)` and
//!   `reverse("interop")` on PREFIX (a component in a Lattice host) and prints the results.
//! - `serve NATS_URL PREFIX`: serves `lattice:interop/echo@0.1.0` `shout(string) -> string`
//!   and `sum(list<u32>) -> u64` on PREFIX until killed; prints `serving` once subscribed.
//! - `serve-http NATS_URL PREFIX`: plays a wasmCloud v1 host's HTTP component (see
//!   `wasmcloud_http`).

use anyhow::{bail, Context};
use futures::StreamExt;
use wrpc_transport::{InvokeExt, ServeExt};

mod wasmcloud_http;

type Paths = Vec<Box<[Option<usize>]>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(url), Some(prefix)) = (args.get(1), args.get(2), args.get(3)) else {
        bail!("usage: lattice-interop-peer invoke|serve|serve-http NATS_URL PREFIX");
    };
    if mode == "serve-http" {
        return wasmcloud_http::serve(url, prefix).await;
    }
    let nats = async_nats_049::connect(url.as_str()).await.context("connecting to NATS")?;
    let client = wrpc_transport_nats::Client::new(nats, prefix.as_str(), None)
        .await
        .context("creating the wRPC client")?;
    match mode.as_str() {
        "invoke" => {
            let calc = "lattice:examples/calc@0.1.0";
            let (sum,): (i32,) = client
                .invoke_values_blocking(None, calc, "add", (40i32, 2i32), Paths::new())
                .await
                .context("add")?;
            let (reversed,): (String,) = client
                .invoke_values_blocking(None, calc, "reverse", ("interop".to_string(),), Paths::new())
                .await
                .context("reverse")?;
            println!("add={sum} reverse={reversed}");
        }
        "serve" => {
            let echo = "lattice:interop/echo@0.1.0";
            let shout = client
                .serve_values::<(String,), (String,)>(echo, "shout", Paths::new())
                .await?;
            let sum = client
                .serve_values::<(Vec<u32>,), (u64,)>(echo, "sum", Paths::new())
                .await?;
            println!("serving");
            let shout = shout.for_each(|call| async move {
                match call {
                    Ok((_, (s,), _, tx)) => {
                        if let Err(e) = tx((s.to_uppercase(),)).await {
                            eprintln!("shout: {e:#}");
                        }
                    }
                    Err(e) => eprintln!("shout invocation: {e:#}"),
                }
            });
            let sum = sum.for_each(|call| async move {
                match call {
                    Ok((_, (v,), _, tx)) => {
                        if let Err(e) = tx((v.iter().map(|x| u64::from(*x)).sum(),)).await {
                            eprintln!("sum: {e:#}");
                        }
                    }
                    Err(e) => eprintln!("sum invocation: {e:#}"),
                }
            });
            futures::join!(shout, sum);
        }
        other => bail!("unknown mode {other}"),
    }
    Ok(())
}
