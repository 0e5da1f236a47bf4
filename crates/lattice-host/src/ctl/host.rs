//! `host.ping`, `host.get.{host}`, `host.stop.{host}` and `host.alive.{host}`.

use std::time::Duration;

use lattice_proto::ctl::StopHostCommand;
use lattice_proto::op::Alive;
use lattice_proto::{decode_request, CtlResponse};

use super::reply::{After, Handled};
use crate::shared::HostShared;
use crate::StopReason;

/// Graceful-stop allowance when `host.stop` names none (wasmCloud's default).
const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The body is ignored: any ping gets this host's description.
pub(super) fn ping(shared: &HostShared) -> Handled {
    Handled::reply(CtlResponse::ok(shared.info()))
}

/// Lattice extension: the cheapest proof of life, asked by callers whose call this host
/// accepted (a dead host's subscriptions are gone, so asking it gets "no responders"). A body
/// naming a call (its reply subject) is answered `running` or `finished`.
pub(super) fn alive(serving: &crate::serving::Serving, body: &[u8]) -> Handled {
    let Ok(call) = std::str::from_utf8(body) else {
        return Handled::error("the body must be a call's reply subject (UTF-8)");
    };
    let state = match call {
        "" => Alive::Alive,
        call if serving.is_running(call) => Alive::Running,
        _ => Alive::Finished,
    };
    Handled::reply(CtlResponse::success_with(state.as_str()))
}

pub(super) fn get(shared: &HostShared) -> Handled {
    Handled::reply(CtlResponse::ok(shared.inventory()))
}

/// Stops only on a well-formed request naming this host, so stray bytes never stop a host.
pub(super) fn stop(me: &crate::identity::Identity, body: &[u8]) -> Handled {
    let cmd: StopHostCommand = match decode_request(body, "stop command {host_id, timeout?}") {
        Ok(cmd) => cmd,
        Err(e) => return Handled::error(e.to_string()),
    };
    if cmd.host_id != me.id {
        return Handled::error(format!(
            "host_id {:?} in the body does not match this host ({})",
            cmd.host_id, me.id
        ));
    }
    let timeout = cmd
        .timeout
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_STOP_TIMEOUT);
    tracing::info!(?timeout, "stop requested over the control interface");
    Handled {
        after: After::Stop(StopReason::Requested { timeout }),
        ..Handled::reply(CtlResponse::success_with("host stopping"))
    }
}
