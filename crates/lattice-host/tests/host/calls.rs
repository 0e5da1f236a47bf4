//! Calls between components on in-process hosts: local-first routing, no responders, trace
//! context and deadlines across hosts, link names, links stored before a host joined, and
//! the messages a short call costs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lattice_host::{CallErrorKind, InvokeError, Val};
use lattice_testkit::NatsServer;

use crate::common::*;

const RELAY: Option<&str> = Some("lattice:examples/relay@0.1.0");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_a_target_nobody_runs_fails_fast_with_no_responders() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let host = in_process_host(&nats.url(), "default").await;
    scale(
        &ctl,
        host.id(),
        &scale_cmd(&component_ref("relay"), "relay", 1),
    )
    .await;
    ctl.put_link(&link("relay", "ghost")).await.unwrap();
    let args = [Val::S32(1), Val::S32(2)];
    let mut took = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while took.len() < 5 {
        let started = Instant::now();
        match host.call("relay", RELAY, "add-via-calc", &args).await {
            Err(InvokeError::Call(e)) if e.kind() == CallErrorKind::NoResponders => {
                took.push(started.elapsed())
            }
            // The link has not reached this host's table yet.
            Err(InvokeError::Call(e)) if e.kind() == CallErrorKind::NotLinked => {
                assert!(Instant::now() < deadline, "link never arrived");
            }
            other => panic!("expected no responders, got {other:?}"),
        }
    }
    took.sort();
    // Fast by kind: "no responders" comes from the server at once, a lost call would end at
    // its deadline. `scripts/bench faults` measures how fast.
    println!("no-responders errors after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_targets_stay_in_process_and_remote_ones_carry_4_mb() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let local = Arc::new(in_process_host(&nats.url(), "default").await);
    let remote =
        in_process_host_with(&nats.url(), "default", |c| c.force_remote_calls = true).await;
    for (h, name) in [(&*local, "relay"), (&*local, "calc")] {
        scale(&ctl, h.id(), &scale_cmd(&component_ref(name), name, 4)).await;
    }
    // The forced-remote host runs its own relay under another id; calc only runs on `local`.
    scale(
        &ctl,
        remote.id(),
        &scale_cmd(&component_ref("relay"), "relay-remote", 4),
    )
    .await;
    ctl.put_link(&link("relay", "calc")).await.unwrap();
    ctl.put_link(&link("relay-remote", "calc")).await.unwrap();

    let args = [Val::S32(2), Val::S32(3)];
    assert_eq!(wait_linked(&local, "relay", &args).await, vec![Val::S32(5)]);
    assert_eq!(
        (local.routing_stats().local, local.routing_stats().remote),
        (1, 0),
        "a local target is called in-process"
    );
    assert_eq!(
        wait_linked(&remote, "relay-remote", &args).await,
        vec![Val::S32(5)]
    );
    assert_eq!(remote.routing_stats().remote, 1, "forced over wRPC");

    // 4 MB each way across hosts: chunked past NATS's 1 MB max_payload.
    let big: String = "lattice-".repeat(512 * 1024);
    assert_eq!(big.len(), 4 << 20);
    let started = Instant::now();
    let out = remote
        .call(
            "relay-remote",
            RELAY,
            "reverse-via-calc",
            &[Val::String(big.clone())],
        )
        .await
        .unwrap();
    let expected: String = big.chars().rev().collect();
    assert_eq!(out, vec![Val::String(expected)]);
    println!(
        "4 MB string round trip across hosts in {:?}",
        started.elapsed()
    );
    assert_eq!(remote.routing_stats().remote, 2);
    assert_eq!(remote.routing_stats().local, 0);
}

/// Calls `relay`'s add until the link has reached the host (links propagate in milliseconds).
async fn wait_linked(h: &lattice_host::Host, id: &str, args: &[Val]) -> Vec<Val> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match h.call(id, RELAY, "add-via-calc", args).await {
            Ok(v) => return v,
            Err(InvokeError::Call(e))
                if e.kind() == CallErrorKind::NotLinked && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_carry_their_trace_context_and_deadline_across_hosts() {
    use futures::StreamExt;
    use lattice_wrpc::trace::TraceParent;
    use lattice_wrpc::transport::{self, TIMEOUT_HEADER, TRACEPARENT_HEADER};
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let front = in_process_host(&nats.url(), "default").await;
    let back = in_process_host(&nats.url(), "default").await;
    scale(
        &ctl,
        front.id(),
        &scale_cmd(&component_ref("relay"), "relay", 1),
    )
    .await;
    scale(
        &ctl,
        back.id(),
        &scale_cmd(&component_ref("calc"), "calc", 1),
    )
    .await;
    ctl.put_link(&link("relay", "calc")).await.unwrap();
    wait_linked(&front, "relay", &[Val::S32(1), Val::S32(1)]).await;

    // A spy sees every invocation of calc (a plain subscription next to the queue group).
    let mut spy = ctl.nats().subscribe("default.calc.wrpc.>").await.unwrap();
    // And every parameter message after the first: calls whose parameters fit in their first
    // message need none between Lattice hosts, not even the end of the stream.
    let mut params_spy = ctl.nats().subscribe("_INBOX.*.params").await.unwrap();
    ctl.nats().flush().await.unwrap();
    let trace = TraceParent::root();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(TRACEPARENT_HEADER, trace.to_string().as_str());
    let client = transport::Client::new(ctl.nats().clone());
    let types = [wasm_wave::value::Type::S32, wasm_wave::value::Type::S32];
    let mut params = Vec::new();
    let args: Vec<wasm_wave::value::Value> = vec![2i32.into(), 3i32.into()];
    lattice_wrpc::encode_values(&types, &args, &mut params).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let r = client
        .invoke(
            lattice_wrpc::transport::Call::new(
                "default.relay",
                "lattice:examples/relay@0.1.0",
                "add-via-calc",
                params.into(),
                deadline,
            )
            .with_headers(headers),
            |b| lattice_wrpc::decode_values::<wasm_wave::value::Value>(&types[..1], b),
        )
        .await
        .unwrap();
    assert_eq!(wasm_wave::to_string(&r[0]).unwrap(), "5");
    let seen = tokio::time::timeout(Duration::from_secs(5), spy.next())
        .await
        .unwrap()
        .unwrap();
    let h = seen.headers.expect("invocation headers");
    let forwarded = TraceParent::parse(h.get(TRACEPARENT_HEADER).unwrap().as_str()).unwrap();
    assert_eq!(forwarded.trace_id, trace.trace_id, "same trace");
    assert_ne!(forwarded.parent_id, trace.parent_id, "a new span of it");
    assert_eq!(h.get("source-id").unwrap().as_str(), "relay");
    let budget: u64 = h.get(TIMEOUT_HEADER).unwrap().as_str().parse().unwrap();
    assert!(budget > 0 && budget <= 10_000, "{budget}");
    // The relay host would have sent its parameter message to calc's host before it sent
    // relay's results, so on the spy's connection it came before them; this client's own is
    // routed once the server answers a round trip after it.
    lattice_nats::sync_with_server(ctl.nats()).await.unwrap();
    use futures::FutureExt as _;
    assert!(
        params_spy.next().now_or_never().is_none(),
        "a parameter message was sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_picks_its_link_by_name() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = ctl(&url, "default").await;
    let h = in_process_host(&url, "default").await;
    for name in ["relay", "calc", "doubler"] {
        let ev = scale(&ctl, h.id(), &scale_cmd(&component_ref(name), name, 2)).await;
        assert_eq!(ev.event_type(), Some("component_scaled"), "{:?}", ev.data);
    }
    ctl.put_link(&link("relay", "calc")).await.unwrap();
    let mut named = link("relay", "doubler");
    named.name = "double".into();
    ctl.put_link(&named).await.unwrap();
    wait_linked(&h, "relay", &[Val::S32(0), Val::S32(0)]).await;

    // wasmcloud:bus/lattice.set-link-name picks the link for the calls that follow.
    let via = |link: &str| {
        let args = [Val::String(link.into()), Val::S32(2), Val::S32(3)];
        let h = &h;
        async move { h.call("relay", RELAY, "add-via-link", &args).await }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let doubled = loop {
        match via("double").await {
            Ok(v) => break v,
            Err(InvokeError::Call(e))
                if e.kind() == CallErrorKind::NotLinked && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(doubled, vec![Val::S32(10)], "through the link named double");
    assert_eq!(via("default").await.unwrap(), vec![Val::S32(5)]);
    let err = call_error(via("nope").await.unwrap_err());
    assert_eq!(err.kind(), CallErrorKind::NotLinked, "{err}");
    // The message says how to make the missing link.
    let err = err.to_string();
    assert!(
        err.contains("named \"nope\"") && err.contains("--name nope"),
        "{err}"
    );
    // Another instance starts on the default link again.
    assert_eq!(
        h.call("relay", RELAY, "add-via-calc", &[Val::S32(2), Val::S32(3)])
            .await
            .unwrap(),
        vec![Val::S32(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_joins_later_knows_the_links_already_stored() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = ctl(&url, "default").await;
    let first = in_process_host(&url, "default").await;
    scale(
        &ctl,
        first.id(),
        &scale_cmd(&component_ref("calc"), "calc", 1),
    )
    .await;
    ctl.put_link(&link("relay", "calc")).await.unwrap();

    // Joins after the link was stored: it must learn it from what is stored, not only from
    // changes made while it watches.
    let late = in_process_host(&url, "default").await;
    scale(
        &ctl,
        late.id(),
        &scale_cmd(&component_ref("relay"), "relay", 1),
    )
    .await;
    assert_eq!(
        wait_linked(&late, "relay", &[Val::S32(40), Val::S32(2)]).await,
        vec![Val::S32(42)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_call_between_lattice_peers_takes_one_message_each_way() {
    use futures::{FutureExt as _, StreamExt};
    use lattice_wrpc::transport::{self, SERVER_HEADER, WHOLE_HEADER};
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let h = in_process_host(&nats.url(), "default").await;
    scale(&ctl, h.id(), &scale_cmd(&component_ref("calc"), "calc", 1)).await;
    // The client's replies come to its own inbox prefix, where a spy sees all of them.
    let conn = async_nats::ConnectOptions::new()
        .custom_inbox_prefix("spied")
        .connect(nats.url())
        .await
        .unwrap();
    let mut spy = ctl.nats().subscribe("spied.>").await.unwrap();
    ctl.nats().flush().await.unwrap();
    let client = transport::Client::new(conn);
    let types = &[wasm_wave::value::Type::S32, wasm_wave::value::Type::S32];
    let call = |func: &'static str, a: i32| {
        let client = client.clone();
        let mut params = Vec::new();
        let args: Vec<wasm_wave::value::Value> = vec![a.into(), 1i32.into()];
        lattice_wrpc::encode_values(types, &args, &mut params).unwrap();
        async move {
            client
                .invoke(
                    lattice_wrpc::transport::Call::new(
                        "default.calc",
                        "lattice:examples/calc@0.1.0",
                        func,
                        params.into(),
                        tokio::time::Instant::now() + Duration::from_secs(5),
                    ),
                    |b| lattice_wrpc::decode_values::<wasm_wave::value::Value>(&types[..1], b),
                )
                .await
        }
    };
    // What the spy saw of the calls so far (all of it: the server round trip makes sure).
    let spied = |spy: &mut async_nats::Subscriber| {
        let mut seen = Vec::new();
        while let Some(Some(m)) = spy.next().now_or_never() {
            seen.push(m);
        }
        seen
    };
    // Results on `Rc.whole`, bare; a failure as the handshake, marked whole.
    let whole = |m: &async_nats::Message| m.subject.ends_with(".whole") && m.headers.is_none();
    let host_id = h.id().to_string();
    let whole_failure = |m: &async_nats::Message| {
        let headers = m.headers.as_ref();
        headers.and_then(|h| h.get(WHOLE_HEADER)).is_some()
            && headers
                .and_then(|h| h.get(SERVER_HEADER))
                .map(|v| v.as_str())
                == Some(&host_id)
            && !m.subject.ends_with(".results")
            && m.reply.is_none()
    };

    // A call that runs past 2 ms is acknowledged first (then it takes the usual messages):
    // of ten calls after a warm-up, short ones are answered in one message.
    call("add", 0).await.unwrap();
    lattice_nats::sync_with_server(ctl.nats()).await.unwrap();
    spied(&mut spy);
    let mut in_one = 0;
    for i in 0..10 {
        let r = call("add", i).await.unwrap();
        assert_eq!(wasm_wave::to_string(&r[0]).unwrap(), (i + 1).to_string());
        lattice_nats::sync_with_server(ctl.nats()).await.unwrap();
        let seen = spied(&mut spy);
        if let [only] = &seen[..] {
            assert!(whole(only), "one message, not the whole results: {only:?}");
            in_one += 1;
        } else {
            assert!(seen.iter().all(|m| !whole(m)), "{seen:?}");
        }
    }
    assert!(in_one > 0, "no call of ten was answered in one message");

    // A failure is one message too, with its reason.
    let err = call("nope", 0).await.unwrap_err();
    assert_eq!(err.kind(), lattice_wrpc::CallErrorKind::Rejected, "{err}");
    lattice_nats::sync_with_server(ctl.nats()).await.unwrap();
    let seen = spied(&mut spy);
    assert!(matches!(&seen[..], [m] if whole_failure(m)), "{seen:?}");
}
