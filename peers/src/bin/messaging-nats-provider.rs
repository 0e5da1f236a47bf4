//! The wasmCloud v1 `messaging-nats` capability provider exactly as published: its `run()` reads the host
//! data from stdin and serves until the host asks it to shut down.
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    wasmcloud_provider_messaging_nats::run().await
}
