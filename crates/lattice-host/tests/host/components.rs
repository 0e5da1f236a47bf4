//! Components on an in-process host: instance bounds, misbehaving guests (runaway, memory
//! hog, file snooping), named config followed live, and heartbeats with hundreds of
//! components.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lattice_host::{CallErrorKind, InvokeError, Val};
use lattice_proto::event::{HostHeartbeat, HOST_HEARTBEAT};
use lattice_testkit::NatsServer;

use crate::common::*;

const CALC: Option<&str> = Some("lattice:examples/calc@0.1.0");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_instances_bounds_100_concurrent_calls_and_none_is_lost() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let host = Arc::new(in_process_host(&nats.url(), "default").await);
    let ev = scale(
        &ctl,
        host.id(),
        &scale_cmd(&component_ref("calc"), "calc", 4),
    )
    .await;
    assert_eq!(ev.event_type(), Some("component_scaled"));
    let calls = (0..100u32).map(|i| {
        let host = host.clone();
        tokio::spawn(async move {
            host.call("calc", CALC, "wait", &[Val::U32(10 + i % 5)])
                .await
        })
    });
    let results = futures::future::join_all(calls).await;
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.unwrap().unwrap(), vec![Val::U32(10 + i as u32 % 5)]);
    }
    let stats = host.component_stats("calc").unwrap();
    println!(
        "100 concurrent calls at count=4: peak {} instances, {} calls",
        stats.peak, stats.calls
    );
    assert_eq!(stats.peak, 4);
    assert_eq!(stats.calls, 100);
    assert_eq!(stats.failures, 0);
    let e = host.call("nope", CALC, "add", &[]).await.unwrap_err();
    assert!(matches!(e, InvokeError::NotRunning(_)), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_guests_are_stopped_and_the_host_keeps_answering() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let host = Arc::new(in_process_host(&nats.url(), "default").await);
    let limits = |k: &str, v: &str| Some([(k.to_string(), v.to_string())].into());
    let mut runaway = scale_cmd(&component_ref("runaway"), "runaway", 2);
    runaway.component_limits = limits("max_execution_time", "1000");
    let mut hog = scale_cmd(&component_ref("hog"), "hog", 1);
    hog.component_limits = limits("max_linear_memory", &(16u32 << 20).to_string());
    for cmd in [
        &runaway,
        &hog,
        &scale_cmd(&component_ref("snoop"), "snoop", 1),
    ] {
        assert_eq!(
            scale(&ctl, host.id(), cmd).await.event_type(),
            Some("component_scaled")
        );
    }

    // Two runaway calls in flight (one per core of a 2-core machine); the control interface
    // answers throughout: requests are answered while both still spin.
    let spin = |host: Arc<lattice_host::Host>| async move {
        let started = Instant::now();
        let r = host
            .call(
                "runaway",
                Some("lattice:examples/runaway@0.1.0"),
                "spin",
                &[],
            )
            .await;
        (r, started.elapsed())
    };
    let spinning = tokio::spawn(futures::future::join(
        spin(host.clone()),
        spin(host.clone()),
    ));
    let mut answered_meanwhile = 0;
    while !spinning.is_finished() {
        let inv = ctl.host_inventory(host.id()).await.unwrap();
        assert_eq!(inv.components.len(), 3);
        if !spinning.is_finished() {
            answered_meanwhile += 1;
        }
    }
    assert!(
        answered_meanwhile > 0,
        "no request answered while the guests spun"
    );
    assert_eq!(ctl.ping_hosts().await.unwrap().len(), 1);
    let ((r1, t1), (r2, t2)) = spinning.await.unwrap();
    for (r, t) in [(r1, t1), (r2, t2)] {
        // Interrupted (a spin never returns), and not before its limit.
        let e = call_error(r.unwrap_err());
        assert_eq!(e.kind(), CallErrorKind::DeadlineExceeded, "{e}");
        assert!(e.to_string().contains("max execution time of 1s"), "{e}");
        assert!(t >= Duration::from_millis(1000), "{t:?}");
    }
    println!("runaway guests interrupted after {t1:?} and {t2:?} (limit 1000 ms); {answered_meanwhile} control requests answered meanwhile");

    let e = host
        .call(
            "hog",
            Some("lattice:examples/hog@0.1.0"),
            "grab",
            &[Val::U32(100)],
        )
        .await
        .unwrap_err();
    let e = call_error(e);
    assert_eq!(e.kind(), CallErrorKind::MemoryLimit, "{e}");
    assert!(
        e.to_string().contains("memory limit of 16777216 bytes"),
        "{e}"
    );

    let r = host
        .call(
            "snoop",
            Some("lattice:examples/snoop@0.1.0"),
            "read-file",
            &[Val::String("/etc/passwd".into())],
        )
        .await
        .unwrap();
    assert!(
        matches!(&r[0], Val::Result(Err(_))),
        "read /etc/passwd without a grant: {r:?}"
    );

    // And the host still serves ordinary work.
    assert_eq!(ctl.ping_hosts().await.unwrap().len(), 1);
    let inv = ctl.host_inventory(host.id()).await.unwrap();
    assert_eq!(inv.components.len(), 3);

    // Scaling the running component again with other limits applies them.
    runaway.component_limits = limits("max_execution_time", "150");
    scale(&ctl, host.id(), &runaway).await;
    let (r, t) = spin(host.clone()).await;
    // The new limit is the one applied: the error names it.
    let e = call_error(r.unwrap_err());
    assert_eq!(e.kind(), CallErrorKind::DeadlineExceeded, "{e}");
    assert!(e.to_string().contains("max execution time of 150ms"), "{e}");
    assert!(t >= Duration::from_millis(150), "{t:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_config_reaches_components_and_follows_changes_live() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let host = in_process_host(&nats.url(), "default").await;
    let base: BTreeMap<String, String> = [("greeting", "Hola"), ("lang", "es")]
        .map(|(k, v)| (k.into(), v.into()))
        .into();
    ctl.put_config("greet-base", &base).await.unwrap();
    ctl.put_config(
        "greet-override",
        &[("lang".to_string(), "ca".to_string())].into(),
    )
    .await
    .unwrap();
    let mut cmd = scale_cmd(&component_ref("greeter"), "greeter", 1);
    cmd.config = vec!["greet-base".into(), "greet-override".into()];
    assert_eq!(
        scale(&ctl, host.id(), &cmd).await.event_type(),
        Some("component_scaled")
    );
    let greeter = Some("lattice:examples/greeter@0.1.0");
    let ada = [Val::String("Ada".into())];
    let greet = || host.call("greeter", greeter, "greet", &ada);
    assert_eq!(
        greet().await.unwrap(),
        vec![Val::String("Hola, Ada!".into())]
    );
    let all = host.call("greeter", greeter, "config", &[]).await.unwrap();
    let pair = |k: &str, v: &str| Val::Tuple(vec![Val::String(k.into()), Val::String(v.into())]);
    // Later configs win.
    assert_eq!(
        all,
        vec![Val::List(vec![
            pair("greeting", "Hola"),
            pair("lang", "ca")
        ])]
    );

    ctl.put_config(
        "greet-base",
        &[("greeting".to_string(), "Bonjour".to_string())].into(),
    )
    .await
    .unwrap();
    let changed = Instant::now();
    lattice_testkit::wait::until_async(
        "new greeting",
        Duration::from_secs(5),
        Duration::from_millis(10),
        || async {
            (greet().await.ok()? == vec![Val::String("Bonjour, Ada!".into())]).then_some(())
        },
    )
    .await
    .unwrap();
    println!(
        "config change seen by the component {:?} after config.put",
        changed.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_size_stays_bounded_with_hundreds_of_components() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let host = in_process_host(&nats.url(), "default").await;
    let heartbeat_bytes = || async {
        let mut events = ctl.events().await.unwrap();
        loop {
            let ev = next_event(&mut events, HOST_HEARTBEAT, Duration::from_secs(3)).await;
            if ev.source == host.id() {
                let size = serde_json::to_vec(&ev).unwrap().len();
                let hb: HostHeartbeat = serde_json::from_value(ev.data).unwrap();
                return (size, hb);
            }
        }
    };
    let (empty, hb) = heartbeat_bytes().await;
    assert_eq!(hb.component_count, Some(0));
    let calc = component_ref("calc");
    let n = 300;
    for i in 0..n {
        let mut cmd = scale_cmd(&calc, &format!("component-with-a-longish-name-{i:04}"), 1);
        cmd.annotations = [("owner".to_string(), "team-lattice".to_string())].into();
        ctl.scale_component(host.id(), &cmd).await.unwrap();
    }
    lattice_testkit::wait::until_async(
        "all components running",
        Duration::from_secs(60),
        Duration::from_millis(100),
        || async {
            (ctl.host_inventory(host.id()).await.ok()?.components.len() == n).then_some(())
        },
    )
    .await
    .unwrap();
    let (full, hb) = heartbeat_bytes().await;
    println!("heartbeat event: {empty} bytes with 0 components, {full} bytes with {n} (inventory via host.get)");
    assert_eq!(hb.component_count, Some(n));
    assert!(hb.components_truncated);
    assert!(
        full <= empty + lattice_proto::event::HEARTBEAT_COMPONENT_BUDGET + 64,
        "{full}"
    );
    let inv = ctl.host_inventory(host.id()).await.unwrap();
    assert_eq!(inv.components.len(), n);
}
