//! One provider process: spawned with its host data on stdin (base64 JSON, then CRLF, as
//! wasmCloud's provider SDK reads it), its output kept as log lines (the last few also for
//! error messages), started once it answers its health check, and stopped by asking it
//! first.
//!
//! The process gets an empty environment but `RUST_LOG` and `OTEL_*` (as on wasmCloud):
//! everything it needs comes in its host data.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use lattice_proto::provider::{HostData, ShutdownRequest};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// Output lines kept for error messages.
const KEPT_LINES: usize = 8;
/// How long one health request waits for its answer.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// Between attempts to reach a process that is not subscribed yet.
const READY_POLL: Duration = Duration::from_millis(50);

pub(super) struct Process {
    child: Child,
    /// The public half of the process's xkey: its links' subject.
    pub xkey: String,
    last_lines: Arc<Mutex<VecDeque<String>>>,
    /// The tasks reading its stdout and stderr into `last_lines`.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

/// How long an exited process's output is waited for: its pipes close with it, unless a
/// child it left behind holds them.
const DRAIN: Duration = Duration::from_millis(500);

impl Process {
    /// Spawns `path` and hands it `data`.
    pub(super) async fn spawn(path: &Path, id: &str, data: &HostData) -> Result<Self, String> {
        let mut cmd = Command::new(path);
        cmd.env_clear();
        for (k, v) in std::env::vars() {
            if k == "RUST_LOG" || k.starts_with("OTEL_") {
                cmd.env(k, v);
            }
        }
        // A provider dies with its host, even a host killed outright: an orphan would keep
        // its listeners and subscriptions while a scheduler places the provider elsewhere.
        // (The signal follows the thread that spawned it: a runtime worker, which lives as
        // long as the host.)
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            });
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
        let last_lines = Arc::new(Mutex::new(VecDeque::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(keep_lines(
                out,
                id.to_string(),
                last_lines.clone(),
            )));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(keep_lines(
                err,
                id.to_string(),
                last_lines.clone(),
            )));
        }
        let json = serde_json::to_vec(data).map_err(|e| format!("cannot encode host data: {e}"))?;
        let mut encoded = base64::engine::general_purpose::STANDARD.encode(json);
        encoded.push_str("\r\n");
        if let Some(mut stdin) = child.stdin.take() {
            // A process that exits at once closes its stdin: that is reported by its exit.
            let _ = stdin.write_all(encoded.as_bytes()).await;
            let _ = stdin.shutdown().await;
        }
        Ok(Process {
            child,
            xkey: String::new(),
            last_lines,
            readers,
        })
    }

    /// The last lines the process printed, for an error message.
    pub(super) fn last_output(&self) -> String {
        let lines = self
            .last_lines
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        if lines.is_empty() {
            String::new()
        } else {
            format!("; it printed: {}", Vec::from(lines).join(" | "))
        }
    }

    /// The last lines of a process that exited, once its output is read to the end (so a
    /// line it printed just before exiting is not missed), or after [`DRAIN`].
    pub(super) async fn final_output(&mut self) -> String {
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(DRAIN, reader).await;
        }
        self.last_output()
    }

    /// Resolves when the process has exited, with how.
    pub(super) async fn exited(&mut self) -> String {
        match self.child.wait().await {
            Ok(status) => status.to_string(),
            Err(e) => format!("cannot wait for it: {e}"),
        }
    }

    /// Waits until the process answers on `health` (it is connected and serving), it exits,
    /// or `within` passes.
    pub(super) async fn ready(
        &mut self,
        nats: &async_nats::Client,
        health: &str,
        within: Duration,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            tokio::select! {
                how = self.exited() => {
                    return Err(format!(
                        "the provider exited ({how}) before it answered its health check{}",
                        self.final_output().await
                    ));
                }
                answered = ask_health(nats, health) => {
                    if answered.is_some() {
                        return Ok(());
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(format!(
                        "the provider did not answer its health check within {within:?}{}",
                        self.last_output()
                    ));
                }
            }
            tokio::select! {
                how = self.exited() => {
                    return Err(format!(
                        "the provider exited ({how}) before it answered its health check{}",
                        self.final_output().await
                    ));
                }
                _ = tokio::time::sleep(READY_POLL) => {}
            }
        }
    }

    /// Asks the process to shut down on `subject`, then kills it if it has not exited
    /// within `within`.
    pub(super) async fn stop(
        &mut self,
        nats: &async_nats::Client,
        subject: &str,
        host_id: &str,
        within: Duration,
    ) {
        let body = serde_json::to_vec(&ShutdownRequest {
            host_id: host_id.to_string(),
        })
        .unwrap_or_default();
        let asked = tokio::time::timeout(within, nats.request(subject.to_string(), body.into()));
        let _ = asked.await;
        if tokio::time::timeout(within, self.child.wait())
            .await
            .is_err()
        {
            tracing::warn!(subject, "provider did not exit when asked; killing it");
            let _ = self.child.kill().await;
        }
    }
}

/// The provider's answer on `health`, if it gave one in time.
pub(super) async fn ask_health(
    nats: &async_nats::Client,
    health: &str,
) -> Option<lattice_proto::provider::HealthCheckResponse> {
    let reply = tokio::time::timeout(
        HEALTH_TIMEOUT,
        nats.request(health.to_string(), bytes::Bytes::from_static(b"{}")),
    )
    .await
    .ok()?
    .ok()?;
    Some(serde_json::from_slice(&reply.payload).unwrap_or(
        lattice_proto::provider::HealthCheckResponse {
            healthy: false,
            message: Some("unreadable health answer".into()),
        },
    ))
}

/// Logs each line of `out` and keeps the last [`KEPT_LINES`].
async fn keep_lines(
    out: impl tokio::io::AsyncRead + Unpin,
    id: String,
    kept: Arc<Mutex<VecDeque<String>>>,
) {
    let mut lines = tokio::io::BufReader::new(out).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(provider_id = %id, "{line}");
        if let Ok(mut k) = kept.lock() {
            if k.len() == KEPT_LINES {
                k.pop_front();
            }
            // Bounded, so a provider printing one endless line costs little.
            k.push_back(line.chars().take(500).collect());
        }
    }
}
