//! `lattice-bench`: numbers for the README, each measured side by side in one run.
//!
//! Run with `scripts/bench` (release build). Subcommands:
//! - `runtime`: scale-ack to first call (cold, warm disk cache, warm memory cache), cost of an
//!   instance per call against a reused instance, and host RSS with 0 / 100 / 1,000 components.
//! - `wrpc [CALLS]`: call latency, raw NATS request-reply vs a wRPC call vs local-first and
//!   forced-remote linked calls.
//! - `load [CALLS]`: calls/s and correctness at 1, 8, 32 and 128 in flight, CALLS (default
//!   50,000) per path: raw NATS request-reply, client -> host, host -> host through a link,
//!   interleaved; fails if any call fails.
//! - `http`: HTTP ingress req/s and latency against `wasmtime serve`, same component, same
//!   load generator, interleaved rounds (needs `wasmtime`: scripts/install-wasmtime).
//! - `faults [CALLS]`: how fast a call to a target nobody serves fails (client and linked
//!   calls) against raw NATS's own no-responders answer.
//! - `scale [N...]`: the control plane with N host processes over a 3-node cluster (default
//!   10 30 100): idle traffic and CPU per host, control latencies, placement and re-placement
//!   times, each fitted to `a·N^b` and extrapolated to 1,000 and 10,000 hosts.
//! - `fuzz [EXECS]`: EXECS (default 1,000,000) mutated and random inputs through every
//!   network-facing decoder, on the stable toolchain.
//!
//! Everything runs against a real nats-server on loopback and real guest components.

mod faults;
mod fuzz;
mod http;
mod load;
mod runtime;
mod scale;
mod stats;
mod wrpc;

// The allocator the `lattice` binary uses, so hosts measured here allocate as they do there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let which = std::env::args().nth(1).unwrap_or_else(|| "runtime".into());
    let rt = tokio::runtime::Runtime::new()?;
    match which.as_str() {
        "runtime" => rt.block_on(runtime::run()),
        "wrpc" => {
            let calls = std::env::args()
                .nth(2)
                .and_then(|n| n.parse().ok())
                .unwrap_or(5000);
            rt.block_on(wrpc::run(calls))
        }
        "load" => {
            let calls = std::env::args()
                .nth(2)
                .and_then(|n| n.parse().ok())
                .unwrap_or(50_000);
            rt.block_on(load::run(calls))
        }
        "http" => rt.block_on(http::run()),
        "faults" => {
            let calls = std::env::args()
                .nth(2)
                .and_then(|n| n.parse().ok())
                .unwrap_or(2000);
            rt.block_on(faults::run(calls))
        }
        "scale" => {
            let sizes: Vec<usize> = std::env::args().skip(2).filter_map(|n| n.parse().ok()).collect();
            let sizes = if sizes.is_empty() { vec![10, 30, 100] } else { sizes };
            rt.block_on(scale::run(sizes))
        }
        "fuzz" => fuzz::run(
            std::env::args()
                .nth(2)
                .and_then(|n| n.parse().ok())
                .unwrap_or(1_000_000),
        ),
        other => anyhow::bail!(
            "unknown benchmark {other:?} (known: runtime, wrpc [CALLS], load [CALLS], http, faults [CALLS], scale [N...], fuzz [EXECS])"
        ),
    }
}
