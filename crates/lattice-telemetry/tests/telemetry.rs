//! The metrics a host records, read back the way Prometheus reads them: over HTTP from the
//! endpoint, as text.

use std::sync::Arc;
use std::time::Duration;

use lattice_telemetry::{ClientCall, Endpoint, Metrics, ServerCall};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn calls_are_counted_by_link_and_outcome_and_served_as_prometheus_text() {
    let metrics = Arc::new(Metrics::new("NHOST", "default"));
    let call = ClientCall {
        source: "relay",
        target: "calc",
        interface: "lattice:examples/calc@0.1.0",
        function: "add",
        local: false,
    };
    for _ in 0..3 {
        metrics.client_call(&call, Duration::from_millis(2), None);
    }
    metrics.client_call(&call, Duration::from_millis(30), Some("no_responders"));
    let served = ServerCall {
        component: "calc",
        interface: "lattice:examples/calc@0.1.0",
        function: "add",
    };
    metrics.server_call(&served, Duration::from_micros(300), None);

    let endpoint = Endpoint::start("127.0.0.1:0".parse().unwrap(), metrics.clone())
        .await
        .unwrap();
    let text = get(endpoint.addr(), "/metrics").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("text/plain; version=0.0.4"), "{text}");
    let link = [
        ("rpc_system", "wrpc"),
        ("rpc_service", "lattice:examples/calc@0.1.0"),
        ("rpc_method", "add"),
        ("lattice_source", "relay"),
        ("lattice_target", "calc"),
        ("lattice_route", "wrpc"),
    ];
    let count = "rpc_client_call_duration_seconds_count";
    assert_eq!(
        value(&text, count, &link, Some("error_type")),
        Some(3.0),
        "{text}"
    );
    let mut failed = link.to_vec();
    failed.push(("error_type", "no_responders"));
    assert_eq!(value(&text, count, &failed, None), Some(1.0), "{text}");
    // Buckets are cumulative: the three 2 ms calls are under 2.5 ms, all under +Inf.
    let bucket = "rpc_client_call_duration_seconds_bucket";
    let mut le = link.to_vec();
    le.push(("le", "0.0025"));
    assert_eq!(
        value(&text, bucket, &le, Some("error_type")),
        Some(3.0),
        "{text}"
    );
    le.pop();
    le.push(("le", "+Inf"));
    assert_eq!(
        value(&text, bucket, &le, Some("error_type")),
        Some(3.0),
        "{text}"
    );
    let sum = value(
        &text,
        "rpc_client_call_duration_seconds_sum",
        &link,
        Some("error_type"),
    );
    assert!(sum.is_some_and(|s| (s - 0.006).abs() < 1e-9), "{sum:?}");
    let served = [("lattice_component", "calc"), ("rpc_method", "add")];
    assert_eq!(
        value(
            &text,
            "rpc_server_call_duration_seconds_count",
            &served,
            None
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "target_info",
            &[("service_instance_id", "NHOST")],
            None
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        text.contains("# TYPE rpc_client_call_duration_seconds histogram"),
        "{text}"
    );

    assert!(get(endpoint.addr(), "/other")
        .await
        .starts_with("HTTP/1.1 404"));
}

/// The value of the series `name` whose labels include every pair of `want` and not the
/// label `absent`, if exactly one such series is in `text`.
fn value(text: &str, name: &str, want: &[(&str, &str)], absent: Option<&str>) -> Option<f64> {
    let found: Vec<f64> = text
        .lines()
        .filter_map(|line| {
            let (series, v) = line.rsplit_once(' ')?;
            let (n, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            if n != name {
                return None;
            }
            let labels = parse_labels(labels);
            let wanted = want
                .iter()
                .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v));
            let clear = absent.is_none_or(|a| !labels.contains_key(a));
            (wanted && clear).then(|| v.parse().ok()).flatten()
        })
        .collect();
    match found[..] {
        [v] => Some(v),
        _ => None,
    }
}

/// `k="v",...` with the exposition format's escapes.
fn parse_labels(s: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return out;
        }
        if chars.next() != Some('"') {
            return out;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.insert(key.trim_start_matches(',').to_string(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
}
