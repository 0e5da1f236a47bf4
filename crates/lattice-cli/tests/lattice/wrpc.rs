//! Composition across host processes and the CLI: links, relinking and unlinking at runtime, `lattice call` and its typed errors.

use std::time::{Duration, Instant};

use lattice_proto::ctl::{DeleteLinkRequest, Link};
use lattice_testkit::NatsServer;

use crate::common::*;

fn link(source: &str, target: &str) -> Link {
    Link::new(source, target, "lattice", "examples", &["calc"])
}

/// Polls `lattice call` until its output satisfies `ok` (links propagate to hosts in ms).
fn call_until(
    url: &str,
    args: &[&str],
    ok: impl Fn(&std::process::Output) -> bool,
) -> std::process::Output {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = cli(url, "default", args);
        if ok(&out) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "lattice {args:?}: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_on_two_hosts_compose_relink_and_unlink_at_runtime() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = ctl(&url, "default").await;
    let h1 = host(&url, "default")
        .arg("--allow-file-load")
        .start()
        .unwrap();
    let h2 = host(&url, "default")
        .arg("--allow-file-load")
        .start()
        .unwrap();
    for (h, name, id) in [
        (&h1, "relay", "relay"),
        (&h2, "calc", "calc"),
        (&h2, "doubler", "doubler"),
    ] {
        let ev = scale(&ctl, &h.id, &scale_cmd(&component_ref(name), id, 2)).await;
        assert_eq!(ev.event_type(), Some("component_scaled"), "{:?}", ev.data);
    }
    let add = [
        "call",
        "relay",
        "lattice:examples/relay@0.1.0.add-via-calc",
        "20, 1",
    ];

    // Not linked yet: the call fails, and says so.
    let out = cli(&url, "default", &add);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not linked: relay has no link for lattice:examples/calc"),
        "{err}"
    );

    // relay (host 1) -> calc (host 2).
    let out = cli_ok(
        &url,
        "default",
        &[
            "link",
            "put",
            "relay",
            "calc",
            "lattice",
            "examples",
            "--interface",
            "calc",
        ],
    );
    assert!(out.contains("relay -> calc"), "{out}");
    let out = call_until(&url, &add, |o| o.status.success());
    assert_eq!(stdout(&out), "21");
    let links = ctl.get_links().await.unwrap();
    assert_eq!(links, vec![link("relay", "calc")]);

    // Relink to doubler: the next calls go there, no restart.
    ctl.put_link(&link("relay", "doubler")).await.unwrap();
    let out = call_until(&url, &add, |o| stdout(o) == "42");
    assert!(out.status.success());
    let out = cli_ok(
        &url,
        "default",
        &[
            "call",
            "relay",
            "lattice:examples/relay@0.1.0.reverse-via-calc",
            "\"abc\"",
        ],
    );
    assert_eq!(out.trim(), "\"CBA\"");

    // Unlink: the next call fails "not linked".
    cli_ok(
        &url,
        "default",
        &["link", "del", "relay", "lattice", "examples"],
    );
    let out = call_until(&url, &add, |o| !o.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not linked"),
        "{out:?}"
    );
    assert!(ctl.get_links().await.unwrap().is_empty());

    // A partly overlapping link to another target is a conflict.
    let mut both = link("relay", "calc");
    both.interfaces = vec!["calc".into(), "other".into()];
    ctl.put_link(&both).await.unwrap();
    let err = ctl.put_link(&link("relay", "doubler")).await.unwrap_err();
    assert_eq!(err.kind(), lattice_ctl::ErrorKind::Rejected, "{err}");
    assert!(err.to_string().contains("conflicts"), "{err}");
    ctl.delete_link(&DeleteLinkRequest {
        source_id: "relay".into(),
        name: "default".into(),
        wit_namespace: "lattice".into(),
        wit_package: "examples".into(),
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lattice_call_reports_typed_errors() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = ctl(&url, "default").await;
    let h = host(&url, "default")
        .arg("--allow-file-load")
        .start()
        .unwrap();
    let mut runaway = scale_cmd(&component_ref("runaway"), "runaway", 1);
    runaway.component_limits = Some([("max_execution_time".to_string(), "200".to_string())].into());
    scale(&ctl, &h.id, &runaway).await;
    scale(&ctl, &h.id, &scale_cmd(&component_ref("calc"), "calc", 1)).await;

    let out = cli(
        &url,
        "default",
        &["call", "runaway", "lattice:examples/runaway@0.1.0.spin"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("deadline exceeded") && err.contains("200ms"),
        "{err}"
    );
    let out = cli(
        &url,
        "default",
        &["call", "calc", "lattice:examples/calc@0.1.0.add", "1"],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("do not match"),
        "{out:?}"
    );
    let out = cli(
        &url,
        "default",
        &["call", "calc", "lattice:examples/calc@0.1.0.nope"],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("exports no function nope"),
        "{out:?}"
    );
    let out = cli(
        &url,
        "default",
        &["call", "ghost", "lattice:examples/calc@0.1.0.add", "1, 2"],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no responders"),
        "{out:?}"
    );
    let out = cli(
        &url,
        "default",
        &[
            "-o",
            "json",
            "call",
            "calc",
            "lattice:examples/calc@0.1.0.add",
            "1, 2",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"results":["3"]}"#
    );
}
