//! The wRPC exchange end to end, client and server of this crate over a real nats-server:
//! results, chunked parameters, streamed results, and every way a call fails, each with its
//! kind.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use lattice_testkit::NatsServer;
use lattice_wrpc::transport::{self, CallState, Client, Invocation, Watchdog};
use lattice_wrpc::{CallError, CallErrorKind};
use tokio::time::Instant;
use wasm_wave::value::{Type, Value};
use wasm_wave::wasm::WasmValue;

const INSTANCE: &str = "test:echo/echo@0.1.0";

fn nats_server() -> NatsServer {
    NatsServer::start().expect("nats-server (set LATTICE_NATS_SERVER_BIN or run scripts/test)")
}

fn encode(types: &[Type], values: &[Value]) -> Bytes {
    let mut out = Vec::new();
    lattice_wrpc::encode_values(types, values, &mut out).expect("encodable");
    Bytes::from(out)
}

/// Serves every invocation under `prefix` with `handle`, each in a task of its own, on a
/// connection of its own; subscribed on the server before it returns.
async fn serve<F, Fut>(nats: &NatsServer, prefix: &'static str, handle: F)
where
    F: Fn(Invocation) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let conn = Arc::new(async_nats::connect(nats.url()).await.unwrap());
    let mut sub = conn
        .subscribe(lattice_wrpc::subject::serve_wildcard(prefix))
        .await
        .unwrap();
    lattice_nats::sync_with_server(&conn).await.unwrap();
    let handle = Arc::new(handle);
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            let Ok(inv) = transport::accept(prefix, &conn, msg, Duration::from_secs(30)) else {
                continue;
            };
            tokio::spawn(handle(inv.with_server_id("test-server".into())));
        }
    });
}

async fn client(nats: &NatsServer) -> Client {
    Client::new(async_nats::connect(nats.url()).await.unwrap())
}

/// One call of `func` with `params` of `types`, results of `results`, within `budget`.
async fn call(
    client: &Client,
    prefix: &str,
    func: &str,
    types: &[Type],
    params: &[Value],
    results: &[Type],
    budget: Duration,
) -> Result<Vec<Value>, CallError> {
    let results = results.to_vec();
    client
        .invoke(
            lattice_wrpc::transport::Call::new(
                prefix,
                INSTANCE,
                func,
                encode(types, params),
                Instant::now() + budget,
            ),
            move |b| lattice_wrpc::decode_values::<Value>(&results, b),
        )
        .await
}

/// A call of `func` taking and returning one string, with `"x"`: for calls whose failure
/// is what the test looks at.
async fn string_call(
    client: &Client,
    prefix: &str,
    func: &str,
    budget: Duration,
) -> Result<Vec<Value>, CallError> {
    let x = Value::make_string("x".into());
    call(
        client,
        prefix,
        func,
        &[Type::STRING],
        &[x],
        &[Type::STRING],
        budget,
    )
    .await
}

/// An echo server: `reverse(s: string) -> string` and `len(s: string) -> u32`.
async fn echo(mut inv: Invocation) {
    let answer = match inv.func.as_str() {
        "reverse" | "len" => inv
            .read_params(|b| lattice_wrpc::decode_values::<Value>(&[Type::STRING], b))
            .await
            .map(|v| {
                let s = v[0].unwrap_string();
                if inv.func == "len" {
                    encode(&[Type::U32], &[Value::make_u32(s.len() as u32)])
                } else {
                    let r: String = s.chars().rev().collect();
                    encode(&[Type::STRING], &[Value::make_string(r.into())])
                }
            }),
        _ => Err(CallError::new(CallErrorKind::Rejected, "no such function")),
    };
    let sent = match answer {
        Ok(results) => inv.respond(results).await,
        Err(e) => Err(e),
    };
    if let Err(e) = sent {
        inv.fail(&e).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_gets_its_results() {
    let nats = nats_server();
    serve(&nats, "t.echo", echo).await;
    let client = client(&nats).await;
    let s = Value::make_string("lattice".into());
    let out = call(
        &client,
        "t.echo",
        "reverse",
        &[Type::STRING],
        &[s],
        &[Type::STRING],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(out, vec![Value::make_string("ecittal".into())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_past_max_payload_arrive_whole() {
    let nats = nats_server();
    serve(&nats, "t.echo", echo).await;
    let client = client(&nats).await;
    // Three times nats-server's default max_payload (1 MiB): sent in chunks.
    let n = 3 << 20;
    let text: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let out = call(
        &client,
        "t.echo",
        "len",
        &[Type::STRING],
        &[Value::make_string(text.into())],
        &[Type::U32],
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(out, vec![Value::make_u32(n as u32)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_nobody_serves_fails_with_no_responders() {
    let nats = nats_server();
    let client = client(&nats).await;
    let e = string_call(&client, "t.nobody", "reverse", Duration::from_secs(10))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), CallErrorKind::NoResponders, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_failure_reaches_the_caller_with_its_kind() {
    let nats = nats_server();
    serve(&nats, "t.fail", |mut inv: Invocation| async move {
        let kind = match inv.func.as_str() {
            "busy" => CallErrorKind::Busy,
            // A kind only a host knows goes out as one every peer knows.
            _ => CallErrorKind::MemoryLimit,
        };
        inv.fail(&CallError::new(kind, "said the server")).await;
    })
    .await;
    let client = client(&nats).await;
    for (func, kind) in [
        ("busy", CallErrorKind::Busy),
        ("grow", CallErrorKind::Trapped),
    ] {
        let e = string_call(&client, "t.fail", func, Duration::from_secs(10))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
        assert_eq!(e.message(), "said the server");
    }
    // An unknown function, as the echo server answers it.
    serve(&nats, "t.echo", echo).await;
    let e = string_call(&client, "t.echo", "nope", Duration::from_secs(10))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), CallErrorKind::Rejected, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_ends_at_its_deadline_when_the_server_never_answers() {
    let nats = nats_server();
    let (held, mut hold) = tokio::sync::mpsc::unbounded_channel::<Invocation>();
    serve(&nats, "t.silent", move |inv| {
        // Keeps the invocation (and says nothing) for the rest of the test.
        let _ = held.send(inv);
        async {}
    })
    .await;
    let client = client(&nats).await;
    let e = string_call(&client, "t.silent", "reverse", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), CallErrorKind::DeadlineExceeded, "{e}");
    assert!(hold.recv().await.is_some(), "the server got the call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_host_is_gone_ends_outcome_unknown_before_its_deadline() {
    let nats = nats_server();
    let (held, mut hold) = tokio::sync::mpsc::unbounded_channel::<Invocation>();
    serve(&nats, "t.dying", move |mut inv| {
        let held = held.clone();
        async move {
            // Accepted, then never answered: as a host that died mid-call.
            let _ = inv.acknowledge().await;
            let _ = held.send(inv);
        }
    })
    .await;
    let nats_client = async_nats::connect(nats.url()).await.unwrap();
    let watchdog = Watchdog {
        min_timeout: Duration::from_secs(2),
        probe_every: Duration::from_millis(50),
        // The liveness check a host would answer: here, the host is gone.
        probe: Arc::new(|_host, _call, _timeout| Box::pin(async { CallState::HostGone })),
    };
    let client = Client::with_watchdog(nats_client, watchdog);
    let e = string_call(&client, "t.dying", "reverse", Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), CallErrorKind::OutcomeUnknown, "{e}");
    assert!(hold.recv().await.is_some(), "the server took the call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_results_arrive_whole_and_in_order() {
    let nats = nats_server();
    const CHUNKS: usize = 200;
    serve(&nats, "t.stream", |mut inv: Invocation| async move {
        if inv
            .read_params(|b| lattice_wrpc::decode_values::<Value>(&[Type::STRING], b))
            .await
            .is_err()
        {
            return;
        }
        // More chunks than the credit window: the server must wait for the reader.
        let body = futures::stream::iter(
            (0..CHUNKS).map(|i| Ok(Bytes::from(format!("chunk {i:04};").into_bytes()))),
        );
        let value = encode(&[Type::U32], &[Value::make_u32(CHUNKS as u32)]);
        if let Err(e) = inv.respond_streaming(value, body).await {
            inv.fail(&e).await;
        }
    })
    .await;
    let client = client(&nats).await;
    let (value, mut rest) = client
        .invoke_streaming(
            lattice_wrpc::transport::Call::new(
                "t.stream",
                INSTANCE,
                "chunks",
                encode(&[Type::STRING], &[Value::make_string("go".into())]),
                Instant::now() + Duration::from_secs(30),
            ),
            |b| lattice_wrpc::decode_values::<Value>(&[Type::U32], b),
            None,
        )
        .await
        .unwrap();
    assert_eq!(value, vec![Value::make_u32(CHUNKS as u32)]);
    let mut got = Vec::new();
    while let Some(chunk) = rest.next_chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    let want: String = (0..CHUNKS).map(|i| format!("chunk {i:04};")).collect();
    assert_eq!(String::from_utf8(got).unwrap(), want);
}

/// `Invocation::written` resolves only once the results are on the socket: the server's
/// runtime stops right after it, and the caller still gets them. Without the wait they would
/// sit in the client's queue with no task left to write them.
#[test]
fn a_served_calls_results_are_on_the_wire_once_written_resolves() {
    use futures::StreamExt;
    use lattice_wrpc::transport::{self, TIMEOUT_HEADER};
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let server_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (server, mut sub) = server_rt.block_on(async {
        let server = std::sync::Arc::new(async_nats::connect(&url).await.unwrap());
        let sub = server
            .subscribe(lattice_wrpc::subject::serve_wildcard("t"))
            .await
            .unwrap();
        server.flush().await.unwrap();
        (server, sub)
    });
    // The caller lives on a thread and runtime of its own, so it runs while the server's
    // runtime is stopped.
    let (got_tx, got_rx) = std::sync::mpsc::channel();
    let caller = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let caller = async_nats::connect(&url).await.unwrap();
            let mut replies = caller.subscribe("reply.>").await.unwrap();
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(TIMEOUT_HEADER, "5000");
            caller
                .publish_with_reply_and_headers(
                    lattice_wrpc::subject::invocation("t", "i", "f"),
                    "reply.1",
                    headers,
                    bytes::Bytes::new(),
                )
                .await
                .unwrap();
            let reply = tokio::time::timeout(Duration::from_secs(5), replies.next()).await;
            let _ = got_tx.send(reply.ok().flatten().map(|m| m.payload));
        })
    });
    server_rt.block_on(async {
        let msg = sub.next().await.unwrap();
        let mut inv = transport::accept("t", &server, msg, Duration::from_secs(5)).unwrap();
        inv.respond(bytes::Bytes::from_static(b"ok")).await.unwrap();
        inv.written().await;
    });
    // Nothing drives the server's connection from here on.
    let got = got_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got.as_deref(), Some(&b"ok"[..]), "the results never left");
    caller.join().unwrap();
}

/// A plain call's replies are read off the client's inbox by the calls waiting for them
/// (see `lattice_wrpc::transport`'s `Replies`): replies that come in reverse order reach
/// their own calls, and a call that gives up while it reads for the others leaves the
/// reading to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_get_their_own_replies_in_any_order_and_one_giving_up_stalls_none() {
    use futures::StreamExt;
    use lattice_wrpc::transport;
    const CALLS: i32 = 8;
    let nats = NatsServer::start().unwrap();
    let server = std::sync::Arc::new(async_nats::connect(nats.url()).await.unwrap());
    let mut sub = server
        .subscribe(lattice_wrpc::subject::serve_wildcard("t"))
        .await
        .unwrap();
    server.flush().await.unwrap();
    let client = transport::Client::new(async_nats::connect(nats.url()).await.unwrap());
    let types = [wasm_wave::value::Type::S32];
    let call = |n: i32, budget: Duration| {
        let client = client.clone();
        let mut params = Vec::new();
        lattice_wrpc::encode_values(&types, &[wasm_wave::value::Value::from(n)], &mut params)
            .unwrap();
        let types = types.clone();
        async move {
            client
                .invoke(
                    lattice_wrpc::transport::Call::new(
                        "t",
                        "i",
                        "echo",
                        params.into(),
                        tokio::time::Instant::now() + budget,
                    ),
                    |b| lattice_wrpc::decode_values::<wasm_wave::value::Value>(&types, b),
                )
                .await
        }
    };
    // Call 0 waits first, so it most likely reads for all; it gives up before any reply.
    let (gave_up_tx, gave_up) = tokio::sync::oneshot::channel();
    let first = tokio::spawn({
        let call = call(0, Duration::from_millis(300));
        async move {
            let r = call.await;
            let _ = gave_up_tx.send(());
            r
        }
    });
    let mut invocations = vec![sub.next().await.unwrap()];
    let rest: Vec<_> = (1..CALLS)
        .map(|n| tokio::spawn(call(n, Duration::from_secs(10))))
        .collect();
    while invocations.len() < CALLS as usize {
        invocations.push(sub.next().await.unwrap());
    }
    let first = first.await.unwrap();
    gave_up.await.unwrap();
    assert_eq!(
        first.unwrap_err().kind(),
        lattice_wrpc::CallErrorKind::DeadlineExceeded
    );
    // Every call echoed back, the last to arrive first (call 0's reply is late: dropped).
    for msg in invocations.into_iter().rev() {
        let mut inv = transport::accept("t", &server, msg, Duration::from_secs(10)).unwrap();
        let params = inv
            .read_params(|b| lattice_wrpc::decode_values::<wasm_wave::value::Value>(&types, b))
            .await
            .unwrap();
        let mut out = Vec::new();
        lattice_wrpc::encode_values(&types, &params, &mut out).unwrap();
        inv.respond(out.into()).await.unwrap();
    }
    for (n, call) in (1..CALLS).zip(rest) {
        let got = call.await.unwrap().unwrap();
        assert_eq!(wasm_wave::to_string(&got[0]).unwrap(), n.to_string());
    }
}
