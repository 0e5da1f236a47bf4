//! The reconciler's part for capability providers (`type: capability` with an image that is
//! not built in): starts and stops them with `provider.start` / `provider.stop`, one process
//! per host, as [`crate::plan::place_provider`] says. Links to and from a provider are put
//! like any other (in [`super::apply`]); the hosts hand them to the provider.

use lattice_proto::ctl::{HostInventory, ProviderDescription};
use lattice_proto::provider::StartProviderCommand;

use super::{write_config, Seen, State, APP_ANNOTATION};
use crate::manifest::{Component, Manifest};
use crate::plan::place_provider;
use crate::store::ScalerStatus;

/// The key of a provider's pending command on a host (apart from components' keys, which are
/// the bare id: a provider and a component may share an id).
fn key(host: &str, id: &str) -> (String, String) {
    (host.to_string(), format!("provider {id}"))
}

/// The app that started `p`, from its annotation.
fn started_by(p: &ProviderDescription) -> Option<&str> {
    p.annotations.get(APP_ANNOTATION).map(String::as_str)
}

/// Providers app `app` started on `inv`.
pub(super) fn managed_by<'a>(
    inv: &'a HostInventory,
    app: &'a str,
) -> impl Iterator<Item = &'a ProviderDescription> {
    inv.providers
        .iter()
        .filter(move |p| started_by(p) == Some(app))
}

/// Places provider `c` (id `id`) of app `app` and reports its scaler's status. Sets `busy`
/// when anything was sent.
pub(super) async fn place(
    ctl: &lattice_ctl::Client,
    app: &str,
    c: &Component,
    id: &str,
    seen: &Seen<'_>,
    state: &mut State,
    busy: &mut bool,
) -> ScalerStatus {
    for cfg in &c.properties.config {
        write_config(ctl, state, cfg).await;
    }
    let placement = match Manifest::scaler(c) {
        Some(s) => place_provider(&s, id, seen.views),
        None => Default::default(),
    };
    let image = c.properties.image.as_str();
    for inv in seen.inventories {
        let want = placement.per_host.contains_key(&inv.host_id);
        let have = inv.providers.iter().find(|p| p.id == id);
        let key = key(&inv.host_id, id);
        match have {
            // Another image under this id: stopped, so that a later pass starts the new one.
            // A provider has no in-place update.
            Some(p) if want && p.image_ref.as_deref() != Some(image) => {
                *busy = true;
                if started_by(p) == Some(app) && state.may_send(key, "stop (image)".into()) {
                    stop(ctl, &inv.host_id, id).await;
                }
            }
            Some(_) if want => state.settled(&key),
            None if !want => state.settled(&key),
            // Ours to stop only if this app started it.
            Some(p) if started_by(p) != Some(app) => {}
            Some(_) => {
                *busy = true;
                if state.may_send(key, "stop".into()) {
                    stop(ctl, &inv.host_id, id).await;
                }
            }
            None => {
                *busy = true;
                if state.may_send(key, format!("start {image}")) {
                    let cmd = StartProviderCommand {
                        provider_id: id.to_string(),
                        provider_ref: image.to_string(),
                        host_id: Some(inv.host_id.clone()),
                        config: c.properties.config.iter().map(|c| c.name.clone()).collect(),
                        annotations: [(APP_ANNOTATION.to_string(), app.to_string())].into(),
                    };
                    tracing::info!(app, host_id = %inv.host_id, provider_id = id, "starting provider");
                    if let Err(e) = ctl.start_provider(&inv.host_id, &cmd).await {
                        tracing::warn!(error = %e, provider_id = id, "provider start failed");
                    }
                }
            }
        }
    }
    let status = if placement.unplaced.is_empty() {
        ("ok", String::new())
    } else {
        ("failed", placement.unplaced.join("; "))
    };
    ScalerStatus {
        component: c.name.clone(),
        status: status.0.into(),
        message: status.1,
    }
}

/// Stops provider `id` on `host` if `state` lets the command go now (keyed apart from
/// components).
pub(super) async fn stop_if_due(
    ctl: &lattice_ctl::Client,
    state: &mut State,
    host: &str,
    id: &str,
) {
    if state.may_send(key(host, id), "stop".into()) {
        stop(ctl, host, id).await;
    }
}

async fn stop(ctl: &lattice_ctl::Client, host: &str, id: &str) {
    tracing::info!(host_id = host, provider_id = id, "stopping provider");
    if let Err(e) = ctl.stop_provider(host, id).await {
        tracing::warn!(error = %e, provider_id = id, "provider stop failed");
    }
}
