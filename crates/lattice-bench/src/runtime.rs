//! The component runtime: start-up latency, per-call cost, memory.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use lattice_host::{Host, HostConfig, NatsConfig, RuntimeConfig, Val};
use lattice_proto::ctl::ScaleComponentCommand;
use lattice_runtime::{Policy, Runtime};
use lattice_testkit::{component_path, HostSpec, NatsServer};

use crate::stats::{ms, summarize, us};

const CALC: Option<&str> = Some("lattice:examples/calc@0.1.0");

pub async fn run() -> anyhow::Result<()> {
    let nats = NatsServer::start()?;
    let calc = format!("file://{}", component_path("calc").display());
    println!(
        "# lattice-bench runtime ({} cores)\n",
        std::thread::available_parallelism()?
    );

    println!("## component.scale acknowledged -> first successful call (calc, 44 KB)\n");
    println!("| compile cache | runs | p50 | max |");
    println!("|---|---|---|---|");
    let cache = tempfile::tempdir()?;
    let mut cold = Vec::new();
    let mut disk = Vec::new();
    let mut memory = Vec::new();
    for trial in 0..3 {
        // A fresh cache directory and host: nothing compiled yet.
        let fresh = tempfile::tempdir()?;
        let host = start_host(&nats, Some(fresh.path())).await?;
        cold.push(scale_to_first_call(&nats, &host, &calc, &format!("cold-{trial}")).await?);
        drop(host);
        // A new host (empty memory cache) over a cache directory that already holds it.
        let host = start_host(&nats, Some(cache.path())).await?;
        let t = scale_to_first_call(&nats, &host, &calc, &format!("disk-{trial}")).await?;
        if trial > 0 {
            disk.push(t); // the first run fills the directory
        }
        for i in 0..10 {
            memory
                .push(scale_to_first_call(&nats, &host, &calc, &format!("mem-{trial}-{i}")).await?);
        }
    }
    for (name, samples) in [
        ("cold (compile)", cold),
        ("warm, on disk", disk),
        ("warm, in memory", memory),
    ] {
        let n = samples.len();
        let max = *samples.iter().max().context("no samples")?;
        println!(
            "| {name} | {n} | {} | {} |",
            ms(summarize(samples).p50),
            ms(max)
        );
    }

    println!("\n## per call: fresh instance (what Lattice does) vs one reused instance\n");
    let runtime = Runtime::new(RuntimeConfig {
        pool_instances: 16,
        ..RuntimeConfig::default()
    })?;
    let bytes = std::fs::read(component_path("calc"))?;
    let (pool, _) = runtime.prepare("calc", &bytes, Policy::default(), 1, Default::default())?;
    let args = [Val::S32(1), Val::S32(2)];
    for _ in 0..200 {
        pool.call(CALC, "add", &args).await?;
    }
    let n = 5000;
    let mut fresh = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        pool.call(CALC, "add", &args).await?;
        fresh.push(t.elapsed());
    }
    let reused = pool
        .time_reused_instance(CALC, "add", &args, n as u32)
        .await?
        / n as u32;
    let fresh = summarize(fresh);
    println!("| path | mean | p50 | p99 |");
    println!("|---|---|---|---|");
    println!(
        "| fresh instance per call | {} | {} | {} |",
        us(fresh.mean),
        us(fresh.p50),
        us(fresh.p99)
    );
    println!("| reused instance | {} | | |", us(reused));
    println!(
        "\nfresh / reused: {:.1}x; the difference is the instantiation cost: {}",
        fresh.mean.as_secs_f64() / reused.as_secs_f64(),
        us(fresh.mean.saturating_sub(reused))
    );

    println!("\n## host RSS (separate `lattice host` process, release build)\n");
    let bin = std::env::current_exe()?
        .parent()
        .context("no exe dir")?
        .join("lattice");
    anyhow::ensure!(
        bin.is_file(),
        "{} missing: build with scripts/bench",
        bin.display()
    );
    println!("| components | RSS |");
    println!("|---|---|");
    for count in [0usize, 100, 1000] {
        let rss = host_rss_with(&nats, &bin, &calc, count).await?;
        println!("| {count} | {:.1} MiB |", rss as f64 / 1024.0);
    }
    Ok(())
}

async fn start_host(nats: &NatsServer, cache: Option<&Path>) -> anyhow::Result<Host> {
    Ok(Host::start(HostConfig {
        nats: NatsConfig::from_urls(&nats.url()),
        allow_file_load: true,
        runtime: RuntimeConfig {
            cache_dir: cache.map(Path::to_path_buf),
            ..RuntimeConfig::default()
        },
        ..HostConfig::default()
    })
    .await?)
}

fn scale_cmd(reference: &str, id: &str) -> ScaleComponentCommand {
    lattice_testkit::control::scale_cmd(reference, id, 1)
}

/// From the moment `component.scale` is acknowledged to the first call that succeeds.
async fn scale_to_first_call(
    nats: &NatsServer,
    host: &Host,
    reference: &str,
    id: &str,
) -> anyhow::Result<Duration> {
    let ctl = lattice_ctl::Client::new(async_nats::connect(nats.url()).await?, "default")?;
    ctl.scale_component(host.id(), &scale_cmd(reference, id))
        .await?;
    let acked = Instant::now();
    let args = [Val::S32(1), Val::S32(2)];
    loop {
        if host.call(id, CALC, "add", &args).await.is_ok() {
            return Ok(acked.elapsed());
        }
        anyhow::ensure!(
            acked.elapsed() < Duration::from_secs(30),
            "{id} never answered"
        );
        tokio::task::yield_now().await;
    }
}

/// RSS of a fresh host process running `count` instances-at-rest of the tiny calc component.
async fn host_rss_with(
    nats: &NatsServer,
    bin: &Path,
    reference: &str,
    count: usize,
) -> anyhow::Result<u64> {
    let lattice = format!("rss{count}");
    let h = HostSpec::new(bin, &nats.url(), &lattice)
        .arg("--allow-file-load")
        .start()?;
    let ctl = lattice_ctl::Client::new(async_nats::connect(nats.url()).await?, &lattice)?;
    for i in 0..count {
        ctl.scale_component(&h.id, &scale_cmd(reference, &format!("c{i}")))
            .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while ctl.host_inventory(&h.id).await?.components.len() < count {
        anyhow::ensure!(Instant::now() < deadline, "components did not all start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let start-up garbage settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", h.process.pid()))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")?;
    Ok(kib)
}
