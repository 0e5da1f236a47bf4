//! Lattice hosts as real child processes of the `lattice` binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::ChildProcess;
use crate::{Error, Result};

/// How long a host may take to join its lattice.
const JOIN_TIMEOUT: Duration = Duration::from_secs(20);

/// A `lattice host` process that has joined its lattice.
pub struct HostProcess {
    pub id: String,
    pub friendly_name: String,
    pub process: ChildProcess,
    _dir: tempfile::TempDir,
}

/// How to start a host.
#[derive(Debug, Clone)]
pub struct HostSpec {
    pub bin: PathBuf,
    pub nats_url: String,
    pub lattice: String,
    pub heartbeat: Duration,
    pub args: Vec<String>,
    /// Network namespace to run in (`ip netns exec`), see [`crate::netns::Netns`].
    pub netns: Option<String>,
    /// Environment variables set for the host (e.g. `OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub env: Vec<(String, String)>,
}

impl HostSpec {
    /// A host of `lattice` at `nats_url`, heartbeating every second.
    pub fn new(bin: impl AsRef<Path>, nats_url: &str, lattice: &str) -> Self {
        Self {
            bin: bin.as_ref().into(),
            nats_url: nats_url.into(),
            lattice: lattice.into(),
            heartbeat: Duration::from_secs(1),
            args: Vec::new(),
            netns: None,
            env: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Sets environment variable `key` for the host.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs the host in network namespace `name` (made by [`crate::netns::Netns`]). `ip
    /// netns exec` execs the host in place, so the process's PID is the host's own.
    pub fn in_netns(mut self, name: &str) -> Self {
        self.netns = Some(name.into());
        self
    }

    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every;
        self
    }

    /// Spawns the host without waiting for it to join.
    pub fn spawn(&self) -> Result<(ChildProcess, tempfile::TempDir)> {
        let dir = tempfile::tempdir()?;
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        cmd.arg("host")
            .arg("--nats-url")
            .arg(&self.nats_url)
            .arg("--lattice")
            .arg(&self.lattice)
            .arg("--heartbeat-interval")
            .arg(format!("{}ms", self.heartbeat.as_millis()))
            .args(&self.args)
            .env("RUST_LOG", "info,lattice_host=debug")
            .env_remove("LATTICE_NATS_URL")
            .env_remove("LATTICE_NAME")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        let process = ChildProcess::spawn("lattice host", cmd, &dir.path().join("host.log"))?;
        Ok((process, dir))
    }

    /// Spawns the host and waits until it has joined.
    pub fn start(&self) -> Result<HostProcess> {
        let (process, dir) = self.spawn()?;
        HostProcess::joined(process, dir)
    }
}

impl HostProcess {
    /// Waits for `process` to log that it joined, and reads its id and name from that line:
    /// `host N… (name) joined lattice "…"`.
    pub fn joined(mut process: ChildProcess, dir: tempfile::TempDir) -> Result<Self> {
        let line = process.wait_for_log(") joined lattice", JOIN_TIMEOUT)?;
        let rest = line
            .split_once("host ")
            .map(|(_, r)| r)
            .ok_or_else(|| Error::Setup(format!("unexpected join line {line:?}")))?;
        let (id, rest) = rest
            .split_once(" (")
            .ok_or_else(|| Error::Setup(format!("unexpected join line {line:?}")))?;
        let name = rest.split_once(')').map(|(n, _)| n).unwrap_or_default();
        Ok(Self {
            id: id.into(),
            friendly_name: name.into(),
            process,
            _dir: dir,
        })
    }
}
