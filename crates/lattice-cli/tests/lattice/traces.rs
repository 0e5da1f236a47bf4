//! One trace across hosts, as an operator's collector receives it: three host processes
//! export spans over OTLP/HTTP to a receiver in the test ([`OtlpReceiver`]). An HTTP request
//! enters host 1's ingress, is forwarded to `demo-web` on host 2, which calls `greeter`
//! on host 3 through a link; the spans must form that tree in one trace, each naming its
//! host.

use std::time::Duration;

use lattice_proto::ctl::Link;
use lattice_testkit::otlp::{OtlpReceiver, ReceivedSpan};
use lattice_testkit::{HostProcess, NatsServer};

use crate::common::*;

const SERVER: i32 = 2;
const CLIENT: i32 = 3;

fn traced_host(url: &str, otlp: &OtlpReceiver, http_port: u16) -> HostProcess {
    host(url, "default")
        .arg("--allow-file-load")
        .arg("--http-address")
        .arg(format!("127.0.0.1:{http_port}"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp.endpoint())
        // Export within a moment, not the default 5 s.
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .start()
        .unwrap()
}

/// The span of `spans` whose parent is `parent` and that matches `what`.
fn child<'a>(
    spans: &'a [ReceivedSpan],
    parent: &ReceivedSpan,
    what: impl Fn(&ReceivedSpan) -> bool,
) -> Option<&'a ReceivedSpan> {
    spans
        .iter()
        .find(|s| s.parent_span_id == parent.span_id && s.trace_id == parent.trace_id && what(s))
}

fn host_of(s: &ReceivedSpan) -> &str {
    s.attributes
        .get("lattice.host.id")
        .map_or("", String::as_str)
}

/// The chain ingress (h1) → served HTTP call (h2) → linked call (h2) → served call (h3).
fn request_tree<'a>(spans: &'a [ReceivedSpan], h: [&str; 3]) -> Option<[&'a ReceivedSpan; 4]> {
    spans.iter().find_map(|ingress| {
        if !(ingress.parent_span_id.is_empty()
            && ingress.kind == SERVER
            && host_of(ingress) == h[0])
        {
            return None;
        }
        let served = child(spans, ingress, |s| s.kind == SERVER && host_of(s) == h[1])?;
        let call = child(spans, served, |s| {
            s.kind == CLIENT
                && host_of(s) == h[1]
                && s.attributes.get("lattice.target").map(String::as_str) == Some("greeter")
        })?;
        let greet = child(spans, call, |s| s.kind == SERVER && host_of(s) == h[2])?;
        Some([ingress, served, call, greet])
    })
}

/// A host exporting to a receiver as `env` says, running `calc`; a wRPC client that calls it
/// `n` times with `add(i, 1)`, each answer checked.
struct CalcHost {
    host: HostProcess,
    client: lattice_wrpc::transport::Client,
}

const CALC: &str = "lattice:examples/calc@0.1.0";

impl CalcHost {
    async fn start(url: &str, env: &[(&str, &str)]) -> Self {
        let mut spec = host(url, "default").arg("--allow-file-load");
        for (k, v) in env {
            spec = spec.env(k, v);
        }
        let host = spec.start().unwrap();
        let ctl = ctl(url, "default").await;
        let ev = scale(
            &ctl,
            &host.id,
            &scale_cmd(&component_ref("calc"), "calc", 2),
        )
        .await;
        assert_eq!(ev.event_type(), Some("component_scaled"), "{:?}", ev.data);
        let client = lattice_wrpc::transport::Client::new(ctl.nats().clone());
        Self { host, client }
    }

    async fn add(&self, n: i32) {
        for i in 0..n {
            assert_eq!(
                call_s32(&self.client, "calc", CALC, "add", &[i, 1]).await,
                Ok(i + 1)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_across_three_hosts_is_one_trace() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let otlp = OtlpReceiver::start().unwrap();
    let port = lattice_testkit::free_port();
    let h1 = traced_host(&url, &otlp, port);
    let h2 = traced_host(&url, &otlp, lattice_testkit::free_port());
    let mut h3 = traced_host(&url, &otlp, lattice_testkit::free_port());
    let ctl = ctl(&url, "default").await;
    for (h, id) in [(&h2, "demo-web"), (&h3, "greeter")] {
        let file = id.replace('-', "_");
        let ev = scale(&ctl, &h.id, &scale_cmd(&component_ref(&file), id, 4)).await;
        assert_eq!(ev.event_type(), Some("component_scaled"), "{:?}", ev.data);
    }
    let link = Link::new("demo-web", "greeter", "lattice", "examples", &["greeter"]);
    ctl.put_link(&link).await.unwrap();
    crate::http::route(&ctl, "demo-web", &[("path", "/")]).await;

    let addr = format!("127.0.0.1:{port}");
    let r = crate::http::until_status(&addr, "localhost", "/?name=trace", 200).await;
    assert!(r.text().contains("trace"), "{}", r.text());

    let ids = [h1.id.as_str(), h2.id.as_str(), h3.id.as_str()];
    let tree = lattice_testkit::wait::until_async(
        "the request's spans from all three hosts",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            let spans = otlp.spans();
            request_tree(&spans, ids).map(|t| t.map(Clone::clone))
        },
    )
    .await
    .unwrap_or_else(|e| {
        let spans = otlp.spans();
        panic!("{e}; {} requests, spans: {spans:#?}", otlp.requests())
    });
    let [ingress, served, call, greet] = &tree;
    // One trace; each span's resource names the host that made it.
    for (s, host) in tree.iter().zip([ids[0], ids[1], ids[1], ids[2]]) {
        assert_eq!(s.trace_id, ingress.trace_id);
        assert_eq!(
            s.resource.get("service.instance.id").map(String::as_str),
            Some(host)
        );
    }
    assert_eq!(ingress.name, "GET");
    assert_eq!(
        ingress.attributes.get("url.path").map(String::as_str),
        Some("/")
    );
    assert_eq!(
        served
            .attributes
            .get("lattice.component")
            .map(String::as_str),
        Some("demo-web")
    );
    assert_eq!(
        call.attributes.get("lattice.source").map(String::as_str),
        Some("demo-web")
    );
    assert_eq!(
        call.attributes.get("rpc.method").map(String::as_str),
        Some("greet")
    );
    // Sent once: its retry count is on the span.
    assert_eq!(
        call.attributes.get("lattice.retries").map(String::as_str),
        Some("0")
    );
    assert_eq!(
        greet
            .attributes
            .get("lattice.component")
            .map(String::as_str),
        Some("greeter")
    );
    assert!(!greet.attributes.contains_key("error.type"), "{greet:?}");
    // The control request that scaled demo-web and the scale work it started, on host 2.
    lattice_testkit::wait::until_async(
        "the scale of demo-web as a span under its control request",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async {
            let spans = otlp.spans();
            let scale = spans.iter().find(|s| s.name == "scale demo-web")?;
            let request = spans.iter().find(|s| s.span_id == scale.parent_span_id)?;
            (request.name == "ctl component.scale"
                && host_of(request) == ids[1]
                && host_of(scale) == ids[1]
                && request.trace_id == scale.trace_id)
                .then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; spans: {:#?}", otlp.spans()));
    // greeter's own wasi:logging line names the trace and the span it ran in.
    let line = h3
        .process
        .wait_for_log("greeting trace", Duration::from_secs(10))
        .unwrap();
    assert!(line.contains(&ingress.trace_id), "{line}");
    assert!(line.contains(&greet.span_id), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_whose_collector_fails_keeps_serving_and_says_so_once() {
    let nats = NatsServer::start().unwrap();
    let otlp = OtlpReceiver::start_failing().unwrap();
    let endpoint = otlp.endpoint();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let calc = CalcHost::start(&nats.url(), &env).await;
    // Three bursts, each exported (and refused) before the next.
    for burst in 1..=3u64 {
        calc.add(20).await;
        lattice_testkit::wait::until_async(
            "the burst's spans to be sent and refused",
            Duration::from_secs(20),
            Duration::from_millis(50),
            || async { (otlp.requests() >= burst).then_some(()) },
        )
        .await
        .unwrap();
    }
    let log = calc.host.process.log();
    assert_eq!(log.matches("cannot export spans").count(), 1, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_pushed_over_otlp_too() {
    let nats = NatsServer::start().unwrap();
    let otlp = OtlpReceiver::start().unwrap();
    let endpoint = otlp.endpoint();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
    ];
    let calc = CalcHost::start(&nats.url(), &env).await;
    let h = &calc.host;
    calc.add(5).await;
    // Each export repeats the cumulative count: wait for one that has all five.
    lattice_testkit::wait::until_async(
        "five served calls of calc in an OTLP metrics export",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async {
            otlp.points()
                .iter()
                .any(|p| {
                    p.metric == "rpc.server.call.duration"
                        && p.attributes.get("lattice.component").map(String::as_str) == Some("calc")
                        && p.resource.get("service.instance.id") == Some(&h.id)
                        && p.value == 5.0
                })
                .then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; points: {:#?}", otlp.points()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_metrics_go_over_otlp_grpc_too() {
    let nats = NatsServer::start().unwrap();
    let otlp = OtlpReceiver::start_grpc().unwrap();
    let endpoint = otlp.endpoint();
    let env = [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
    ];
    let calc = CalcHost::start(&nats.url(), &env).await;
    let h = &calc.host;
    calc.add(3).await;
    lattice_testkit::wait::until_async(
        "the calls' spans and counts over gRPC",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async {
            let served = otlp
                .spans()
                .iter()
                .filter(|s| {
                    s.name == format!("{CALC}/add") && s.kind == SERVER && host_of(s) == h.id
                })
                .count();
            let counted = otlp.points().iter().any(|p| {
                p.metric == "rpc.server.call.duration"
                    && p.attributes.get("lattice.component").map(String::as_str) == Some("calc")
                    && p.value == 3.0
            });
            (served == 3 && counted).then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}; {} requests; log:\n{}",
            otlp.requests(),
            h.process.log()
        )
    });
}
