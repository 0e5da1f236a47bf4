//! `config.put|get|del.{name}`: named config in JetStream KV, answered by one host of the
//! lattice (queue group).

use lattice_proto::ctl::ConfigMap;
use lattice_proto::event::{ConfigChanged, CONFIG_DELETED, CONFIG_SET};
use lattice_proto::op::Op;
use lattice_proto::subject::validate_config_name;
use lattice_proto::{decode_request, CtlResponse};

use super::reply::Handled;
use crate::events::EventPublisher;
use crate::state::LatticeState;

pub(super) async fn handle(
    state: &LatticeState,
    events: &EventPublisher,
    op: Op,
    name: &str,
    body: &[u8],
) -> Handled {
    if let Err(e) = validate_config_name(name) {
        return Handled::error(e.to_string());
    }
    match op {
        Op::ConfigPut => put(state, events, name, body).await,
        Op::ConfigGet => get(state, name).await,
        Op::ConfigDel => del(state, events, name).await,
        _ => Handled::error("unsupported subject"),
    }
}

async fn put(state: &LatticeState, events: &EventPublisher, name: &str, body: &[u8]) -> Handled {
    let map: ConfigMap = match decode_request(body, "object of string keys to string values") {
        Ok(m) => m,
        Err(e) => return Handled::error(e.to_string()),
    };
    if let Err(e) = state.config.put(name, &map).await {
        return Handled::error(e.to_string());
    }
    events
        .publish(
            CONFIG_SET,
            ConfigChanged {
                config_name: name.into(),
            },
        )
        .await;
    Handled::reply(CtlResponse::success())
}

async fn get(state: &LatticeState, name: &str) -> Handled {
    match state.config.get(name).await {
        Ok(Some(map)) => Handled::reply(CtlResponse::ok(map)),
        // wasmCloud answers a missing config with success and this message.
        Ok(None) => Handled::reply(CtlResponse::success_with("Configuration not found")),
        Err(e) => Handled::error(e.to_string()),
    }
}

async fn del(state: &LatticeState, events: &EventPublisher, name: &str) -> Handled {
    if let Err(e) = state.config.delete(name).await {
        return Handled::error(e.to_string());
    }
    events
        .publish(
            CONFIG_DELETED,
            ConfigChanged {
                config_name: name.into(),
            },
        )
        .await;
    Handled::reply(CtlResponse::success())
}
