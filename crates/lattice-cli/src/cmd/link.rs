//! `lattice link put|get|del`.

use lattice_proto::ctl::{DeleteLinkRequest, Link};

use crate::args::{GlobalArgs, LinkCommand, Output};
use crate::output;

pub async fn run(global: &GlobalArgs, cmd: LinkCommand) -> anyhow::Result<()> {
    let ctl = crate::ctl_client(global).await?;
    match cmd {
        LinkCommand::Put {
            source_id,
            target,
            wit_namespace,
            wit_package,
            interfaces,
            name,
            source_config,
            target_config,
            idempotent,
        } => {
            let link = Link {
                source_id,
                target,
                name,
                wit_namespace,
                wit_package,
                interfaces,
                source_config,
                target_config,
                idempotent,
            };
            ctl.put_link(&link).await?;
            output::done(
                global,
                &format!(
                    "{} -> {} for {}:{}/{{{}}} (link {})",
                    link.source_id,
                    link.target,
                    link.wit_namespace,
                    link.wit_package,
                    link.interfaces.join(","),
                    link.name
                ),
            );
        }
        LinkCommand::Get => print_links(global, &ctl).await?,
        LinkCommand::Del {
            source_id,
            wit_namespace,
            wit_package,
            name,
        } => {
            ctl.delete_link(&DeleteLinkRequest {
                source_id: source_id.clone(),
                name,
                wit_namespace: wit_namespace.clone(),
                wit_package: wit_package.clone(),
            })
            .await?;
            output::done(
                global,
                &format!("link of {source_id} to {wit_namespace}:{wit_package} deleted"),
            );
        }
    }
    Ok(())
}

/// Prints every link of the lattice (`lattice link get`, `lattice get links`).
pub async fn print_links(global: &GlobalArgs, ctl: &lattice_ctl::Client) -> anyhow::Result<()> {
    let links = ctl.get_links().await?;
    match global.output {
        Output::Json => output::json(&links)?,
        Output::Table => output::table(
            &["SOURCE", "TARGET", "INTERFACES", "NAME"],
            links.iter().map(|l| {
                vec![
                    l.source_id.clone(),
                    l.target.clone(),
                    format!(
                        "{}:{}/{{{}}}",
                        l.wit_namespace,
                        l.wit_package,
                        l.interfaces.join(",")
                    ),
                    l.name.clone(),
                ]
            }),
        ),
    }
    Ok(())
}
