//! An OTLP/HTTP receiver on loopback: it takes what hosts export to `/v1/traces` and
//! `/v1/metrics` (protobuf, decoded with the `opentelemetry-proto` types) and keeps every span
//! and metric data point for a test to read.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;
use prost::Message as _;

use crate::Result;

/// A span as received, ids in lowercase hex.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// OTLP's `SpanKind` number (2 server, 3 client).
    pub kind: i32,
    pub attributes: BTreeMap<String, String>,
    /// The exporting resource's attributes (`service.instance.id`: the host).
    pub resource: BTreeMap<String, String>,
}

/// A metric data point as received: a histogram's count, or a sum's or gauge's value.
#[derive(Debug, Clone)]
pub struct ReceivedPoint {
    pub metric: String,
    pub value: f64,
    pub attributes: BTreeMap<String, String>,
    pub resource: BTreeMap<String, String>,
}

/// What arrived, kept for the test.
#[derive(Default)]
struct Received {
    spans: Vec<ReceivedSpan>,
    points: Vec<ReceivedPoint>,
    requests: u64,
}

/// The receiver; it stops accepting when dropped.
pub struct OtlpReceiver {
    port: u16,
    /// Answering 503 to everything: a collector that is down but reachable.
    failing: Arc<std::sync::atomic::AtomicBool>,
    received: Arc<Mutex<Received>>,
}

impl OtlpReceiver {
    /// A receiver that answers every export with 503 (and keeps nothing), counting them.
    pub fn start_failing() -> Result<Self> {
        let r = Self::start()?;
        r.failing.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(r)
    }

    pub fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let received = Arc::new(Mutex::new(Received::default()));
        let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (r, f) = (received.clone(), failing.clone());
        thread::Builder::new()
            .name("otlp-receiver".into())
            .spawn(move || {
                for conn in listener.incoming().flatten() {
                    let (r, f) = (r.clone(), f.clone());
                    let _ = thread::Builder::new()
                        .name("otlp-conn".into())
                        .spawn(move || serve(conn, &r, &f));
                }
            })?;
        Ok(Self {
            port,
            failing,
            received,
        })
    }

    /// A receiver speaking OTLP/gRPC instead (the collector's `TraceService` and
    /// `MetricsService`), on a thread and runtime of its own.
    pub fn start_grpc() -> Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let received = Arc::new(Mutex::new(Received::default()));
        let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sink = Grpc(received.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        thread::Builder::new()
            .name("otlp-grpc-receiver".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let incoming = tokio_stream_incoming(listener);
                    let _ = tonic::transport::Server::builder()
                        .add_service(TraceServiceServer::new(sink.clone()))
                        .add_service(MetricsServiceServer::new(sink))
                        .serve_with_incoming(incoming)
                        .await;
                })
            })?;
        Ok(Self {
            port,
            failing,
            received,
        })
    }

    /// The base URL to export to (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.received
            .lock()
            .map(|r| r.spans.clone())
            .unwrap_or_default()
    }

    /// Every metric data point received so far (each export repeats the cumulative values).
    pub fn points(&self) -> Vec<ReceivedPoint> {
        self.received
            .lock()
            .map(|r| r.points.clone())
            .unwrap_or_default()
    }

    /// How many export requests arrived (decoded or not).
    pub fn requests(&self) -> u64 {
        self.received.lock().map(|r| r.requests).unwrap_or(0)
    }
}

/// Serves one keep-alive connection: each `POST` with a `Content-Length` body is decoded and
/// answered 200 (an empty `ExportTraceServiceResponse`), anything undecodable 400; a failing
/// receiver answers 503.
fn serve(conn: TcpStream, received: &Mutex<Received>, failing: &std::sync::atomic::AtomicBool) {
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    loop {
        let mut length = 0usize;
        let mut path = String::new();
        let mut line = String::new();
        // The request line, then headers up to the blank line.
        let mut first = true;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let l = line.trim_end();
            if l.is_empty() && !first {
                break;
            }
            if first {
                path = l.split(' ').nth(1).unwrap_or_default().to_string();
            }
            first = false;
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let Ok(mut r) = received.lock() else {
            return;
        };
        r.requests += 1;
        let status = if failing.load(std::sync::atomic::Ordering::SeqCst) {
            "503 Service Unavailable"
        } else if path.ends_with("/v1/metrics") {
            match ExportMetricsServiceRequest::decode(body.as_slice()) {
                Ok(req) => {
                    r.points.extend(points(req));
                    "200 OK"
                }
                Err(_) => "400 Bad Request",
            }
        } else {
            match ExportTraceServiceRequest::decode(body.as_slice()) {
                Ok(req) => {
                    r.spans.extend(flatten(req));
                    "200 OK"
                }
                Err(_) => "400 Bad Request",
            }
        };
        drop(r);
        let reply = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
        );
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn flatten(req: ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for rs in req.resource_spans {
        let resource = rs
            .resource
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for span in ss.spans {
                out.push(ReceivedSpan {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    kind: span.kind,
                    attributes: attributes(&span.attributes),
                    resource: resource.clone(),
                });
            }
        }
    }
    out
}

fn points(req: ExportMetricsServiceRequest) -> Vec<ReceivedPoint> {
    let mut out = Vec::new();
    for rm in req.resource_metrics {
        let resource = rm
            .resource
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        for sm in rm.scope_metrics {
            for m in sm.metrics {
                let mut add = |value: f64, attrs: &[KeyValue]| {
                    out.push(ReceivedPoint {
                        metric: m.name.clone(),
                        value,
                        attributes: attributes(attrs),
                        resource: resource.clone(),
                    })
                };
                let number = |v: &Option<Number>| match v {
                    Some(Number::AsDouble(d)) => *d,
                    Some(Number::AsInt(i)) => *i as f64,
                    None => 0.0,
                };
                match &m.data {
                    Some(Data::Histogram(h)) => {
                        for p in &h.data_points {
                            add(p.count as f64, &p.attributes);
                        }
                    }
                    Some(Data::Sum(sum)) => {
                        for p in &sum.data_points {
                            add(number(&p.value), &p.attributes);
                        }
                    }
                    Some(Data::Gauge(g)) => {
                        for p in &g.data_points {
                            add(number(&p.value), &p.attributes);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                Some(Value::BoolValue(b)) => b.to_string(),
                Some(Value::IntValue(i)) => i.to_string(),
                Some(Value::DoubleValue(d)) => d.to_string(),
                Some(other) => format!("{other:?}"),
                None => String::new(),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The gRPC services, keeping what they receive like the HTTP receiver does.
#[derive(Clone)]
struct Grpc(Arc<Mutex<Received>>);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> std::result::Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        if let Ok(mut r) = self.0.lock() {
            r.requests += 1;
            r.spans.extend(flatten(request.into_inner()));
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> std::result::Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        if let Ok(mut r) = self.0.lock() {
            r.requests += 1;
            r.points.extend(points(request.into_inner()));
        }
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// The accepted connections of `listener`, as the stream tonic serves.
fn tokio_stream_incoming(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |l| async move {
        let accepted = l.accept().await.map(|(s, _)| s);
        Some((accepted, l))
    })
}
