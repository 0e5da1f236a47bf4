//! A real Prometheus server (Debian's `prometheus`) on loopback, scraping the targets a test
//! names every second, and its HTTP query API.

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use crate::process::ChildProcess;
use crate::{free_port, wait, Error, Result};

/// A `prometheus` process with its data in a temp dir.
pub struct Prometheus {
    pub port: u16,
    process: ChildProcess,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts scraping `targets` (`host:port`, path `/metrics`) every second.
    pub fn start(targets: &[String]) -> Result<Self> {
        let bin = crate::process::find_binary(
            "LATTICE_PROMETHEUS_BIN",
            "prometheus",
            "apt-get install prometheus",
        )?;
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let config = dir.path().join("prometheus.yml");
        let list = targets
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(", ");
        write!(
            std::fs::File::create(&config)?,
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
             scrape_configs:\n  - job_name: lattice\n    static_configs:\n      - targets: [{list}]\n"
        )?;
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn");
        let process = ChildProcess::spawn("prometheus", cmd, &dir.path().join("prometheus.log"))?;
        let addr = format!("127.0.0.1:{port}");
        wait::until(
            "prometheus to be ready",
            Duration::from_secs(30),
            Duration::from_millis(50),
            || crate::nats::http_response(&addr, "/-/ready").filter(|r| r.contains(" 200 ")),
        )
        .map_err(|e| Error::Setup(format!("{e}; log:\n{}", process.log())))?;
        Ok(Self {
            port,
            process,
            _dir: dir,
        })
    }

    /// The value of instant query `expr` when it is one scalar or a one-element vector;
    /// `None` while it has no result (or Prometheus cannot answer).
    pub fn query(&self, expr: &str) -> Option<f64> {
        let path = format!("/api/v1/query?query={}", encode(expr));
        let response = crate::nats::http_response(&format!("127.0.0.1:{}", self.port), &path)?;
        let body = response.split_once("\r\n\r\n")?.1;
        let json: serde_json::Value = serde_json::from_str(body).ok()?;
        let result = &json["data"]["result"];
        let value = match json["data"]["resultType"].as_str()? {
            "scalar" => &result[1],
            "vector" if result.as_array()?.len() == 1 => &result[0]["value"][1],
            _ => return None,
        };
        value.as_str()?.parse().ok()
    }

    /// Whether every target's last scrape succeeded (`up == 1` for all of them).
    pub fn all_up(&self, targets: usize) -> bool {
        self.query("sum(up)") == Some(targets as f64)
    }

    /// Each target's health and last scrape error (`/api/v1/targets`), for a failing test's
    /// message.
    pub fn targets(&self) -> String {
        crate::nats::http_response(&format!("127.0.0.1:{}", self.port), "/api/v1/targets")
            .and_then(|r| r.split_once("\r\n\r\n").map(|(_, b)| b.to_string()))
            .unwrap_or_default()
    }

    /// Prometheus' own log, for a failing test's message.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

/// Percent-encodes a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
