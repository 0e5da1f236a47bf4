//! `lattice label put|del`.

use crate::args::{GlobalArgs, LabelCommand};
use crate::output;

pub async fn run(global: &GlobalArgs, cmd: LabelCommand) -> anyhow::Result<()> {
    let ctl = crate::ctl_client(global).await?;
    match cmd {
        LabelCommand::Put {
            host_id,
            key,
            value,
        } => {
            ctl.put_label(&host_id, &key, &value).await?;
            output::done(global, &format!("label {key}={value} set on {host_id}"));
        }
        LabelCommand::Del { host_id, key } => {
            ctl.delete_label(&host_id, &key).await?;
            output::done(global, &format!("label {key} removed from {host_id}"));
        }
    }
    Ok(())
}
