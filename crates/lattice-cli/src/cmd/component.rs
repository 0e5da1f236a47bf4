//! `lattice scale component`, `lattice update component`, `lattice push`, `lattice registry put`.

use anyhow::{bail, Context};
use futures::StreamExt;
use lattice_proto::ctl::{ComponentAuctionRequest, ScaleComponentCommand, UpdateComponentCommand};
use lattice_proto::event::{CloudEvent, COMPONENT_SCALED, COMPONENT_SCALE_FAILED};

use crate::args::{
    GlobalArgs, Output, PushArgs, RegistryCommand, ScaleCommand, UpdateCommand, WaitArgs,
};
use crate::output;

pub async fn scale(global: &GlobalArgs, cmd: ScaleCommand) -> anyhow::Result<()> {
    let ScaleCommand::Component(args) = cmd;
    let ctl = crate::ctl_client(global).await?;
    let host = match &args.placement.host {
        Some(h) => h.clone(),
        // Rescaling (or stopping) goes to the host already running the id.
        None if let Some(h) = host_running(&ctl, &args.component_id).await? => h,
        None if args.count == 0 => bail!("{} is not running on any host", args.component_id),
        None => {
            let bids = ctl
                .auction_component(&ComponentAuctionRequest {
                    component_ref: args.component_ref.clone(),
                    component_id: args.component_id.clone(),
                    constraints: args.placement.constraints.iter().cloned().collect(),
                })
                .await?;
            match bids.first() {
                Some(bid) => bid.host_id.clone(),
                None => bail!(
                    "no host can take {}: none carries the constraints {:?} without already running it (use --host to pick one)",
                    args.component_id,
                    args.placement.constraints
                ),
            }
        }
    };
    let request = ScaleComponentCommand {
        component_ref: args.component_ref.clone(),
        component_id: args.component_id.clone(),
        count: args.count,
        host_id: Some(host.clone()),
        annotations: args.placement.annotations.iter().cloned().collect(),
        config: args.placement.configs.clone(),
        component_limits: (!args.limits.is_empty()).then(|| args.limits.iter().cloned().collect()),
        allow_update: args.allow_update,
        allowed_hosts: args.allowed_hosts.clone(),
    };
    let events = ctl.events().await?;
    ctl.scale_component(&host, &request).await?;
    wait_for_outcome(global, events, &args.component_id, &host, &args.wait).await
}

/// The first host whose inventory holds component `id`.
async fn host_running(ctl: &lattice_ctl::Client, id: &str) -> anyhow::Result<Option<String>> {
    for host in ctl.ping_hosts().await? {
        let inv = ctl.host_inventory(&host.id).await?;
        if inv.components.iter().any(|c| c.id == id) {
            return Ok(Some(host.id));
        }
    }
    Ok(None)
}

pub async fn update(global: &GlobalArgs, cmd: UpdateCommand) -> anyhow::Result<()> {
    let UpdateCommand::Component {
        component_id,
        new_component_ref,
        host,
        wait,
    } = cmd;
    let ctl = crate::ctl_client(global).await?;
    let events = ctl.events().await?;
    ctl.update_component(
        &host,
        &UpdateComponentCommand {
            component_id: component_id.clone(),
            new_component_ref,
            host_id: Some(host.clone()),
            annotations: None,
        },
    )
    .await?;
    wait_for_outcome(global, events, &component_id, &host, &wait).await
}

/// Waits for the host's `component_scaled` / `component_scale_failed` about `id`.
async fn wait_for_outcome(
    global: &GlobalArgs,
    mut events: impl futures::Stream<Item = CloudEvent> + Unpin,
    id: &str,
    host: &str,
    wait: &WaitArgs,
) -> anyhow::Result<()> {
    if wait.no_wait {
        output::done(
            global,
            &format!("{host} acknowledged; {id} is being scaled"),
        );
        return Ok(());
    }
    let outcome = tokio::time::timeout(wait.wait_timeout, async {
        while let Some(ev) = events.next().await {
            let kind = ev.event_type().unwrap_or_default().to_string();
            if ev.source == host
                && ev.data.get("component_id").and_then(|v| v.as_str()) == Some(id)
                && (kind == COMPONENT_SCALED || kind == COMPONENT_SCALE_FAILED)
            {
                return Some((kind, ev.data));
            }
        }
        None
    })
    .await
    .with_context(|| {
        format!(
            "no outcome from {host} within {:?} (it may still be fetching; see `lattice get inventory {host}`)",
            wait.wait_timeout
        )
    })?
    .context("event stream ended")?;
    let (kind, data) = outcome;
    if global.output == Output::Json {
        output::json(&serde_json::json!({"event": kind, "data": data}))?;
    }
    if kind == COMPONENT_SCALE_FAILED {
        let reason = data
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("unknown");
        bail!("{id} failed on {host}: {reason}");
    }
    if global.output == Output::Table {
        let n = data
            .get("max_instances")
            .and_then(|n| n.as_u64())
            .unwrap_or(0);
        let image = data.get("image_ref").and_then(|n| n.as_str()).unwrap_or("");
        if n == 0 {
            println!("{id} stopped on {host}");
        } else {
            println!("{id} ({image}) runs on {host} with up to {n} instances");
        }
    }
    Ok(())
}

pub async fn push(global: &GlobalArgs, args: PushArgs) -> anyhow::Result<()> {
    let bytes = tokio::fs::read(&args.file)
        .await
        .with_context(|| format!("reading {}", args.file.display()))?;
    let size = bytes.len();
    // A push sends the credentials to the registry its reference names, and nowhere else.
    let registry = args.reference.split('/').next().unwrap_or_default();
    let client = lattice_oci::OciClient::new(super::oci::oci_config(&args.oci, Some(registry))?);
    let started = std::time::Instant::now();
    let url = client
        .push(&args.reference, bytes)
        .await
        .map_err(anyhow::Error::msg)?;
    output::done(
        global,
        &format!(
            "pushed {} ({size} bytes) to {} in {:.1?}: {url}",
            args.file.display(),
            args.reference,
            started.elapsed()
        ),
    );
    Ok(())
}

pub async fn registry(global: &GlobalArgs, cmd: RegistryCommand) -> anyhow::Result<()> {
    let RegistryCommand::Put { registry, oci } = cmd;
    let ctl = crate::ctl_client(global).await?;
    let creds = serde_json::json!({
        "username": oci.oci_user,
        "password": oci.oci_password,
        "token": oci.oci_token,
        "registryType": "oci",
    });
    let hosts = ctl
        .put_registry_credentials(&[(registry.clone(), creds)].into())
        .await?;
    output::done(
        global,
        &format!("credentials for {registry} given to {hosts} hosts"),
    );
    Ok(())
}
