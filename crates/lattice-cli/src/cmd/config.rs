//! `lattice config put|get|del`.

use crate::args::{ConfigCommand, GlobalArgs, Output};
use crate::output;

pub async fn run(global: &GlobalArgs, cmd: ConfigCommand) -> anyhow::Result<()> {
    let ctl = crate::ctl_client(global).await?;
    match cmd {
        ConfigCommand::Put { name, values } => {
            ctl.put_config(&name, &values.into_iter().collect()).await?;
            output::done(global, &format!("config {name} stored"));
        }
        ConfigCommand::Get { name } => {
            let Some(map) = ctl.get_config(&name).await? else {
                anyhow::bail!("config {name:?} not found");
            };
            match global.output {
                Output::Json => output::json(&map)?,
                Output::Table => output::table(
                    &["KEY", "VALUE"],
                    map.iter().map(|(k, v)| vec![k.clone(), v.clone()]),
                ),
            }
        }
        ConfigCommand::Del { name } => {
            ctl.delete_config(&name).await?;
            output::done(global, &format!("config {name} deleted"));
        }
    }
    Ok(())
}
