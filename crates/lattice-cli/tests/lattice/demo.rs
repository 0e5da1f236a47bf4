//! The demo, as the README runs it (`scripts/demo`): an HTTP front end calling a greeter
//! that counts visits in key-value, on two hosts. Killing either host changes nothing a
//! user sees.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lattice_testkit::process::Signal;
use lattice_testkit::{free_port, ChildProcess};

use crate::common::BIN;

/// Kills what the demo started (its pid files), should the test fail before the demo
/// stops itself.
struct DemoPids(PathBuf);

impl Drop for DemoPids {
    fn drop(&mut self) {
        for name in ["host-1", "host-2", "nats"] {
            if let Some(pid) = pid(&self.0, name) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

fn pid(state: &Path, name: &str) -> Option<i32> {
    std::fs::read_to_string(state.join(format!("{name}.pid")))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// The visitor number in a greeting.
fn visitor(text: &str) -> u64 {
    text.trim()
        .strip_prefix("Hello, test! You are visitor number ")
        .and_then(|n| n.strip_suffix('.'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a greeting: {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_answers_and_counts_visits_and_survives_a_killed_host() {
    let state = tempfile::tempdir().unwrap();
    let _pids = DemoPids(state.path().to_path_buf());
    let http = format!("127.0.0.1:{}", free_port());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/demo");
    let mut cmd = Command::new(script);
    cmd.env("LATTICE_BIN", BIN)
        .env("LATTICE_COMPONENTS_DIR", lattice_testkit::components_dir())
        .env(
            "LATTICE_NATS_SERVER_BIN",
            lattice_testkit::nats::nats_server_bin().unwrap(),
        )
        .env("LATTICE_DEMO_NATS_PORT", free_port().to_string())
        .env("LATTICE_DEMO_HTTP_PORT", http.rsplit(':').next().unwrap())
        .env("LATTICE_DEMO_STATE_DIR", state.path());
    let mut demo = ChildProcess::spawn("demo", cmd, &state.path().join("demo.log")).unwrap();
    demo.wait_for_log("demo ready", Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}: {}", demo.log()));

    let get = || lattice_testkit::http::get(&http, "/?name=test");
    let first = get().await.unwrap();
    assert_eq!(first.status, 200, "{}", first.text());
    let n = visitor(&first.text());
    let second = get().await.unwrap();
    assert_eq!(visitor(&second.text()), n + 1, "the count is shared");

    // Either host can go: the other listens on the same port and runs both components.
    let host1 = pid(state.path(), "host-1").expect("host-1 pid");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(host1), Signal::SIGKILL).unwrap();
    lattice_testkit::wait::until(
        "host 1 gone",
        Duration::from_secs(10),
        Duration::from_millis(20),
        || (!alive(host1)).then_some(()),
    )
    .unwrap();
    for i in 0..10 {
        let r = get().await.unwrap();
        assert_eq!(r.status, 200, "request {i} after the kill: {}", r.text());
        assert_eq!(
            visitor(&r.text()),
            n + 2 + i,
            "no visit lost or counted twice"
        );
    }

    // Ctrl-C (here SIGTERM) stops everything the demo started.
    let nats = pid(state.path(), "nats").expect("nats pid");
    demo.signal(Signal::SIGTERM).unwrap();
    lattice_testkit::wait::until(
        "the demo stopped",
        Duration::from_secs(15),
        Duration::from_millis(50),
        || (!alive(nats) && !demo.is_running()).then_some(()),
    )
    .unwrap();
}
