//! HTTP ingress against the anchor: the same `wasi:http` hello component (`http-hello`)
//! served by a Lattice host process and by `wasmtime serve` (with its defaults, and with its
//! pooling allocator, as Lattice runs), driven by the same load generator in this process,
//! alternately, in one run. A last row shows what forwarding costs: the requests go to a
//! second host, which does not run the component and hands each to the first over wRPC.
//!
//! The load generator keeps `CONNECTIONS` keep-alive HTTP/1.1 connections busy for
//! `ROUND` per turn; each server gets `ROUNDS` turns, interleaved, so drift on a noisy
//! machine hits both alike.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use lattice_proto::ctl::Link;
use lattice_testkit::{component_path, free_port, ChildProcess, HostSpec, NatsServer};

use crate::stats::{ms, summarize};

const CONNECTIONS: usize = 16;
const ROUND: Duration = Duration::from_secs(5);
const ROUNDS: usize = 3;

pub async fn run() -> anyhow::Result<()> {
    let wasm = component_path("http_hello");
    let wasmtime = std::env::var("LATTICE_WASMTIME_BIN").unwrap_or_else(|_| "wasmtime".into());

    // Lattice: one host process, the component routed from its shared listener.
    let nats = NatsServer::start()?;
    let lattice_port = free_port();
    let bin = std::env::current_exe()?.with_file_name("lattice");
    let host = HostSpec::new(&bin, &nats.url(), "default")
        .arg("--allow-file-load")
        .arg("--http-address")
        .arg(format!("127.0.0.1:{lattice_port}"))
        .start()?;
    // A second host that does not run the component: it forwards every request to the first.
    let edge_port = free_port();
    let edge = HostSpec::new(&bin, &nats.url(), "default")
        .arg("--http-address")
        .arg(format!("127.0.0.1:{edge_port}"))
        .start()?;
    let ctl =
        lattice_ctl::Client::builder(async_nats::connect(nats.url()).await?, "default").build()?;
    crate::wrpc::scale_with(&ctl, &host.id, "http_hello", "hello", 64).await?;
    ctl.put_config(
        "hello-http",
        &[("path".to_string(), "/".to_string())].into(),
    )
    .await?;
    let mut link = Link::new("http", "hello", "wasi", "http", &["incoming-handler"]);
    link.source_config = vec!["hello-http".into()];
    ctl.put_link(&link).await?;

    // The anchor: wasmtime's own server, same component, with its defaults and with the
    // pooling allocator (what Lattice uses).
    let dir = tempfile::tempdir()?;
    let mut anchors = Vec::new();
    for (name, extra) in [("defaults", None), ("pooling", Some("pooling-allocator=y"))] {
        let port = free_port();
        let mut cmd = std::process::Command::new(&wasmtime);
        cmd.args(["serve", "-Scli", "--addr"])
            .arg(format!("127.0.0.1:{port}"));
        if let Some(opt) = extra {
            cmd.args(["-O", opt]);
        }
        cmd.arg(&wasm);
        let log = dir.path().join(format!("serve-{name}.log"));
        let child = ChildProcess::spawn("wasmtime serve", cmd, &log)
            .map_err(|e| anyhow::anyhow!("{e} (install it with scripts/install-wasmtime)"))?;
        anchors.push((name, format!("127.0.0.1:{port}"), child));
    }

    let lattice_addr = format!("127.0.0.1:{lattice_port}");
    let mut targets = vec![("lattice ingress".to_string(), lattice_addr)];
    let version = std::process::Command::new(&wasmtime)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    for (name, addr, _) in &anchors {
        targets.push((format!("{version} serve, {name}"), addr.clone()));
    }
    targets.push((
        "lattice, forwarded by another host".to_string(),
        format!("127.0.0.1:{edge_port}"),
    ));
    for (_, addr) in &targets {
        wait_ready(addr).await?;
        // Warm up: compile caches, connection setup, instance pools.
        drive(addr, Duration::from_secs(1)).await?;
    }
    println!(
        "GET / of http-hello, {CONNECTIONS} keep-alive connections, {ROUNDS} interleaved rounds of {ROUND:?} each"
    );
    let mut loads: Vec<Load> = targets.iter().map(|_| Load::default()).collect();
    for _ in 0..ROUNDS {
        for ((_, addr), load) in targets.iter().zip(&mut loads) {
            load.add(drive(addr, ROUND).await?);
        }
    }
    let rps: Vec<f64> = loads.iter().map(Load::rps).collect();
    let sums: Vec<_> = loads.into_iter().map(|l| summarize(l.latencies)).collect();
    println!(
        "{:<40} {:>10} {:>10} {:>10} {:>14} {:>12}",
        "", "req/s", "p50", "p99", "req/s ratio", "p99 ratio"
    );
    for (i, (name, _)) in targets.iter().enumerate() {
        println!(
            "{:<40} {:>10.0} {:>10} {:>10} {:>13.2}x {:>11.2}x",
            name,
            rps[i],
            ms(sums[i].p50),
            ms(sums[i].p99),
            rps[0] / rps[i],
            sums[0].p99.as_secs_f64() / sums[i].p99.as_secs_f64()
        );
    }
    println!(
        "(ratios: lattice over that row; req/s above 1.00x and p99 below 1.00x favour lattice)"
    );
    drop((host, edge));
    Ok(())
}

#[derive(Default)]
struct Load {
    requests: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Load {
    fn add(&mut self, other: Load) {
        self.requests += other.requests;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
    }

    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

async fn wait_ready(addr: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = lattice_testkit::http::get(addr, "/").await {
            if r.status == 200 {
                return Ok(());
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "{addr} never answered 200");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `CONNECTIONS` connections sending `GET /` back to back for `how_long`.
async fn drive(addr: &str, how_long: Duration) -> anyhow::Result<Load> {
    let started = Instant::now();
    let until = started + how_long;
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let addr = addr.to_string();
        tasks.push(tokio::spawn(async move { connection(&addr, until).await }));
    }
    let mut load = Load::default();
    for t in tasks {
        let lat = t.await??;
        load.requests += lat.len() as u64;
        load.latencies.extend(lat);
    }
    load.elapsed = started.elapsed();
    Ok(load)
}

async fn connection(addr: &str, until: Instant) -> anyhow::Result<Vec<Duration>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut lat = Vec::new();
    while Instant::now() < until {
        let req = http::Request::get("/")
            .header(http::header::HOST, "localhost")
            .body(Empty::<Bytes>::new())?;
        let t = Instant::now();
        let resp = sender.send_request(req).await?;
        anyhow::ensure!(resp.status() == 200, "{addr} answered {}", resp.status());
        resp.into_body().collect().await?;
        lat.push(t.elapsed());
    }
    Ok(lat)
}
