//! HTTP ingress against the anchor: the same `wasi:http` hello component (`http-hello`)
//! served by a Lattice host process and by `wasmtime serve`, driven by the same load
//! generator in this process, alternately, in one run.
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

    // The anchor: wasmtime's own server, same component.
    let wasmtime_port = free_port();
    let dir = tempfile::tempdir()?;
    let mut cmd = std::process::Command::new(&wasmtime);
    cmd.args(["serve", "-Scli", "--addr"])
        .arg(format!("127.0.0.1:{wasmtime_port}"))
        .arg(&wasm);
    let _serve = ChildProcess::spawn("wasmtime serve", cmd, &dir.path().join("serve.log"))
        .map_err(|e| anyhow::anyhow!("{e} (install it with scripts/install-wasmtime)"))?;

    let lattice_addr = format!("127.0.0.1:{lattice_port}");
    let wasmtime_addr = format!("127.0.0.1:{wasmtime_port}");
    for addr in [&lattice_addr, &wasmtime_addr] {
        wait_ready(addr).await?;
        // Warm up: compile caches, connection setup, instance pools.
        drive(addr, Duration::from_secs(1)).await?;
    }
    let version = std::process::Command::new(&wasmtime)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!(
        "GET / of http-hello, {CONNECTIONS} keep-alive connections, {ROUNDS} interleaved rounds of {ROUND:?} each"
    );
    let (mut ours, mut theirs) = (Load::default(), Load::default());
    for _ in 0..ROUNDS {
        ours.add(drive(&lattice_addr, ROUND).await?);
        theirs.add(drive(&wasmtime_addr, ROUND).await?);
    }
    let (ours_rps, theirs_rps) = (ours.rps(), theirs.rps());
    let (o, t) = (summarize(ours.latencies), summarize(theirs.latencies));
    println!("{:<28} {:>10} {:>10} {:>10}", "", "req/s", "p50", "p99");
    println!(
        "{:<28} {:>10.0} {:>10} {:>10}",
        "lattice ingress",
        ours_rps,
        ms(o.p50),
        ms(o.p99)
    );
    println!(
        "{:<28} {:>10.0} {:>10} {:>10}",
        version,
        theirs_rps,
        ms(t.p50),
        ms(t.p99)
    );
    println!(
        "ratio (lattice / wasmtime serve): req/s {:.2}x, p99 {:.2}x",
        ours_rps / theirs_rps,
        o.p99.as_secs_f64() / t.p99.as_secs_f64()
    );
    drop(host);
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
