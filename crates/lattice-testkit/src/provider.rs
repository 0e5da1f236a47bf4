//! The test provider (`lattice-test-provider`, built from this crate): where it is and how a
//! test asks it what it holds.

use std::collections::BTreeMap;
use std::path::PathBuf;

use lattice_proto::provider::InterfaceLinkDefinition;
use serde::{Deserialize, Serialize};

/// Where the test provider answers with its [`ProviderState`] (test-only, not Lattice's wire).
pub fn state_subject(lattice: &str, provider_id: &str) -> String {
    format!("lattice-test.{lattice}.{provider_id}.state")
}

/// What the test provider holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderState {
    pub pid: u32,
    pub host_id: String,
    pub config: BTreeMap<String, String>,
    pub links: Vec<InterfaceLinkDefinition>,
}

/// The test provider's executable, built by `cargo test --workspace` beside the test
/// binaries (`target/debug`); built here when missing.
pub fn test_provider_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/debug/deps/test-xxxx -> target/debug
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target directory")
        .to_path_buf();
    let bin = dir.join("lattice-test-provider");
    if !bin.is_file() {
        let status = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "lattice-testkit",
                "--bin",
                "lattice-test-provider",
            ])
            .status()
            .expect("cargo build");
        assert!(status.success(), "cannot build lattice-test-provider");
    }
    bin
}

/// Asks test provider `id` in `lattice` what it holds.
pub async fn provider_state(
    nats: &async_nats::Client,
    lattice: &str,
    id: &str,
) -> Option<ProviderState> {
    let reply = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        nats.request(state_subject(lattice, id), Default::default()),
    )
    .await
    .ok()?
    .ok()?;
    serde_json::from_slice(&reply.payload).ok()
}
