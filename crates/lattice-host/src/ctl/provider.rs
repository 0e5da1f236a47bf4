//! `provider.start.{host}`, `provider.stop.{host}` and `provider.auction`.
//!
//! Start and stop acknowledge at once and do the work in the background (a provider may take
//! a while to answer its first health check, or to shut down); the outcome is a
//! `provider_started`, `provider_start_failed` or `provider_stopped` event.

use std::sync::Arc;

use lattice_proto::provider::{
    ProviderAuctionAck, ProviderAuctionRequest, StartProviderCommand, StopProviderCommand,
};
use lattice_proto::subject::validate_token;
use lattice_proto::{decode_request, CtlResponse};

use super::reply::Handled;
use crate::identity::Identity;
use crate::providers::Providers;

/// Whether `host_id`, if the request names one, is this host's.
fn other_host(me: &Identity, host_id: Option<&str>) -> Option<Handled> {
    let h = host_id.filter(|h| !h.is_empty() && *h != me.id)?;
    Some(Handled::error(format!(
        "host_id {h} does not match this host ({})",
        me.id
    )))
}

pub(super) fn start(me: &Identity, providers: &Arc<Providers>, body: &[u8]) -> Handled {
    let cmd: StartProviderCommand = match decode_request(
        body,
        "start provider command {provider_id, provider_ref, host_id?, config?, annotations?}",
    ) {
        Ok(c) => c,
        Err(e) => return Handled::error(e.to_string()),
    };
    if let Err(e) = validate_token("provider id", &cmd.provider_id) {
        return Handled::error(e.to_string());
    }
    if let Some(refused) = other_host(me, cmd.host_id.as_deref()) {
        return refused;
    }
    if providers.starting(&cmd.provider_id) {
        return Handled::reply(CtlResponse::success_with(format!(
            "provider {} is already starting on {}",
            cmd.provider_id, me.id
        )));
    }
    if providers.runs(&cmd.provider_id) {
        return Handled::error(format!(
            "provider {} is already running on this host",
            cmd.provider_id
        ));
    }
    let ack = format!("starting provider {} on {}", cmd.provider_id, me.id);
    let providers = providers.clone();
    tokio::spawn(async move { providers.start(cmd).await });
    Handled::reply(CtlResponse::success_with(ack))
}

pub(super) fn stop(me: &Identity, providers: &Arc<Providers>, body: &[u8]) -> Handled {
    let cmd: StopProviderCommand =
        match decode_request(body, "stop provider command {provider_id, host_id?}") {
            Ok(c) => c,
            Err(e) => return Handled::error(e.to_string()),
        };
    if let Some(refused) = other_host(me, cmd.host_id.as_deref()) {
        return refused;
    }
    if !providers.runs(&cmd.provider_id) {
        return Handled::error(format!(
            "provider {} is not running on this host",
            cmd.provider_id
        ));
    }
    let providers = providers.clone();
    tokio::spawn(async move {
        if let Err(e) = providers.stop(&cmd.provider_id).await {
            tracing::debug!(error = %e, "provider stop");
        }
    });
    Handled::reply(CtlResponse::success_with("stopping provider"))
}

/// Bids only when this host carries every constraint label and does not run the id yet.
pub(super) fn auction(me: &Identity, providers: &Providers, body: &[u8]) -> Handled {
    let Ok(req) = decode_request::<ProviderAuctionRequest>(body, "provider auction request") else {
        return Handled::silent();
    };
    let labels = me.labels();
    let fits = req
        .constraints
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v));
    if !fits || providers.runs(&req.provider_id) {
        return Handled::silent();
    }
    Handled::reply(CtlResponse::ok(ProviderAuctionAck {
        provider_ref: req.provider_ref,
        provider_id: req.provider_id,
        host_id: me.id.clone(),
        constraints: req.constraints,
    }))
}
