//! HTTP ingress built into every host: routing by address, path and host; requests served
//! in-process when the component runs here, else over wRPC; failures with their status; and
//! outgoing HTTP denied unless granted.

use std::time::{Duration, Instant};

use lattice_proto::ctl::Link;
use lattice_testkit::http::{get, request, request_with, Response};
use lattice_testkit::{free_port, HostProcess, NatsServer};

use crate::common::*;

const HELLO: &str = "Hello from Lattice!\n";

/// A host process serving the shared HTTP listener on `port`.
pub(crate) fn http_host(url: &str, port: u16) -> HostProcess {
    host(url, "default")
        .arg("--allow-file-load")
        .arg("--http-address")
        .arg(format!("127.0.0.1:{port}"))
        .start()
        .unwrap()
}

/// Runs `http-hello` as `id` on `host`, with `change` applied to the scale request.
async fn run_hello(
    ctl: &lattice_ctl::Client,
    host: &str,
    id: &str,
    change: impl FnOnce(&mut lattice_proto::ctl::ScaleComponentCommand),
) {
    let mut cmd = scale_cmd(&component_ref("http_hello"), id, 8);
    change(&mut cmd);
    let ev = scale(ctl, host, &cmd).await;
    assert_eq!(ev.event_type(), Some("component_scaled"), "{:?}", ev.data);
}

/// Routes requests for `id` by the source config `pairs` (stored as config `http-{id}`).
pub(crate) async fn route(ctl: &lattice_ctl::Client, id: &str, pairs: &[(&str, &str)]) {
    let name = format!("http-{id}");
    let values = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ctl.put_config(&name, &values).await.unwrap();
    let mut link = Link::new("http", id, "wasi", "http", &["incoming-handler"]);
    // Links are unique per source, interface and name: one name per routed component.
    link.name = id.into();
    link.source_config = vec![name];
    ctl.put_link(&link).await.unwrap();
}

/// Requests `path` from `addr` until it answers `status` (routes reach every host within a
/// moment of the link).
pub(crate) async fn until_status(addr: &str, host: &str, path: &str, status: u16) -> Response {
    let last = std::sync::Mutex::new(String::new());
    lattice_testkit::wait::until_async(
        &format!("{status} from http://{addr}{path}"),
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async {
            let r = request(addr, "GET", host, path, b"", Duration::from_secs(15)).await;
            let r = match r {
                Ok(r) => r,
                Err(e) => {
                    *last.lock().unwrap() = e.to_string();
                    return None;
                }
            };
            *last.lock().unwrap() = format!("{} {}", r.status, r.text());
            (r.status == status).then_some(r)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; last answer: {}", last.lock().unwrap()))
}

/// POSTs a chunked body to an echoing `path` at `addr`: the echo of its first chunk must
/// arrive before the second is sent (both bodies stream at once), the second's after it.
pub(crate) async fn echoes_while_sending(addr: &str, path: &str) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n6\r\nping-1\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&raw).contains("ping-1") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("the first chunk's echo before the body ended")
            .unwrap();
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
    }
    s.write_all(b"6\r\nping-2\r\n0\r\n\r\n").await.unwrap();
    s.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(
        raw.contains("ping-2") && raw.ends_with("0\r\n\r\n"),
        "{raw:?}"
    );
}

/// Calls component `id` served on `host`, from its inventory.
async fn calls(ctl: &lattice_ctl::Client, host: &str, id: &str) -> u64 {
    let inv = ctl.host_inventory(host).await.unwrap();
    inv.components
        .iter()
        .find(|c| c.id == id)
        .and_then(|c| c.calls)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_routed_by_address_path_and_host_and_served_wherever_the_component_runs() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = ctl(&url, "default").await;
    let (edge_port, core_port, own_port) = (free_port(), free_port(), free_port());
    let edge_addr = format!("127.0.0.1:{edge_port}");
    let core_addr = format!("127.0.0.1:{core_port}");
    // `edge` runs nothing at first; `core` runs every component.
    let edge = http_host(&url, edge_port);
    let core = http_host(&url, core_port);
    for id in ["by-path", "by-host", "by-address"] {
        run_hello(&ctl, &core.id, id, |_| {}).await;
    }
    run_hello(&ctl, &core.id, "slow", |c| {
        c.component_limits = Some([("max_execution_time".into(), "300".into())].into());
    })
    .await;
    route(&ctl, "by-path", &[("path", "/app")]).await;
    route(&ctl, "by-host", &[("host", "hello.test")]).await;
    let own_addr = format!("127.0.0.1:{own_port}");
    route(&ctl, "by-address", &[("address", own_addr.as_str())]).await;
    route(&ctl, "slow", &[("path", "/slow")]).await;
    route(&ctl, "ghost", &[("path", "/ghost")]).await;

    // By path, at a host that does not run the component: served on the other host.
    let r = until_status(&edge_addr, "localhost", "/app", 200).await;
    assert_eq!(r.text(), HELLO);
    let before = calls(&ctl, &core.id, "by-path").await;
    for _ in 0..5 {
        assert_eq!(get(&edge_addr, "/app/x").await.unwrap().status, 200);
    }
    assert_eq!(calls(&ctl, &core.id, "by-path").await, before + 5);

    // By host header, and by an address of its own.
    let before = calls(&ctl, &core.id, "by-host").await;
    let r = until_status(&edge_addr, "Hello.Test:1234", "/anything", 200).await;
    assert_eq!(r.text(), HELLO);
    assert!(calls(&ctl, &core.id, "by-host").await > before);
    let r = until_status(&own_addr, "localhost", "/", 200).await;
    assert_eq!(r.text(), HELLO);

    // No route: 404. A target nobody runs: 502, fast, once its route is in place (routes
    // follow the links within a moment; nothing above waited for this one).
    let r = get(&edge_addr, "/nope").await.unwrap();
    assert_eq!(r.status, 404, "{}", r.text());
    until_status(&edge_addr, "localhost", "/ghost", 502).await;
    let asked = Instant::now();
    let r = get(&edge_addr, "/ghost").await.unwrap();
    let took = asked.elapsed();
    assert_eq!(r.status, 502, "{}", r.text());
    // Fast: refused as "no responders", not after the call's deadline.
    assert!(r.text().contains("no responders"), "{}", r.text());
    println!("502 for a target nobody runs after {took:?}");

    // A trap is a 500 and a guest past its execution limit a 504, locally and remotely.
    for addr in [&edge_addr, &core_addr] {
        let r = get(addr, "/app/trap").await.unwrap();
        assert_eq!(r.status, 500, "{addr}: {}", r.text());
        let r = get(addr, "/slow/sleep/3000").await.unwrap();
        assert_eq!(r.status, 504, "{addr}: {}", r.text());
        assert_eq!(get(addr, "/slow/sleep/1").await.unwrap().status, 200);
    }

    // A 1 MiB body goes to the component on the other host and comes back whole.
    let body: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let r = request(
        &edge_addr,
        "POST",
        "localhost",
        "/app/echo",
        &body,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.body == body,
        "echoed body differs ({} bytes)",
        r.body.len()
    );

    // Once `edge` runs the component too, its requests stay on it: none reach `core`.
    run_hello(&ctl, &edge.id, "by-path", |_| {}).await;
    let (edge_before, core_before) = (
        calls(&ctl, &edge.id, "by-path").await,
        calls(&ctl, &core.id, "by-path").await,
    );
    for _ in 0..20 {
        assert_eq!(get(&edge_addr, "/app").await.unwrap().status, 200);
    }
    assert_eq!(calls(&ctl, &edge.id, "by-path").await, edge_before + 20);
    assert_eq!(calls(&ctl, &core.id, "by-path").await, core_before);
}

/// An upstream answering every request with `upstream ok`, for outgoing requests.
async fn upstream() -> (u16, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\nconnection: close\r\n\r\nupstream ok")
                    .await;
            });
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_http_is_denied_unless_the_host_is_granted() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = ctl(&url, "default").await;
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let h = http_host(&url, port);
    let (up, _upstream) = upstream().await;
    run_hello(&ctl, &h.id, "denied", |_| {}).await;
    run_hello(&ctl, &h.id, "granted", |c| {
        c.allowed_hosts = vec!["127.0.0.1".into()];
    })
    .await;
    run_hello(&ctl, &h.id, "other-host", |c| {
        c.allowed_hosts = vec!["example.com".into()];
    })
    .await;
    for id in ["denied", "granted", "other-host"] {
        route(&ctl, id, &[("path", &format!("/{id}"))]).await;
    }
    let fetch = |id: &str| format!("/{id}/fetch/127.0.0.1:{up}/x");
    let r = until_status(&addr, "localhost", &fetch("granted"), 200).await;
    assert_eq!(r.text(), "upstream ok");
    for id in ["denied", "other-host"] {
        let r = until_status(&addr, "localhost", &fetch(id), 502).await;
        assert!(r.text().contains("HttpRequestDenied"), "{id}: {}", r.text());
    }

    // Scaling a running component again with a grant changes its grant.
    run_hello(&ctl, &h.id, "denied", |c| {
        c.allowed_hosts = vec!["127.0.0.1".into()];
    })
    .await;
    let r = get(&addr, &fetch("denied")).await.unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "upstream ok"));
}

/// Two hosts: `edge` takes the requests (returned: its address and process), only `core` runs
/// the component, `streamer`, routed from `/s`.
async fn edge_and_core(url: &str) -> (lattice_ctl::Client, String, HostProcess, HostProcess) {
    let ctl = ctl(url, "default").await;
    let edge_port = free_port();
    let edge_addr = format!("127.0.0.1:{edge_port}");
    let edge = http_host(url, edge_port);
    let core = http_host(url, free_port());
    run_hello(&ctl, &core.id, "streamer", |_| {}).await;
    route(&ctl, "streamer", &[("path", "/s")]).await;
    until_status(&edge_addr, "localhost", "/s", 200).await;
    (ctl, edge_addr, edge, core)
}

/// Waits (up to 20 s) until `host` has counted more than `before` calls of `id`: an
/// instance that was serving a request has ended.
async fn instance_ended(ctl: &lattice_ctl::Client, host: &str, id: &str, before: u64) {
    lattice_testkit::wait::until_async(
        &format!("an instance of {id} to end"),
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async { (calls(ctl, host, id).await > before).then_some(()) },
    )
    .await
    .unwrap();
}

/// Sends `GET path` to `addr` and reads the raw response until `seen` is in it, within
/// `timeout` (else panics): the still-open connection, what arrived, and how long it took.
async fn read_until(
    addr: &str,
    path: &str,
    seen: &str,
    timeout: Duration,
) -> (tokio::net::TcpStream, Vec<u8>, Duration) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let started = Instant::now();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&raw).contains(seen) {
        let n = tokio::time::timeout_at((started + timeout).into(), s.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{seen:?} not within {timeout:?}; got {:?}",
                    String::from_utf8_lossy(&raw)
                )
            })
            .unwrap();
        assert!(
            n > 0,
            "closed before {seen:?}: {:?}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&buf[..n]);
    }
    (s, raw, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_stream_both_ways_to_and_from_a_component_on_another_host() {
    use tokio::io::AsyncReadExt as _;
    let nats = NatsServer::start().unwrap();
    let (ctl, edge_addr, _edge, core) = edge_and_core(&nats.url()).await;

    // The first line reaches the client while the guest still waits to write the second:
    // nothing holds the body back until the guest is done. The stream outlasts a call's
    // 10 s timeout: the serving host's execution limit (30 s) is what bounds it, as locally.
    let (mut conn, first, took) = read_until(
        &edge_addr,
        "/s/stream/3/5500",
        "line 1 of 3",
        Duration::from_secs(4),
    )
    .await;
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).await.unwrap();
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        rest.contains("line 3 of 3") && rest.ends_with("0\r\n\r\n"),
        "{rest:?}"
    );
    let first = String::from_utf8_lossy(&first);
    assert!(!first.contains("line 2 of 3"), "held back: {first:?}");
    println!("first streamed line after {took:?}");

    // A body far larger than any one message arrives whole, in order.
    let n = 40 << 20;
    let r = request(
        &edge_addr,
        "GET",
        "localhost",
        &format!("/s/bytes/{n}"),
        b"",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), n);
    assert!(
        r.body
            .iter()
            .enumerate()
            .all(|(i, b)| *b == (i % 251) as u8),
        "the body differs from what the guest wrote"
    );

    // A request body far larger than one message streams to the guest, which reads it all.
    let body: Vec<u8> = (0..40 << 20).map(|i: u32| (i % 251) as u8).collect();
    let r = request(
        &edge_addr,
        "POST",
        "localhost",
        "/s/sum",
        &body,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let sum = body.iter().map(|b| u64::from(*b)).sum::<u64>();
    assert_eq!(r.text(), format!("{} bytes, sum {sum}\n", body.len()));

    // Both at once: the guest echoes the first chunk of a request body before the client
    // sends the second.
    echoes_while_sending(&edge_addr, "/s/echo").await;

    // A client that hangs up mid-body stops the guest's stream: the instance ends long
    // before it could have written 100 GiB.
    let before = calls(&ctl, &core.id, "streamer").await;
    let (conn, _, _) = read_until(
        &edge_addr,
        &format!("/s/bytes/{}", 100u64 << 30),
        "\r\n\r\n",
        Duration::from_secs(10),
    )
    .await;
    drop(conn);
    instance_ended(&ctl, &core.id, "streamer", before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_from_a_host_that_dies_is_cut_within_seconds() {
    use tokio::io::AsyncReadExt as _;
    let nats = NatsServer::start().unwrap();
    let (_ctl, edge_addr, _edge, mut core) = edge_and_core(&nats.url()).await;

    // A line a second for 25 s; its host is killed after the first.
    let (mut conn, _, _) = read_until(
        &edge_addr,
        "/s/stream/25/1000",
        "line 1 of 25",
        Duration::from_secs(10),
    )
    .await;
    core.process.kill();
    let killed = Instant::now();
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(15), conn.read_to_end(&mut rest)).await;
    let took = killed.elapsed();
    assert!(
        ended.is_ok(),
        "the response still open {took:?} after its host died"
    );
    let rest = String::from_utf8_lossy(&rest);
    // Cut short, not ended as if complete.
    assert!(
        !rest.contains("line 25 of 25") && !rest.ends_with("0\r\n\r\n"),
        "{rest:?}"
    );
    println!("response cut {took:?} after its host was killed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasmcloud_link_config_sets_timeout_read_only_mode_cache_control_and_cors() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = ctl(&url, "default").await;
    let (edge_port, core_port) = (free_port(), free_port());
    let _edge = http_host(&url, edge_port);
    let core = http_host(&url, core_port);
    run_hello(&ctl, &core.id, "opts", |_| {}).await;
    route(
        &ctl,
        "opts",
        &[
            ("path", "/o"),
            ("timeout_ms", "500"),
            ("readonly_mode", "true"),
            ("cache_control", "max-age=60"),
            ("cors_allowed_origins", r#"["http://app.test"]"#),
        ],
    )
    .await;
    // Another component with wasmCloud's default CORS: every origin.
    run_hello(&ctl, &core.id, "open", |_| {}).await;
    route(&ctl, "open", &[("path", "/p")]).await;
    // Forwarded (edge) and local (core) alike.
    for port in [edge_port, core_port] {
        let addr = format!("127.0.0.1:{port}");
        let r = until_status(&addr, "localhost", "/o", 200).await;
        assert_eq!(r.header("cache-control"), Some("max-age=60"), "{addr}");

        let r = request(
            &addr,
            "POST",
            "localhost",
            "/o/echo",
            b"x",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(r.status, 405, "{addr}: {}", r.text());
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{addr}");

        // The route's timeout ends it: a guest that slept its 5 s would have answered 200.
        let r = get(&addr, "/o/sleep/5000").await.unwrap();
        assert_eq!(r.status, 408, "{addr}: {}", r.text());

        // CORS: a preflight is answered by the host; responses name the allowed origin.
        let from = |origin: &'static str, method: &'static str, path: &'static str| {
            let addr = addr.clone();
            async move {
                let mut headers = vec![("origin", origin)];
                if method == "OPTIONS" {
                    headers.push(("access-control-request-method", "POST"));
                }
                request_with(
                    &addr,
                    method,
                    "localhost",
                    path,
                    &headers,
                    b"",
                    Duration::from_secs(10),
                )
                .await
                .unwrap()
            }
        };
        let r = from("http://app.test", "OPTIONS", "/o").await;
        assert_eq!(r.status, 200, "{addr}: {}", r.text());
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("http://app.test")
        );
        assert!(r
            .header("access-control-allow-methods")
            .is_some_and(|m| m.contains("POST")));
        assert_eq!(r.header("access-control-max-age"), Some("300"));
        let r = from("http://app.test", "GET", "/o").await;
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("http://app.test"),
            "{addr}"
        );
        let r = from("http://evil.test", "GET", "/o").await;
        assert_eq!(r.header("access-control-allow-origin"), None, "{addr}");
        let r = until_status(&addr, "localhost", "/p", 200).await;
        assert_eq!(
            r.header("access-control-allow-origin"),
            None,
            "no Origin, no CORS"
        );
        let r = from("http://evil.test", "GET", "/p").await;
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{addr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_with_tls_files_is_served_over_https_and_picks_up_a_renewed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let cert = self_signed(&cert_file, &key_file);

    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = ctl(&url, "default").await;
    let h = http_host(&url, free_port());
    run_hello(&ctl, &h.id, "secure", |_| {}).await;
    let addr = format!("127.0.0.1:{}", free_port());
    route(
        &ctl,
        "secure",
        &[
            ("address", addr.as_str()),
            ("tls_cert_file", cert_file.to_str().unwrap()),
            ("tls_priv_key_file", key_file.to_str().unwrap()),
        ],
    )
    .await;

    // A client that trusts the certificate gets the component's answer.
    let raw = https_get_trusting(&addr, &cert).await;
    assert!(raw.contains(HELLO), "{raw:?}");

    // Plain HTTP on that listener gets no HTTP answer.
    let plain = request(&addr, "GET", "localhost", "/", b"", Duration::from_secs(5)).await;
    assert!(plain.is_err(), "{plain:?}");

    // New files at the same paths (a renewal): served without a config change.
    let renewed = self_signed(&cert_file, &key_file);
    let raw = https_get_trusting(&addr, &renewed).await;
    assert!(raw.contains(HELLO), "{raw:?}");
}

/// Writes a new self-signed certificate for `localhost` and its key; returns the certificate.
fn self_signed(cert_file: &std::path::Path, key_file: &std::path::Path) -> rcgen::Certificate {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(cert_file, cert.pem()).unwrap();
    std::fs::write(key_file, key.serialize_pem()).unwrap();
    cert
}

/// `GET /` over HTTPS from a client that trusts only `cert`, until it answers 200 (within
/// 20 s); the raw response.
async fn https_get_trusting(addr: &str, cert: &rcgen::Certificate) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let get = || async {
        let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.ok()?;
        tls.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut raw = Vec::new();
        let _ = tls.read_to_end(&mut raw).await;
        let raw = String::from_utf8_lossy(&raw).into_owned();
        raw.starts_with("HTTP/1.1 200").then_some(raw)
    };
    lattice_testkit::wait::until_async(
        "an HTTPS answer",
        Duration::from_secs(20),
        Duration::from_millis(100),
        get,
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_forwarding_host_dies_ends_on_the_serving_host_within_seconds() {
    let nats = NatsServer::start().unwrap();
    let (ctl, edge_addr, mut edge, core) = edge_and_core(&nats.url()).await;
    let before = calls(&ctl, &core.id, "streamer").await;

    // A line a second for 25 s, forwarded by `edge`, which is killed after the first: the
    // instance on `core` ends (and is counted) long before its 25 s.
    let (_conn, _, _) = read_until(
        &edge_addr,
        "/s/stream/25/1000",
        "line 1 of 25",
        Duration::from_secs(10),
    )
    .await;
    edge.process.kill();
    let killed = Instant::now();
    instance_ended(&ctl, &core.id, "streamer", before).await;
    println!(
        "instance ended {:?} after its caller was killed",
        killed.elapsed()
    );
}
