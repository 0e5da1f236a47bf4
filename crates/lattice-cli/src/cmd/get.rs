//! `lattice get hosts [--watch]`, `lattice get inventory [HOST_ID]`, `lattice get links`.

use lattice_ctl::WatchEvent;

use crate::args::{GetCommand, GlobalArgs, Output};
use crate::output;

pub async fn run(global: &GlobalArgs, cmd: GetCommand) -> anyhow::Result<()> {
    let ctl = crate::ctl_client(global).await?;
    match cmd {
        GetCommand::Hosts { watch: false } => {
            let hosts = ctl.ping_hosts().await?;
            match global.output {
                Output::Json => output::json(&hosts)?,
                Output::Table => output::table(
                    &["HOST ID", "NAME", "UPTIME", "VERSION", "LABELS"],
                    hosts.iter().map(|h| {
                        vec![
                            h.id.clone(),
                            h.friendly_name.clone(),
                            h.uptime_human.clone(),
                            h.version.clone(),
                            output::user_labels(&h.labels),
                        ]
                    }),
                ),
            }
        }
        GetCommand::Hosts { watch: true } => watch(global, ctl).await?,
        GetCommand::Links => super::link::print_links(global, &ctl).await?,
        GetCommand::Inventory { host_id } => {
            let ids = match host_id {
                Some(id) => vec![id],
                None => ctl.ping_hosts().await?.into_iter().map(|h| h.id).collect(),
            };
            let mut inventories = Vec::new();
            for id in ids {
                inventories.push(ctl.host_inventory(&id).await?);
            }
            match global.output {
                Output::Json => output::json(&inventories)?,
                Output::Table => {
                    for inv in &inventories {
                        println!(
                            "{} ({}), up {}, labels: {}",
                            inv.host_id,
                            inv.friendly_name,
                            inv.uptime_human,
                            output::user_labels(&inv.labels)
                        );
                        output::table(
                            &["COMPONENT ID", "IMAGE", "MAX INSTANCES"],
                            inv.components.iter().map(|c| {
                                vec![
                                    c.id.clone(),
                                    c.image_ref.clone(),
                                    c.max_instances.to_string(),
                                ]
                            }),
                        );
                        if !inv.providers.is_empty() {
                            output::table(
                                &["PROVIDER ID", "IMAGE"],
                                inv.providers.iter().map(|p| {
                                    vec![p.id.clone(), p.image_ref.clone().unwrap_or_default()]
                                }),
                            );
                        }
                        println!();
                    }
                }
            }
        }
    }
    Ok(())
}

/// Prints one line per change until interrupted. A host is reported dead after missing
/// three heartbeats (see `lattice_ctl::watch`).
async fn watch(global: &GlobalArgs, ctl: lattice_ctl::Client) -> anyhow::Result<()> {
    let mut watcher = ctl.watch_hosts().await?;
    while let Some(ev) = watcher.next().await {
        let (what, host, extra) = match &ev {
            WatchEvent::Joined(h) => ("joined", h, String::new()),
            WatchEvent::Stopped(h) => ("stopped", h, String::new()),
            WatchEvent::Dead { host, silent_for } => (
                "dead",
                host,
                format!("silent for {:.1}s", silent_for.as_secs_f64()),
            ),
        };
        match global.output {
            Output::Json => println!(
                "{}",
                serde_json::json!({"event": what, "host_id": host.id, "friendly_name": host.friendly_name, "detail": extra})
            ),
            Output::Table => println!("{what:<8} {} {} {extra}", host.id, host.friendly_name),
        }
    }
    Ok(())
}
