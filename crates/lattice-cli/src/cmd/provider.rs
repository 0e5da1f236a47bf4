//! `lattice start provider|component` and `lattice stop provider|component`, as wash users
//! type them: start waits for the outcome event, stop acts on every host running the id
//! (or on --host).

use anyhow::{bail, Context};
use futures::StreamExt;
use lattice_proto::provider::{
    ProviderAuctionRequest, StartProviderCommand, PROVIDER_STARTED, PROVIDER_START_FAILED,
};

use crate::args::{GlobalArgs, Output, StartCommand, StartProviderArgs, StopCommand};
use crate::output;

pub async fn start(global: &GlobalArgs, cmd: StartCommand) -> anyhow::Result<()> {
    match cmd {
        StartCommand::Component(args) => {
            super::component::scale(global, crate::args::ScaleCommand::Component(args)).await
        }
        StartCommand::Provider(args) => start_provider(global, args).await,
    }
}

async fn start_provider(global: &GlobalArgs, args: StartProviderArgs) -> anyhow::Result<()> {
    let ctl = crate::ctl_client(global).await?;
    let host = match &args.placement.host {
        Some(h) => h.clone(),
        None => {
            let bids = ctl
                .auction_provider(&ProviderAuctionRequest {
                    provider_ref: args.provider_ref.clone(),
                    provider_id: args.provider_id.clone(),
                    constraints: args.placement.constraints.iter().cloned().collect(),
                })
                .await?;
            match bids.first() {
                Some(bid) => bid.host_id.clone(),
                None => bail!(
                    "no host can take provider {}: none carries the constraints {:?} without already running it (use --host to pick one)",
                    args.provider_id,
                    args.placement.constraints
                ),
            }
        }
    };
    let mut events = ctl.events().await?;
    ctl.start_provider(
        &host,
        &StartProviderCommand {
            provider_id: args.provider_id.clone(),
            provider_ref: args.provider_ref.clone(),
            host_id: Some(host.clone()),
            config: args.placement.configs.clone(),
            annotations: args.placement.annotations.iter().cloned().collect(),
        },
    )
    .await?;
    let id = &args.provider_id;
    if args.wait.no_wait {
        output::done(
            global,
            &format!("{host} acknowledged; provider {id} is starting"),
        );
        return Ok(());
    }
    let (kind, data) = tokio::time::timeout(args.wait.wait_timeout, async {
        while let Some(ev) = events.next().await {
            let kind = ev.event_type().unwrap_or_default().to_string();
            if ev.source == host
                && ev.data.get("provider_id").and_then(|v| v.as_str()) == Some(id)
                && (kind == PROVIDER_STARTED || kind == PROVIDER_START_FAILED)
            {
                return Some((kind, ev.data));
            }
        }
        None
    })
    .await
    .with_context(|| format!("no outcome from {host} within {:?}", args.wait.wait_timeout))?
    .context("event stream ended")?;
    if global.output == Output::Json {
        output::json(&serde_json::json!({"event": kind, "data": data}))?;
    }
    if kind == PROVIDER_START_FAILED {
        let reason = data
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("unknown");
        bail!("provider {id} failed to start on {host}: {reason}");
    }
    if global.output == Output::Table {
        println!("provider {id} started on {host}");
    }
    Ok(())
}

pub async fn stop(global: &GlobalArgs, cmd: StopCommand) -> anyhow::Result<()> {
    let ctl = crate::ctl_client(global).await?;
    let (id, host, provider) = match cmd {
        StopCommand::Component { component_id, host } => (component_id, host, false),
        StopCommand::Provider { provider_id, host } => (provider_id, host, true),
    };
    let mut stopped = Vec::new();
    for h in ctl.ping_hosts().await? {
        if host.as_ref().is_some_and(|only| *only != h.id) {
            continue;
        }
        let inv = ctl.host_inventory(&h.id).await?;
        if provider {
            if inv.providers.iter().any(|p| p.id == id) {
                ctl.stop_provider(&h.id, &id).await?;
                stopped.push(h.id);
            }
        } else if let Some(c) = inv.components.iter().find(|c| c.id == id) {
            let cmd = lattice_proto::ctl::ScaleComponentCommand {
                component_ref: c.image_ref.clone(),
                component_id: id.clone(),
                count: 0,
                host_id: Some(h.id.clone()),
                annotations: Default::default(),
                config: Vec::new(),
                component_limits: None,
                allow_update: false,
                allowed_hosts: Vec::new(),
            };
            ctl.scale_component(&h.id, &cmd).await?;
            stopped.push(h.id);
        }
    }
    let what = if provider { "provider" } else { "component" };
    if stopped.is_empty() {
        bail!(
            "{what} {id} is not running on any host{}",
            host.map(|h| format!(" named {h}")).unwrap_or_default()
        );
    }
    output::done(
        global,
        &format!("stopping {what} {id} on {}", stopped.join(", ")),
    );
    Ok(())
}
