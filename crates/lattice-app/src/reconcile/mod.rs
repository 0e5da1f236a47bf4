//! The reconciler: keeps what runs in the lattice equal to the deployed applications.
//!
//! Every host runs [`run`]; exactly one of them is active per lattice at a time, the holder
//! of a lease: key `reconciler` in KV bucket `LATTICE_LEASE_{lattice}`, whose entries expire
//! after [`ReconcilerConfig::lease_ttl`]. The holder renews it (compare-and-set on its
//! revision) every third of its lifetime; when the holder dies the entry expires and the next host to try
//! `create` takes over. No consensus of our own: JetStream's is the one that counts.
//!
//! Only the holder follows the lattice's events (so the hosts' events and heartbeats go to one
//! reconciler, not to every host); the others try for the lease every third of its lifetime.
//! The holder keeps a [`View`] of the hosts from those events and a liveness sweep, reading
//! an inventory only from a host that changed. It runs a pass as soon as the view or a
//! manifest changed, else every 3 s: it reads the apps, places each component with
//! [`crate::plan::place`], and sends the difference as control requests (`component.scale`,
//! `component.update`, `link.put|del`, `config.put`). A command it sent is not sent again
//! until the lattice shows its effect or its backoff passes, so a placement that cannot be
//! met (no matching host) yields a `failed` status with the reason, not a loop of commands
//! (that memory lives in `state`).
//! Capability providers are placed the same way, one process per host ([`providers`]).

use std::collections::BTreeSet;
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use lattice_proto::ctl::{
    DeleteLinkRequest, HostInventory, Link, ScaleComponentCommand, UpdateComponentCommand,
};
use tokio::time::Instant;

use crate::manifest::Manifest;
use crate::plan::{place, HostView};
use lease::Lease;
use state::{State, RESYNC};
use view::View;

mod lease;
mod providers;
mod state;
mod view;
use crate::store::{AppStatus, AppStore, ScalerStatus};

/// Annotation naming the application a component was started for.
pub const APP_ANNOTATION: &str = "lattice.dev/app";

/// What the reconciler reports as it works, for whoever measures it (the host's metrics).
pub trait Observer: Send + Sync + 'static {
    /// A pass over every app ended; `complete`: nothing in it failed.
    fn pass(&self, complete: bool);
    /// A command went out: `scale`, `update`, `stop`, `start`, `link` or `config`.
    fn action(&self, kind: &'static str);
}

#[derive(Clone)]
pub struct ReconcilerConfig {
    /// Told of passes and commands, when something measures them.
    pub observer: Option<std::sync::Arc<dyn Observer>>,
    pub lattice: String,
    pub host_id: String,
    /// Passes run at least this often while active.
    pub tick: Duration,
    /// How long a lease lives without renewal: the takeover time after the holder dies.
    pub lease_ttl: Duration,
    pub kv_replicas: usize,
    /// Control-interface subject prefix of the lattice.
    pub ctl_prefix: String,
}

impl ReconcilerConfig {
    pub fn new(lattice: &str, host_id: &str) -> Self {
        Self {
            observer: None,
            lattice: lattice.into(),
            host_id: host_id.into(),
            tick: Duration::from_millis(500),
            lease_ttl: Duration::from_secs(3),
            kv_replicas: 1,
            ctl_prefix: lattice_proto::subject::DEFAULT_CTL_PREFIX.into(),
        }
    }
}

/// Runs for the life of the host: waits for the lease, then reconciles while holding it.
pub async fn run(nats: async_nats::Client, js: jetstream::Context, config: ReconcilerConfig) {
    let (mut lease, store) = loop {
        match (
            Lease::open(&js, &config).await,
            AppStore::open(&js, &config.lattice, config.kv_replicas).await,
        ) {
            (Ok(l), Ok(s)) => break (l, s),
            (Err(e), _) => tracing::debug!(error = %e, "reconciler: lease bucket unavailable"),
            (_, Err(e)) => tracing::debug!(error = %e, "reconciler: app store unavailable"),
        }
        tokio::time::sleep(config.lease_ttl).await;
    };
    let ctl = match lattice_ctl::Client::builder(nats.clone(), &config.lattice)
        .timeout(Duration::from_secs(2))
        .gather(Duration::from_millis(250), Duration::from_millis(60))
        .prefix(config.ctl_prefix.clone())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "reconciler cannot start");
            return;
        }
    };
    loop {
        if lease.hold().await {
            lead(&ctl, &store, &mut lease, &config).await;
        }
        // Not the holder: another try now and then, with nothing followed meanwhile.
        let jitter = rand::random_range(0..=config.tick.as_millis() as u64);
        tokio::time::sleep(config.lease_ttl / 3 + Duration::from_millis(jitter)).await;
    }
}

/// Reconciles while this host holds the lease: follows the lattice's events into a
/// [`View`] and the store's manifests, renews the lease every third of its lifetime, and runs
/// a pass as soon as either changed, else every [`RESYNC`]. An idle lattice so costs the
/// holder a few messages a second, not a full pass per tick. Returns when the lease is lost.
async fn lead(
    ctl: &lattice_ctl::Client,
    store: &AppStore,
    lease: &mut Lease,
    config: &ReconcilerConfig,
) {
    use futures::FutureExt as _;
    let mut events = ctl.events().await.ok();
    let mut changes = match store.changes().await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::debug!(error = %e, "reconciler: manifests not watched; passing every tick");
            None
        }
    };
    let mut view = View::default();
    let mut state = State {
        observer: config.observer.clone(),
        ..State::default()
    };
    let mut tick = tokio::time::interval(config.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut renewed = Instant::now();
    // `None`: a pass is due at once (the first, or after the store's watch ended).
    let mut passed: Option<Instant> = None;
    loop {
        let mut apps_changed = false;
        tokio::select! {
            _ = tick.tick() => {}
            e = next(&mut events) => {
                match e {
                    Some(e) => view.on_event(&e),
                    None => events = None,
                }
                // A burst (a scale of many instances) is taken in at once.
                while let Some(Some(e)) = events.as_mut().and_then(|ev| ev.next().now_or_never()) {
                    view.on_event(&e);
                }
            }
            c = next(&mut changes) => {
                if c.is_none() {
                    changes = None;
                }
                apps_changed = true;
            }
        }
        if renewed.elapsed() >= config.lease_ttl / 3 {
            if !lease.hold().await {
                return;
            }
            renewed = Instant::now();
        }
        if let Err(e) = view.refresh(ctl).await {
            tracing::debug!(error = %e, "reconciler: hosts not swept");
        }
        let resync = match (passed, &changes) {
            (Some(at), Some(_)) => at.elapsed() >= RESYNC,
            // Without the watch, every tick, as store changes would go unseen.
            _ => true,
        };
        if !view.take_changed() && !apps_changed && !resync {
            continue;
        }
        passed = Some(Instant::now());
        let inventories = view.inventories();
        let passed = pass(ctl, store, &mut state, &inventories).await;
        if let Err(e) = &passed {
            tracing::debug!(error = %e, "reconcile pass incomplete");
        }
        if let Some(o) = &config.observer {
            o.pass(passed.is_ok());
        }
    }
}

/// The next item of an optional stream; pending forever without one.
async fn next<S: futures::Stream + Unpin>(stream: &mut Option<S>) -> Option<S::Item> {
    match stream.as_mut() {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

async fn pass(
    ctl: &lattice_ctl::Client,
    store: &AppStore,
    state: &mut State,
    inventories: &[HostInventory],
) -> Result<(), String> {
    let apps = store.list().await.map_err(|e| e.to_string())?;
    if apps.is_empty() {
        return Ok(());
    }
    let links = ctl.get_links().await.map_err(|e| e.to_string())?;
    for (name, rec) in &apps {
        let status = match rec.deployed_manifest() {
            Some(m) => apply(ctl, m, inventories, &links, state).await,
            None => remove(ctl, name, inventories, &links, state).await,
        };
        let status = AppStatus {
            version: rec.deployed.clone(),
            ..status
        };
        if state.statuses.get(name) != Some(&status) {
            tracing::info!(app = %name, status = %status.status, "application status");
            store
                .set_status(name, &status)
                .await
                .map_err(|e| e.to_string())?;
            state.statuses.insert(name.clone(), status);
        }
    }
    Ok(())
}

fn managed_by<'a>(
    inv: &'a HostInventory,
    app: &str,
) -> impl Iterator<Item = &'a lattice_proto::ctl::ComponentDescription> {
    let app = app.to_string();
    inv.components
        .iter()
        .filter(move |c| c.annotations.get(APP_ANNOTATION) == Some(&app))
}

/// Brings one deployed application about; returns its status.
async fn apply(
    ctl: &lattice_ctl::Client,
    m: &Manifest,
    inventories: &[HostInventory],
    links: &[Link],
    state: &mut State,
) -> AppStatus {
    let app = m.metadata.name.as_str();
    let mut scalers = Vec::new();
    let mut busy = false;
    let ids: BTreeSet<String> = m
        .spec
        .components
        .iter()
        .map(|c| m.component_id(c))
        .collect();
    let views: Vec<HostView> = inventories
        .iter()
        .map(|inv| HostView {
            id: inv.host_id.clone(),
            labels: inv.labels.clone(),
            running: inv
                .components
                .iter()
                .map(|d| (d.id.clone(), d.max_instances))
                .collect(),
            providers: inv.providers.iter().map(|p| p.id.clone()).collect(),
        })
        .collect();
    let seen = Seen {
        views: &views,
        inventories,
    };
    for c in &m.spec.components {
        let id = m.component_id(c);
        // A built-in capability runs in every host: nothing to place, only its links.
        if Manifest::is_provider(c) {
            scalers.push(providers::place(ctl, app, c, &id, &seen, state, &mut busy).await);
        } else if Manifest::builtin_source(c).is_none() {
            scalers.push(place_component(ctl, app, c, &id, &seen, state, &mut busy).await);
        }
        for l in Manifest::links(c) {
            let source_configs = l.source.iter().flat_map(|s| &s.config);
            let target_configs = match &l.target {
                crate::manifest::LinkTarget::Full { config, .. } => config.as_slice(),
                _ => &[],
            };
            for cfg in source_configs.chain(target_configs) {
                write_config(ctl, state, cfg).await;
            }
            let target = m
                .spec
                .components
                .iter()
                .find(|t| t.name == l.target.name())
                .map(|t| m.component_id(t))
                .unwrap_or_default();
            // Links are unique per source, package and name; every app shares a built-in
            // source, so its links are named after their target unless named.
            let name = match (&l.name, Manifest::builtin_source(c)) {
                (Some(n), _) => n.clone(),
                (None, Some(_)) => target.clone(),
                (None, None) => "default".into(),
            };
            let link = Link {
                source_id: id.clone(),
                target,
                name,
                wit_namespace: l.namespace.clone(),
                wit_package: l.package.clone(),
                interfaces: l.interfaces.clone(),
                source_config: l
                    .source
                    .as_ref()
                    .map(|s| s.config.iter().map(|c| c.name.clone()).collect())
                    .unwrap_or_default(),
                target_config: match &l.target {
                    crate::manifest::LinkTarget::Full { config, .. } => {
                        config.iter().map(|c| c.name.clone()).collect()
                    }
                    _ => vec![],
                },
                idempotent: false,
            };
            if !links.contains(&link) {
                busy = true;
                let key = (
                    "link".to_string(),
                    format!(
                        "{}/{}:{}/{}",
                        link.source_id, link.wit_namespace, link.wit_package, link.name
                    ),
                );
                if state.may_send(key, format!("{link:?}")) {
                    if let Err(e) = ctl.put_link(&link).await {
                        tracing::warn!(error = %e, source = %link.source_id, "link put failed");
                    }
                }
            }
        }
    }
    // Components an older version had and this one does not.
    for inv in inventories {
        for d in managed_by(inv, app).filter(|d| !ids.contains(&d.id)) {
            busy = true;
            let key = (inv.host_id.clone(), d.id.clone());
            if state.may_send(key, "scale 0".into()) {
                stop(ctl, &inv.host_id, d).await;
            }
        }
        for p in providers::managed_by(inv, app).filter(|p| !ids.contains(&p.id)) {
            busy = true;
            providers::stop_if_due(ctl, state, &inv.host_id, &p.id).await;
        }
    }
    let failed: Vec<&ScalerStatus> = scalers.iter().filter(|s| s.status == "failed").collect();
    AppStatus {
        status: if !failed.is_empty() {
            "failed"
        } else if busy {
            "reconciling"
        } else {
            "deployed"
        }
        .into(),
        version: None,
        scalers,
    }
}

/// What one pass saw of the hosts: for placement, and as they reported it.
struct Seen<'a> {
    views: &'a [HostView],
    inventories: &'a [HostInventory],
}

/// Places component `c` (id `id`) of app `app`: scales or updates it on each host as its
/// scaler says, and reports the scaler's status. Sets `busy` when it sent anything.
async fn place_component(
    ctl: &lattice_ctl::Client,
    app: &str,
    c: &crate::manifest::Component,
    id: &str,
    seen: &Seen<'_>,
    state: &mut State,
    busy: &mut bool,
) -> ScalerStatus {
    let Seen { views, inventories } = *seen;
    // Configs with properties are written before anything uses them.
    for cfg in &c.properties.config {
        write_config(ctl, state, cfg).await;
    }
    let placement = match Manifest::scaler(c) {
        Some(s) => place(&s, id, views),
        None => Default::default(),
    };
    for inv in inventories {
        let want = placement.per_host.get(&inv.host_id).copied().unwrap_or(0);
        let have = inv.components.iter().find(|d| d.id == id);
        let key = (inv.host_id.clone(), id.to_string());
        match have {
            Some(d) if d.image_ref != c.properties.image && want > 0 => {
                *busy = true;
                // A new version: swapped in place on this host, calls keep flowing.
                if state.may_send(key, format!("update {}", c.properties.image)) {
                    let cmd = UpdateComponentCommand {
                        component_id: id.to_string(),
                        new_component_ref: c.properties.image.clone(),
                        host_id: Some(inv.host_id.clone()),
                        annotations: None,
                    };
                    if let Err(e) = ctl.update_component(&inv.host_id, &cmd).await {
                        tracing::warn!(error = %e, component_id = %id, "update failed");
                    }
                }
            }
            Some(d) if d.max_instances == want => state.settled(&key),
            None if want == 0 => state.settled(&key),
            // Ours to change only if this app started it.
            Some(d)
                if want == 0
                    && d.annotations.get(APP_ANNOTATION).map(String::as_str) != Some(app) => {}
            _ => {
                *busy = true;
                if state.may_send(key, format!("scale {want}")) {
                    scale(ctl, app, &inv.host_id, id, c, want).await;
                }
            }
        }
    }
    if !placement.unplaced.is_empty() {
        ScalerStatus {
            component: c.name.clone(),
            status: "failed".into(),
            message: placement.unplaced.join("; "),
        }
    } else {
        ScalerStatus {
            component: c.name.clone(),
            status: "ok".into(),
            message: String::new(),
        }
    }
}

/// Writes config `cfg` when it comes with properties that were not written yet.
async fn write_config(
    ctl: &lattice_ctl::Client,
    state: &mut State,
    cfg: &crate::manifest::ConfigProperty,
) {
    if let Some(props) = &cfg.properties {
        if state.configs.get(&cfg.name) != Some(props) {
            if let Some(o) = &state.observer {
                o.action("config");
            }
            if ctl.put_config(&cfg.name, props).await.is_ok() {
                state.configs.insert(cfg.name.clone(), props.clone());
            }
        }
    }
}

/// Stops an undeployed application's components and removes its links.
async fn remove(
    ctl: &lattice_ctl::Client,
    app: &str,
    inventories: &[HostInventory],
    links: &[Link],
    state: &mut State,
) -> AppStatus {
    let mut ours = BTreeSet::new();
    for inv in inventories {
        for d in managed_by(inv, app) {
            ours.insert(d.id.clone());
            let key = (inv.host_id.clone(), d.id.clone());
            if state.may_send(key, "scale 0".into()) {
                stop(ctl, &inv.host_id, d).await;
            }
        }
        for p in providers::managed_by(inv, app) {
            ours.insert(p.id.clone());
            providers::stop_if_due(ctl, state, &inv.host_id, &p.id).await;
        }
    }
    // The app's links: from its components, and from built-in sources to them.
    let builtin = |source: &str| crate::manifest::BUILTINS.iter().any(|(_, s)| *s == source);
    for l in links.iter().filter(|l| {
        ours.contains(&l.source_id) || (builtin(&l.source_id) && ours.contains(&l.target))
    }) {
        let req = DeleteLinkRequest {
            source_id: l.source_id.clone(),
            name: l.name.clone(),
            wit_namespace: l.wit_namespace.clone(),
            wit_package: l.wit_package.clone(),
        };
        let _ = ctl.delete_link(&req).await;
    }
    AppStatus {
        status: if ours.is_empty() {
            "undeployed"
        } else {
            "reconciling"
        }
        .into(),
        version: None,
        scalers: vec![],
    }
}

async fn scale(
    ctl: &lattice_ctl::Client,
    app: &str,
    host: &str,
    id: &str,
    c: &crate::manifest::Component,
    count: u32,
) {
    let cmd = ScaleComponentCommand {
        component_ref: c.properties.image.clone(),
        component_id: id.into(),
        count,
        host_id: Some(host.into()),
        annotations: [(APP_ANNOTATION.to_string(), app.to_string())].into(),
        config: c.properties.config.iter().map(|c| c.name.clone()).collect(),
        component_limits: None,
        allow_update: true,
        allowed_hosts: vec![],
    };
    tracing::info!(app, host_id = host, component_id = id, count, "scaling");
    if let Err(e) = ctl.scale_component(host, &cmd).await {
        tracing::warn!(error = %e, component_id = id, "scale failed");
    }
}

async fn stop(ctl: &lattice_ctl::Client, host: &str, d: &lattice_proto::ctl::ComponentDescription) {
    let cmd = ScaleComponentCommand {
        component_ref: d.image_ref.clone(),
        component_id: d.id.clone(),
        count: 0,
        host_id: Some(host.into()),
        annotations: d.annotations.clone(),
        config: vec![],
        component_limits: None,
        allow_update: false,
        allowed_hosts: vec![],
    };
    tracing::info!(host_id = host, component_id = %d.id, "stopping");
    if let Err(e) = ctl.scale_component(host, &cmd).await {
        tracing::warn!(error = %e, component_id = %d.id, "stop failed");
    }
}
