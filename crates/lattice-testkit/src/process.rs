//! Child processes with captured logs, signals and log polling.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::kill;
pub use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::{wait, Error, Result};

/// A child process whose stdout and stderr go to `log`. Killed (SIGKILL) on drop.
pub struct ChildProcess {
    name: String,
    child: Child,
    log: PathBuf,
}

impl ChildProcess {
    /// Spawns `cmd` with output to `log`. The child gets SIGKILL if the spawning thread dies,
    /// so even a test aborted mid-way leaves no process behind.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Self> {
        let out = File::create(log)?;
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        // SAFETY: prctl is async-signal-safe and touches no parent memory.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| Error::Setup(format!("cannot start {name}: {e}")))?;
        Ok(Self {
            name: name.into(),
            child,
            log: log.to_path_buf(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process has written so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`; returns the first line holding it.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        let mut exited = None;
        let found = wait::until(
            &format!("{:?} in the log of {}", needle, self.name),
            timeout,
            Duration::from_millis(10),
            || {
                if let Some(line) = self.log().lines().find(|l| l.contains(needle)) {
                    return Some(Some(line.to_string()));
                }
                if let Ok(Some(status)) = self.child.try_wait() {
                    exited = Some(status);
                    return Some(None);
                }
                None
            },
        );
        match found {
            Ok(Some(line)) => Ok(line),
            Ok(None) => Err(Error::Setup(format!(
                "{} exited ({}) before logging {needle:?}; log:\n{}",
                self.name,
                exited.map(|s| s.to_string()).unwrap_or_default(),
                self.log()
            ))),
            Err(e) => Err(Error::Setup(format!(
                "{e}; log of {}:\n{}",
                self.name,
                self.log()
            ))),
        }
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        kill(Pid::from_raw(self.child.id() as i32), signal)
            .map_err(|e| Error::Setup(format!("cannot signal {}: {e}", self.name)))
    }

    /// A handle that signals this process from another thread while this one owns it.
    pub fn signaller(&self) -> Signaller {
        Signaller {
            pid: self.child.id() as i32,
            name: self.name.clone(),
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the process to exit on its own, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let name = self.name.clone();
        wait::until(
            &format!("{name} to exit"),
            timeout,
            Duration::from_millis(10),
            || self.child.try_wait().ok().flatten(),
        )
    }
}

/// Sends signals to a [`ChildProcess`] (only while it is alive and owned by the test).
#[derive(Debug, Clone)]
pub struct Signaller {
    pid: i32,
    name: String,
}

impl Signaller {
    pub fn signal(&self, signal: Signal) -> Result<()> {
        kill(Pid::from_raw(self.pid), signal)
            .map_err(|e| Error::Setup(format!("cannot signal {}: {e}", self.name)))
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        // A paused process would ignore nothing, but resume it so it can be reaped at once.
        let _ = self.signal(Signal::SIGCONT);
        self.kill();
    }
}

/// The binary `name`: `$env` if set, else the first `name` on `PATH`; `hint` says how to
/// install it when neither is there.
pub fn find_binary(env: &str, name: &str, hint: &str) -> Result<std::path::PathBuf> {
    std::env::var_os(env)
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .ok_or_else(|| crate::Error::Setup(format!("{name} not found: {hint}")))
}
