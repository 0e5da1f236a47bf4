//! A real OCI registry (Debian's `docker-registry`, the CNCF distribution server) on loopback.

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use crate::process::ChildProcess;
use crate::{free_port, wait, Error, Result};

/// A registry process serving plain HTTP on `127.0.0.1:{port}`, storing in a temp dir.
pub struct OciRegistry {
    pub port: u16,
    _process: ChildProcess,
    _dir: tempfile::TempDir,
}

impl OciRegistry {
    pub fn start() -> Result<Self> {
        let bin = crate::process::find_binary(
            "LATTICE_REGISTRY_BIN",
            "docker-registry",
            "apt-get install docker-registry",
        )?;
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let config = dir.path().join("config.yml");
        write!(
            std::fs::File::create(&config)?,
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        )?;
        let mut cmd = Command::new(bin);
        cmd.arg("serve").arg(&config);
        let process =
            ChildProcess::spawn("docker-registry", cmd, &dir.path().join("registry.log"))?;
        let addr = format!("127.0.0.1:{port}");
        wait::until(
            "the registry to answer /v2/",
            Duration::from_secs(20),
            Duration::from_millis(25),
            || crate::nats::http_response(&addr, "/v2/").filter(|r| r.contains(" 200 ")),
        )
        .map_err(|e| Error::Setup(format!("{e}; log:\n{}", process.log())))?;
        Ok(Self {
            port,
            _process: process,
            _dir: dir,
        })
    }

    /// `127.0.0.1:{port}`, the registry part of references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
