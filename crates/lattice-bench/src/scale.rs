//! The control plane at scale: N `lattice host` processes (spread over a 3-node NATS cluster,
//! heartbeating every 5 s as in production) and how the control plane's cost grows with N.
//!
//! Per N it measures, in this order: hosts joining; an app of `k`·N instances of `calc`
//! placed by the reconciler; idle traffic over a window (messages and bytes published per
//! host per second, by kind, from a `>` subscriber; deliveries per host per second from the
//! servers' `/varz`); the reconciler's and an ordinary host's CPU; `get hosts`, `get
//! inventory` and auction latency; and the re-placement of a SIGKILLed host's share. Then it
//! fits each metric to `a·N^b` (least squares on logs) and extrapolates to 1,000 and 10,000
//! hosts with that model.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use lattice_testkit::{HostProcess, HostSpec, NatsCluster};

/// Instances of the app per host.
const PER_HOST: u32 = 3;
/// How long idle traffic is counted.
const WINDOW: Duration = Duration::from_secs(10);

/// What one N measured.
struct Row {
    n: usize,
    metrics: BTreeMap<&'static str, f64>,
}

pub async fn run(sizes: Vec<usize>) -> anyhow::Result<()> {
    println!(
        "# lattice-bench scale (hosts as processes over a 3-node cluster, heartbeat 5 s, \
         an app of {PER_HOST} calc instances per host; idle counted over {WINDOW:?})\n"
    );
    let mut rows = Vec::new();
    for n in sizes {
        let row = measure(n).await?;
        print_row(&row, rows.is_empty());
        rows.push(row);
    }
    fit(&rows);
    Ok(())
}

fn lattice_bin() -> anyhow::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("lattice");
    anyhow::ensure!(bin.is_file(), "{} not built", bin.display());
    Ok(bin)
}

/// CPU seconds (user + system) a process has used, from `/proc`.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

/// Sum of a `/varz` counter over the cluster.
fn varz(cluster: &NatsCluster, field: &str) -> f64 {
    cluster
        .servers
        .iter()
        .filter_map(|s| {
            let body = s.monitor("/varz")?;
            let rest = body.split_once(&format!("\"{field}\":"))?.1.trim_start();
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<f64>().ok()
        })
        .sum()
}

/// The kind of a control-plane subject, for the traffic table.
fn kind(subject: &str) -> &'static str {
    if subject.starts_with("wasmbus.evt.") {
        "events"
    } else if subject.starts_with("wasmbus.ctl.") {
        "control"
    } else if subject.starts_with("$JS.") || subject.starts_with("$KV.") {
        "jetstream"
    } else if subject.starts_with("_INBOX.") {
        "replies"
    } else {
        "other"
    }
}

async fn instances(ctl: &lattice_ctl::Client, hosts: &[HostProcess]) -> u32 {
    let mut total = 0;
    for h in hosts {
        if let Ok(inv) = ctl.host_inventory(&h.id).await {
            total += inv
                .components
                .iter()
                .filter(|c| c.id == "scale-calc")
                .map(|c| c.max_instances)
                .sum::<u32>();
        }
    }
    total
}

async fn until_instances(
    ctl: &lattice_ctl::Client,
    hosts: &[HostProcess],
    want: u32,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        if instances(ctl, hosts).await == want {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "{want} instances not placed in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v.get(v.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

async fn measure(n: usize) -> anyhow::Result<Row> {
    let cluster = NatsCluster::start(3)?;
    let cache = tempfile::tempdir()?;
    let bin = lattice_bin()?;
    let mut metrics = BTreeMap::new();

    // Hosts spawned all at once, each on one of the three servers.
    let started = Instant::now();
    let mut spawned = Vec::new();
    for i in 0..n {
        let url = cluster.servers[i % cluster.servers.len()].url();
        let spec = HostSpec::new(&bin, &url, "default")
            .heartbeat(Duration::from_secs(5))
            .arg("--allow-file-load")
            .arg("--cache-dir")
            .arg(cache.path().display().to_string());
        spawned.push(spec.spawn()?);
    }
    let mut hosts = Vec::new();
    for (process, dir) in spawned {
        hosts.push(HostProcess::joined(process, dir)?);
    }
    metrics.insert("join all (s)", started.elapsed().as_secs_f64());
    let client = async_nats::connect(cluster.servers[0].url()).await?;
    let ctl = lattice_ctl::Client::new(client.clone(), "default")?;
    let js = async_nats::jetstream::new(client.clone());

    // The app: PER_HOST instances per host, placed by the reconciler.
    let store = lattice_app::AppStore::open(&js, "default", 1).await?;
    let manifest = lattice_app::Manifest::parse(&format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {{ name: scale }}\n\
         spec:\n  components:\n    - name: calc\n      type: component\n      \
         properties: {{ image: \"{}\" }}\n      traits:\n        - type: spreadscaler\n          \
         properties: {{ instances: {} }}\n",
        lattice_testkit::control::component_ref("calc"),
        n as u32 * PER_HOST
    ))?;
    store.put(manifest).await?;
    let started = Instant::now();
    store.deploy("scale", None).await?;
    let want = n as u32 * PER_HOST;
    until_instances(&ctl, &hosts, want, Duration::from_secs(300)).await?;
    metrics.insert("app placed (s)", started.elapsed().as_secs_f64());
    // Settled: nothing left to send.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Idle: what the lattice publishes and delivers with nothing happening.
    let mut sniffer = client.subscribe(">").await?;
    client.flush().await?;
    let holder = lattice_nats::kv::open_or_create(
        &js,
        async_nats::jetstream::kv::Config {
            bucket: lattice_proto::subject::lease_bucket("default"),
            ..Default::default()
        },
    )
    .await
    .ok();
    let holder_id = match &holder {
        Some(kv) => kv
            .get("reconciler")
            .await
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).to_string()),
        None => None,
    };
    let holder = hosts.iter().find(|h| Some(&h.id) == holder_id.as_ref());
    let other = hosts.iter().find(|h| Some(&h.id) != holder_id.as_ref());
    let cpu = |h: Option<&HostProcess>| h.map_or(0.0, |h| cpu_seconds(h.process.pid()));
    let (holder_cpu, other_cpu) = (cpu(holder), cpu(other));
    let out_before = varz(&cluster, "out_msgs");
    let window_end = tokio::time::Instant::now() + WINDOW;
    let mut published: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    while let Ok(Some(m)) = tokio::time::timeout_at(window_end, sniffer.next()).await {
        let e = published.entry(kind(m.subject.as_str())).or_default();
        e.0 += 1.0;
        e.1 += (m.payload.len() + m.subject.len()) as f64;
    }
    drop(sniffer);
    let secs = WINDOW.as_secs_f64();
    let per_host = |x: f64| x / secs / n as f64;
    let (mut msgs, mut bytes) = (0.0, 0.0);
    for (k, (m, b)) in &published {
        msgs += m;
        bytes += b;
        if *k == "events" || *k == "control" || *k == "jetstream" {
            let name: &'static str = match *k {
                "events" => "idle events msgs/s/host",
                "control" => "idle control msgs/s/host",
                _ => "idle jetstream msgs/s/host",
            };
            metrics.insert(name, per_host(*m));
        }
    }
    metrics.insert("idle msgs/s/host", per_host(msgs));
    metrics.insert("idle bytes/s/host", per_host(bytes));
    // Deliveries count every copy (and route hops), the sniffer's own too: taken out.
    let delivered = varz(&cluster, "out_msgs") - out_before - msgs;
    metrics.insert("idle deliveries/s/host", per_host(delivered.max(0.0)));
    metrics.insert(
        "reconciler CPU (%)",
        (cpu(holder) - holder_cpu) / secs * 100.0,
    );
    metrics.insert("host CPU (%)", (cpu(other) - other_cpu) / secs * 100.0);

    // Latencies, as `lattice get hosts`, `get inventory` and an auction see them.
    let mut pings = Vec::new();
    let mut inventories = Vec::new();
    let mut auctions = Vec::new();
    for i in 0..5 {
        let t = Instant::now();
        let seen = ctl.ping_hosts().await?.len();
        pings.push(t.elapsed());
        anyhow::ensure!(seen == n, "get hosts saw {seen} of {n}");
        let t = Instant::now();
        ctl.host_inventory(&hosts[i * 7 % n].id).await?;
        inventories.push(t.elapsed());
        let t = Instant::now();
        let req = lattice_proto::ctl::ComponentAuctionRequest {
            component_ref: lattice_testkit::control::component_ref("calc"),
            component_id: format!("auction-{i}"),
            constraints: Default::default(),
        };
        ctl.auction_component(&req).await?;
        auctions.push(t.elapsed());
    }
    metrics.insert("get hosts (ms)", median(pings));
    metrics.insert("get inventory (ms)", median(inventories));
    metrics.insert("auction (ms)", median(auctions));

    // A host that is not the reconciler's, killed: its share goes elsewhere.
    let victim = hosts
        .iter()
        .position(|h| Some(&h.id) != holder_id.as_ref())
        .unwrap_or(0);
    let mut victim = hosts.remove(victim);
    let started = Instant::now();
    victim.process.kill();
    until_instances(&ctl, &hosts, want, Duration::from_secs(120)).await?;
    metrics.insert("re-placed (s)", started.elapsed().as_secs_f64());
    Ok(Row { n, metrics })
}

fn print_row(row: &Row, header: bool) {
    if header {
        let names: Vec<&str> = row.metrics.keys().copied().collect();
        println!("| hosts | {} |", names.join(" | "));
        println!("|---|{}", "---|".repeat(names.len()));
    }
    let values: Vec<String> = row.metrics.values().map(|v| format!("{v:.3}")).collect();
    println!("| {} | {} |", row.n, values.join(" | "));
}

/// Fits every metric to `a·N^b` and extrapolates.
fn fit(rows: &[Row]) {
    let Some(last) = rows.last() else { return };
    if rows.len() < 2 {
        return;
    }
    println!("\nModel: each metric m(N) = a·N^b, b fitted by least squares on (ln N, ln m) over the rows above; extrapolated as m(N) = m(N_max)·(N/N_max)^b.\n");
    println!("| metric | b (growth exponent) | at 1,000 hosts | at 10,000 hosts |");
    println!("|---|---|---|---|");
    for name in last.metrics.keys() {
        let points: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| {
                let v = *r.metrics.get(name)?;
                (v > 0.0).then(|| ((r.n as f64).ln(), v.ln()))
            })
            .collect();
        if points.len() < 2 {
            println!("| {name} | (too few nonzero points) | | |");
            continue;
        }
        let k = points.len() as f64;
        let (mx, my) = (
            points.iter().map(|p| p.0).sum::<f64>() / k,
            points.iter().map(|p| p.1).sum::<f64>() / k,
        );
        let cov: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let var: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let b = if var > 0.0 { cov / var } else { 0.0 };
        let base = last.metrics[name];
        let at = |n: f64| base * (n / last.n as f64).powf(b);
        println!(
            "| {name} | {b:.2} | {:.3} | {:.3} |",
            at(1000.0),
            at(10000.0)
        );
    }
}
