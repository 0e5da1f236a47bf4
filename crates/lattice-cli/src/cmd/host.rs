//! `lattice host` (run a host) and `lattice host stop`.
//!
//! Running a host lives in `run_host` and needs the `host` cargo feature (on by default):
//! without it the binary is a control client only and links no WebAssembly runtime.

use crate::args::{GlobalArgs, HostAction, HostCommand};
use crate::output;

#[cfg(feature = "host")]
pub use super::run_host::run_host;

/// Without the `host` feature: says how to get a binary that runs hosts.
#[cfg(not(feature = "host"))]
pub async fn run_host(
    _global: &GlobalArgs,
    _args: &crate::args::HostArgs,
    _url: Option<&str>,
) -> anyhow::Result<()> {
    anyhow::bail!(
        "this lattice binary is a control client only (built without the `host` feature); \
         install one that runs hosts with `cargo install lattice-cli` (default features)"
    )
}

pub async fn run(global: &GlobalArgs, cmd: HostCommand) -> anyhow::Result<()> {
    match cmd.action {
        None => run_host(global, &cmd.host, None).await,
        Some(HostAction::Stop {
            host_id,
            graceful_timeout,
        }) => {
            let ctl = crate::ctl_client(global).await?;
            ctl.stop_host(&host_id, graceful_timeout).await?;
            output::done(global, &format!("host {host_id} is stopping"));
            Ok(())
        }
    }
}
