//! Capability providers: native processes a host starts, supervises and stops
//! (`provider.start` / `provider.stop` / `provider.auction`), as wasmCloud v1 hosts run them,
//! so wasmCloud's published providers work unchanged (see `lattice_proto::provider`).
//!
//! - Start: the reference is resolved to an executable (`artifact`: a file, or the binary
//!   for this machine in a provider archive), the process is spawned
//!   with its host data on stdin and counts as started once it answers its health check
//!   (`process`): `provider_started`. One that cannot be found, is not executable, exits or
//!   never answers gives `provider_start_failed` with the reason, within a bounded time.
//! - Supervision (`supervise`): a process that dies is restarted with exponential backoff
//!   (reported as `health_check_failed`, then `health_check_passed` once it is back); health
//!   is checked every [`ProviderTimings::health_interval`]; links from or to the provider
//!   are sent to the process as they change (`links`).
//! - Stop: the process is asked to shut down, killed if it has not exited in time, and
//!   `provider_stopped` is announced.
//!
//! Not here: the control handlers (`ctl::provider`); calls to a provider's exports, which are
//! wRPC calls to `{lattice}.{provider_id}` like any other target.

mod artifact;
mod links;
mod process;
mod supervise;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lattice_proto::ctl::ProviderDescription;
use lattice_proto::provider::{
    ProviderStartFailed, ProviderStarted, StartProviderCommand, PROVIDER_STARTED,
    PROVIDER_START_FAILED,
};
use tokio::sync::watch;

use crate::events::EventPublisher;
use crate::state::LatticeState;

/// How a host paces its providers.
#[derive(Debug, Clone, Copy)]
pub struct ProviderTimings {
    /// Between health checks (wasmCloud: 30 s).
    pub health_interval: Duration,
    /// How long a new process has to answer its first health check.
    pub ready_within: Duration,
    /// How long a process asked to shut down has before it is killed.
    pub stop_within: Duration,
    /// First and longest wait before a dead process is started again.
    pub restart_backoff: (Duration, Duration),
}

impl Default for ProviderTimings {
    fn default() -> Self {
        Self {
            health_interval: Duration::from_secs(30),
            ready_within: Duration::from_secs(30),
            stop_within: Duration::from_secs(3),
            restart_backoff: (Duration::from_secs(1), Duration::from_secs(30)),
        }
    }
}

/// What a provider process dials: the host's servers and, where NATS data can carry them,
/// its credentials.
#[derive(Debug, Clone, Default)]
pub(crate) struct RpcAccess {
    pub url: String,
    pub jwt: String,
    pub seed: String,
}

impl RpcAccess {
    /// The host's servers and credentials, as provider host data can carry them: a user and
    /// password or a token go into the URLs, a `.creds` file as its JWT and seed. An nkey
    /// seed alone cannot be carried (wasmCloud's SDK signs only with a JWT): providers then
    /// connect without credentials, and a warning says so.
    pub(crate) fn of(nats: &lattice_nats::NatsConfig) -> Self {
        use lattice_nats::NatsAuth;
        let with_userinfo = |info: &str| {
            nats.urls
                .iter()
                .map(|u| match u.split_once("://") {
                    Some((scheme, rest)) => format!("{scheme}://{info}@{rest}"),
                    None => format!("{info}@{u}"),
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut access = RpcAccess {
            url: nats.urls.join(","),
            ..Default::default()
        };
        match &nats.auth {
            NatsAuth::None => {}
            NatsAuth::UserPassword { user, password } => {
                access.url = with_userinfo(&format!("{user}:{password}"))
            }
            NatsAuth::Token(token) => access.url = with_userinfo(token),
            NatsAuth::CredsFile(path) => match std::fs::read_to_string(path) {
                Ok(text) => {
                    access.jwt = creds_section(&text, "JWT").unwrap_or_default();
                    access.seed = creds_section(&text, "SEED").unwrap_or_default();
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read the creds file for providers")
                }
            },
            NatsAuth::NkeySeed(_) => tracing::warn!(
                "providers cannot use an nkey seed without a JWT; they connect without credentials"
            ),
        }
        access
    }
}

/// The line after the `-----BEGIN … {what}-----` marker of a `.creds` file.
fn creds_section(text: &str, what: &str) -> Option<String> {
    let mut lines = text.lines();
    lines.find(|l| l.contains("BEGIN") && l.contains(what))?;
    lines
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

/// One provider on this host.
pub(crate) struct Running {
    pub id: String,
    pub image_ref: String,
    pub annotations: BTreeMap<String, String>,
    /// Set once the first process answered its health check.
    started: std::sync::atomic::AtomicBool,
    stop: watch::Sender<bool>,
    supervisor: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The providers of one host.
pub(crate) struct Providers {
    pub host_id: String,
    pub lattice: String,
    pub nats: async_nats::Client,
    pub rpc: RpcAccess,
    pub state: Arc<LatticeState>,
    pub events: EventPublisher,
    pub allow_file_load: bool,
    pub timings: ProviderTimings,
    /// Registry access for OCI provider artifacts (the components' client: same credentials).
    oci: Arc<crate::oci::OciClient>,
    /// The host's xkey, whose public half providers learn (sealed secrets come from it).
    host_xkey: nkeys::XKey,
    running: Mutex<HashMap<String, Arc<Running>>>,
}

impl Providers {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        host_id: String,
        lattice: String,
        nats: async_nats::Client,
        rpc: RpcAccess,
        state: Arc<LatticeState>,
        events: EventPublisher,
        allow_file_load: bool,
        timings: ProviderTimings,
        oci: Arc<crate::oci::OciClient>,
    ) -> Self {
        Self {
            host_id,
            lattice,
            nats,
            rpc,
            state,
            events,
            allow_file_load,
            timings,
            oci,
            host_xkey: nkeys::XKey::new(),
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Whether provider `id` runs (or is starting) here.
    pub(crate) fn runs(&self, id: &str) -> bool {
        self.running.lock().is_ok_and(|r| r.contains_key(id))
    }

    /// Whether provider `id` is starting here (its first process has not answered yet).
    pub(crate) fn starting(&self, id: &str) -> bool {
        self.running.lock().is_ok_and(|r| {
            r.get(id)
                .is_some_and(|p| !p.started.load(std::sync::atomic::Ordering::Acquire))
        })
    }

    /// The inventory's view of the providers.
    pub(crate) fn describe(&self) -> Vec<ProviderDescription> {
        let Ok(running) = self.running.lock() else {
            return Vec::new();
        };
        let mut out: Vec<_> = running
            .values()
            .map(|r| ProviderDescription {
                id: r.id.clone(),
                image_ref: Some(r.image_ref.clone()),
                name: Some(r.id.clone()),
                annotations: r.annotations.clone(),
                revision: 0,
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Starts provider `cmd.provider_id`, announcing the outcome. Refuses an id already
    /// running here.
    pub(crate) async fn start(self: &Arc<Self>, cmd: StartProviderCommand) {
        let id = cmd.provider_id.clone();
        let reserved = {
            let Ok(mut running) = self.running.lock() else {
                return;
            };
            if running.contains_key(&id) {
                None
            } else {
                let r = Arc::new(Running {
                    id: id.clone(),
                    image_ref: cmd.provider_ref.clone(),
                    annotations: cmd.annotations.clone(),
                    started: Default::default(),
                    stop: watch::Sender::new(false),
                    supervisor: Mutex::new(None),
                });
                running.insert(id.clone(), r.clone());
                Some(r)
            }
        };
        let result = match reserved {
            // A start of an id still starting is the same request again (schedulers resend
            // while they wait): the first one reports for both.
            None if self.starting(&id) => return,
            None => Err(format!("provider {id} is already running on this host")),
            Some(running) => {
                let started = self.clone().first_start(&cmd, running.clone()).await;
                match &started {
                    Ok(()) => running
                        .started
                        .store(true, std::sync::atomic::Ordering::Release),
                    Err(_) => self.forget(&id),
                }
                started
            }
        };
        match result {
            Ok(()) => {
                tracing::info!(provider_id = %id, provider_ref = %cmd.provider_ref, "provider started");
                self.events
                    .publish(
                        PROVIDER_STARTED,
                        ProviderStarted {
                            host_id: self.host_id.clone(),
                            image_ref: cmd.provider_ref.clone(),
                            provider_id: id,
                            annotations: cmd.annotations.clone(),
                        },
                    )
                    .await;
            }
            Err(error) => {
                tracing::warn!(provider_id = %id, provider_ref = %cmd.provider_ref, %error, "provider start failed");
                self.events
                    .publish(
                        PROVIDER_START_FAILED,
                        ProviderStartFailed {
                            provider_ref: cmd.provider_ref.clone(),
                            provider_id: id,
                            host_id: self.host_id.clone(),
                            error,
                        },
                    )
                    .await;
            }
        }
    }

    /// Resolves, spawns and waits for the first process, then hands it to its supervisor.
    async fn first_start(
        self: Arc<Self>,
        cmd: &StartProviderCommand,
        running: Arc<Running>,
    ) -> Result<(), String> {
        let path = artifact::fetch(&self.oci, &cmd.provider_ref, self.allow_file_load).await?;
        // Every named config must exist, as for a component.
        let config = self.merged_config(&cmd.config, true).await?;
        let launch = supervise::Launch {
            path,
            config_names: cmd.config.clone(),
        };
        let (process, sent) = self.launch(&running.id, &launch, config).await?;
        let handle = tokio::spawn(supervise::run(
            self.clone(),
            running.clone(),
            launch,
            process,
            sent,
        ));
        if let Ok(mut s) = running.supervisor.lock() {
            *s = Some(handle);
        }
        Ok(())
    }

    /// Stops provider `id` (asks it, then kills it); `provider_stopped` is announced by its
    /// supervisor. Resolves once it is gone.
    pub(crate) async fn stop(&self, id: &str) -> Result<(), String> {
        let running = self
            .running
            .lock()
            .ok()
            .and_then(|r| r.get(id).cloned())
            .ok_or_else(|| format!("provider {id} is not running on this host"))?;
        running.stop.send_replace(true);
        let handle = running.supervisor.lock().ok().and_then(|mut s| s.take());
        if let Some(handle) = handle {
            let _ = handle.await;
        }
        Ok(())
    }

    /// Stops every provider (the host is stopping).
    pub(crate) async fn stop_all(&self) {
        let ids: Vec<String> = self
            .running
            .lock()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default();
        futures::future::join_all(ids.iter().map(|id| self.stop(id))).await;
    }

    fn forget(&self, id: &str) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(id);
        }
    }

    /// The named configs `names`, merged in order (later names win). With `strict`, a name
    /// that does not exist is an error; otherwise it is skipped.
    pub(crate) async fn merged_config(
        &self,
        names: &[String],
        strict: bool,
    ) -> Result<HashMap<String, String>, String> {
        let mut merged = HashMap::new();
        for name in names {
            match self.state.config.get(name).await {
                Ok(Some(map)) => merged.extend(map),
                Ok(None) if strict => return Err(format!("named config {name:?} does not exist")),
                Ok(None) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(merged)
    }
}
