//! wadm 0.21.1 as its `cli` feature defines it: the published `WadmConfig` parsed from the command
//! line and environment, then `start_wadm` until a task ends or Ctrl-C.
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let config = wadm::config::WadmConfig::parse();
    let mut tasks = wadm::start_wadm(config).await?;
    tokio::select! {
        done = tasks.join_next() => match done {
            Some(Ok(Ok(()))) | None => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(e)) => Err(e.into()),
        },
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
