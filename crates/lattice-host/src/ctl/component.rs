//! `component.scale.{host}`, `component.update.{host}` and `component.auction`.
//!
//! Scale and update acknowledge at once and do the work in the background (fetching and
//! compiling can take a while); the outcome is a `component_scaled` or
//! `component_scale_failed` event.

use std::sync::Arc;

use lattice_proto::ctl::{
    ComponentAuctionAck, ComponentAuctionRequest, ScaleComponentCommand, UpdateComponentCommand,
};
use lattice_proto::event::{ComponentScaled, COMPONENT_SCALED, COMPONENT_SCALE_FAILED};
use lattice_proto::subject::validate_token;
use lattice_proto::{decode_request, CtlResponse};

use super::reply::Handled;
use crate::shared::HostShared;

pub(super) fn scale(shared: &Arc<HostShared>, body: &[u8]) -> Handled {
    let cmd: ScaleComponentCommand = match decode_request(
        body,
        "scale command {component_ref, component_id, count, annotations?, config?, component_limits?}",
    ) {
        Ok(c) => c,
        Err(e) => return Handled::error(e.to_string()),
    };
    if let Err(e) = validate_token("component id", &cmd.component_id) {
        return Handled::error(e.to_string());
    }
    if cmd.component_ref.trim().is_empty() {
        return Handled::error("component_ref must not be empty");
    }
    if let Some(h) = cmd
        .host_id
        .as_deref()
        .filter(|h| !h.is_empty() && *h != shared.me.id)
    {
        return Handled::error(format!(
            "host_id {h} does not match this host ({})",
            shared.me.id
        ));
    }
    let ack = format!(
        "scaling {} to {} on {}",
        cmd.component_id, cmd.count, shared.me.id
    );
    let shared = shared.clone();
    // The scale work is a span of its own, a child of the request's (when tracing).
    let parent = lattice_runtime::CURRENT_TRACE
        .try_with(|t| *t)
        .ok()
        .flatten();
    tokio::spawn(async move {
        let (span, _) = crate::traces::start(
            shared.server.tracing.as_deref(),
            lattice_telemetry::Kind::Internal,
            parent,
            || format!("scale {}", cmd.component_id),
            || {
                vec![
                    lattice_telemetry::KeyValue::new("lattice.component", cmd.component_id.clone()),
                    lattice_telemetry::KeyValue::new("lattice.image", cmd.component_ref.clone()),
                    lattice_telemetry::KeyValue::new("lattice.count", i64::from(cmd.count)),
                ]
            },
        );
        let mut result = shared.components.scale(&cmd, &shared.state.config).await;
        if result.is_ok() {
            if cmd.count == 0 {
                shared.server.serving.stop(&cmd.component_id);
            } else {
                result = crate::serve::ensure(&shared.server, &cmd.component_id).await;
            }
        }
        if let Some(span) = span {
            span.end(
                result
                    .as_ref()
                    .err()
                    .map(|e| ("scale_failed", e.to_string())),
            );
        }
        report(
            &shared,
            &cmd.component_id,
            &cmd.component_ref,
            cmd.count,
            cmd.annotations.clone(),
            result,
        )
        .await;
    });
    Handled::reply(CtlResponse::success_with(ack))
}

pub(super) fn update(shared: &Arc<HostShared>, body: &[u8]) -> Handled {
    let cmd: UpdateComponentCommand = match decode_request(
        body,
        "update command {component_id, new_component_ref, annotations?}",
    ) {
        Ok(c) => c,
        Err(e) => return Handled::error(e.to_string()),
    };
    let Some(current) = shared.components.get(&cmd.component_id) else {
        return Handled::error(format!(
            "component {} is not running on this host",
            cmd.component_id
        ));
    };
    if current.image_ref == cmd.new_component_ref {
        return Handled::reply(CtlResponse::success_with(
            "component already runs this reference",
        ));
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        let id = &cmd.component_id;
        let result = shared
            .components
            .update(id, &cmd.new_component_ref, cmd.annotations.clone())
            .await;
        let (count, annotations) = match &result {
            Ok(r) => (r.pool.max_instances(), r.annotations.clone()),
            Err(_) => (current.pool.max_instances(), current.annotations.clone()),
        };
        report(
            &shared,
            id,
            &cmd.new_component_ref,
            count,
            annotations,
            result.map(drop),
        )
        .await;
    });
    Handled::reply(CtlResponse::success_with("updating component"))
}

async fn report(
    shared: &HostShared,
    id: &str,
    image_ref: &str,
    count: u32,
    annotations: std::collections::BTreeMap<String, String>,
    result: Result<(), String>,
) {
    let mut payload = ComponentScaled {
        component_id: id.to_string(),
        image_ref: image_ref.to_string(),
        host_id: shared.me.id.clone(),
        max_instances: count,
        annotations,
        error: None,
    };
    match result {
        Ok(()) => shared.events.publish(COMPONENT_SCALED, payload).await,
        Err(e) => {
            tracing::warn!(component_id = id, image_ref, error = %e, "component scale failed");
            payload.error = Some(e);
            shared.events.publish(COMPONENT_SCALE_FAILED, payload).await
        }
    };
}

/// The parameter and result types of one export (a Lattice extension used by `lattice call`).
pub(super) fn signature(shared: &Arc<HostShared>, body: &[u8]) -> Handled {
    let req: lattice_proto::ctl::SignatureRequest =
        match decode_request(body, "{component_id, instance, function}") {
            Ok(r) => r,
            Err(e) => return Handled::error(e.to_string()),
        };
    let Some(running) = shared.components.get(&req.component_id) else {
        return Handled::error(format!(
            "component {} is not running on this host",
            req.component_id
        ));
    };
    let interface = (!req.instance.is_empty()).then_some(req.instance.as_str());
    let export = match running.pool.export(interface, &req.function) {
        Ok(e) => e,
        Err(e) => return Handled::error(e.to_string()),
    };
    let describe = |types: &[lattice_runtime::Type]| {
        types
            .iter()
            .map(lattice_wrpc::types::TypeDesc::of)
            .collect::<Result<Vec<_>, _>>()
    };
    match (describe(&export.params), describe(&export.results)) {
        (Ok(params), Ok(results)) => {
            Handled::reply(CtlResponse::ok(lattice_wrpc::types::Signature {
                params,
                results,
            }))
        }
        (Err(e), _) | (_, Err(e)) => Handled::error(e.to_string()),
    }
}

/// Bids only when this host carries every constraint label and does not run the id yet.
pub(super) fn auction(shared: &Arc<HostShared>, body: &[u8]) -> Handled {
    let Ok(req) = decode_request::<ComponentAuctionRequest>(body, "auction request") else {
        // Other hosts will bid; a malformed auction is simply not answered.
        return Handled::silent();
    };
    let labels = shared.me.labels();
    let fits = req
        .constraints
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v));
    if !fits || shared.components.get(&req.component_id).is_some() {
        return Handled::silent();
    }
    Handled::reply(CtlResponse::ok(ComponentAuctionAck {
        component_ref: req.component_ref,
        component_id: req.component_id,
        host_id: shared.me.id.clone(),
        constraints: req.constraints,
    }))
}
