//! `link.put`, `link.del` and `link.get`: links in KV, answered by one host (queue group).
//!
//! A `link.put` with the same source, namespace, package, name and interfaces as an existing
//! link replaces it (relinking to a new target). One that overlaps an existing link's
//! interfaces only partly, towards a different target, is a conflict and is refused.

use lattice_proto::ctl::{DeleteLinkRequest, Link};
use lattice_proto::event::{LINKDEF_DELETED, LINKDEF_SET, LINKDEF_SET_FAILED};
use lattice_proto::op::Op;
use lattice_proto::subject::validate_token;
use lattice_proto::{decode_request, CtlResponse};
use serde_json::json;

use super::reply::Handled;
use crate::events::EventPublisher;
use crate::state::LatticeState;

pub(super) async fn handle(
    state: &LatticeState,
    events: &EventPublisher,
    op: Op,
    body: &[u8],
) -> Handled {
    match op {
        Op::LinkPut => put(state, events, body).await,
        Op::LinkDel => del(state, events, body).await,
        Op::LinkGet => match state.links.all().await {
            Ok(links) => Handled::reply(CtlResponse::ok(links)),
            Err(e) => Handled::error(e.to_string()),
        },
        _ => Handled::error("unsupported subject"),
    }
}

fn validate(link: &Link) -> Result<(), String> {
    validate_token("source_id", &link.source_id).map_err(|e| e.to_string())?;
    validate_token("target", &link.target).map_err(|e| e.to_string())?;
    validate_token("link name", &link.name).map_err(|e| e.to_string())?;
    for (what, v) in [
        ("wit_namespace", &link.wit_namespace),
        ("wit_package", &link.wit_package),
    ] {
        validate_token(what, v).map_err(|e| e.to_string())?;
    }
    if link.interfaces.is_empty() {
        return Err("a link needs at least one interface".into());
    }
    for i in &link.interfaces {
        validate_token("interface", i).map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn put(state: &LatticeState, events: &EventPublisher, body: &[u8]) -> Handled {
    let link: Link = match decode_request(
        body,
        "link {source_id, target, wit_namespace, wit_package, interfaces, name?, source_config?, target_config?}",
    ) {
        Ok(l) => l,
        Err(e) => return Handled::error(e.to_string()),
    };
    let result = async {
        validate(&link)?;
        for name in link.source_config.iter().chain(&link.target_config) {
            match state.config.get(name).await {
                Ok(Some(_)) => {}
                Ok(None) => return Err(format!("named config {name:?} does not exist")),
                Err(e) => return Err(e.to_string()),
            }
        }
        state
            .links
            .modify(&link.source_id, |links| {
                let same_key = |l: &Link| {
                    l.wit_namespace == link.wit_namespace
                        && l.wit_package == link.wit_package
                        && l.name == link.name
                };
                let mut wanted = link.interfaces.clone();
                wanted.sort();
                if let Some(c) = links.iter().find(|l| {
                    let mut have = l.interfaces.clone();
                    have.sort();
                    same_key(l)
                        && l.target != link.target
                        && have != wanted
                        && l.interfaces.iter().any(|i| wanted.contains(i))
                }) {
                    return Err(format!(
                        "conflicts with the link from {} to {} on {}:{} interfaces {:?} (link name {:?}); delete it first or use another link name",
                        c.source_id, c.target, c.wit_namespace, c.wit_package, c.interfaces, c.name
                    ));
                }
                links.retain(|l| {
                    let mut have = l.interfaces.clone();
                    have.sort();
                    !(same_key(l) && (l.target == link.target || have == wanted))
                });
                links.push(link.clone());
                Ok(())
            })
            .await
    }
    .await;
    let mut event = serde_json::to_value(&link).unwrap_or_default();
    match result {
        Ok(()) => {
            events.publish(LINKDEF_SET, event).await;
            Handled::reply(CtlResponse::success())
        }
        Err(e) => {
            event["error"] = json!(e);
            events.publish(LINKDEF_SET_FAILED, event).await;
            Handled::error(e)
        }
    }
}

async fn del(state: &LatticeState, events: &EventPublisher, body: &[u8]) -> Handled {
    let req: DeleteLinkRequest =
        match decode_request(body, "{source_id, wit_namespace, wit_package, name?}") {
            Ok(r) => r,
            Err(e) => return Handled::error(e.to_string()),
        };
    if let Err(e) = validate_token("source_id", &req.source_id) {
        return Handled::error(e.to_string());
    }
    let removed = std::sync::atomic::AtomicBool::new(false);
    let result = state
        .links
        .modify(&req.source_id, |links| {
            let before = links.len();
            links.retain(|l| {
                !(l.wit_namespace == req.wit_namespace
                    && l.wit_package == req.wit_package
                    && l.name == req.name)
            });
            removed.store(links.len() != before, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        })
        .await;
    match result {
        Err(e) => Handled::error(e),
        Ok(()) if !removed.into_inner() => {
            Handled::reply(CtlResponse::success_with("no such link; nothing deleted"))
        }
        Ok(()) => {
            events
                .publish(
                    LINKDEF_DELETED,
                    json!({
                        "source_id": req.source_id,
                        "name": req.name,
                        "wit_namespace": req.wit_namespace,
                        "wit_package": req.wit_package,
                    }),
                )
                .await;
            Handled::reply(CtlResponse::success())
        }
    }
}
