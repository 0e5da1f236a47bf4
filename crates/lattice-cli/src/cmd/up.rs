//! `lattice up`: a working local lattice in one command.

use crate::args::{GlobalArgs, UpArgs};
use crate::local_nats::{self, LocalNats};

pub async fn run(global: &GlobalArgs, up: UpArgs) -> anyhow::Result<()> {
    if let Some(url) = &global.nats_url {
        eprintln!("joining the NATS at {url}; no local NATS server started");
        return super::host::run_host(global, &up.host, None).await;
    }
    let binary = local_nats::find_binary(up.nats_server_bin.as_deref())?;
    let state_dir = match up.state_dir {
        Some(d) => d,
        None => local_nats::default_state_dir()?,
    };
    let mut nats = LocalNats::start(&binary, &state_dir, up.nats_port)?;
    let lattice_flag = if global.lattice == "default" {
        String::new()
    } else {
        format!(" --lattice {}", global.lattice)
    };
    let url_flag = if up.nats_port == 4222 {
        String::new()
    } else {
        format!(" --nats-url {}", nats.url)
    };
    eprintln!(
        "NATS (JetStream) listening on {url}\n  data: {data}\n  log:  {log}\n\
         Talk to this lattice from another terminal:\n  lattice{url_flag}{lattice_flag} get hosts\n\
         Join more hosts:\n  lattice host --nats-url {url}{lattice_flag}\n\
         Press Ctrl-C to stop the host, then NATS.",
        url = nats.url,
        data = nats.store_dir.display(),
        log = nats.log_file.display(),
    );
    let result = super::host::run_host(global, &up.host, Some(&nats.url)).await;
    // The host has announced host_stopped and closed its connection; now NATS can go.
    nats.stop();
    eprintln!("stopped host and NATS");
    result
}
