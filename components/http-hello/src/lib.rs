//! A `wasi:http` component: the trivial hello of the ingress benchmark (served the same by
//! Lattice and by `wasmtime serve`), plus the paths the ingress tests need.
//!
//! - `…/echo`: the request body back, streamed chunk by chunk;
//! - `…/trap`: panics (the host answers 500);
//! - `…/sleep/MS`: waits MS milliseconds, then answers;
//! - `…/fetch/AUTHORITY/PATH`: a GET of `http://AUTHORITY/PATH` (outgoing HTTP), answering its
//!   status and body, or 502 with the error the host gave;
//! - `…/stream/N/MS`: N lines (`line I of N`), each flushed, MS milliseconds apart;
//! - `…/bytes/N`: N bytes, byte I being `I % 251`, written in 64 KiB pieces;
//! - `…/sum`: reads the whole request body, then answers `N bytes, sum S` (S the bytes' sum);
//! - anything else: `Hello from Lattice!`.

use std::io::{Read as _, Write as _};

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};

wasip2::http::proxy::export!(Hello);

struct Hello;

fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let resp = OutgoingResponse::new(Fields::new());
    let _ = resp.set_status_code(status);
    let outgoing = resp.body().expect("response body");
    ResponseOutparam::set(out, Ok(resp));
    let mut w = outgoing.write().expect("body stream");
    w.write_all(body).expect("write body");
    w.flush().expect("flush body");
    drop(w);
    OutgoingBody::finish(outgoing, None).expect("finish body");
}

fn echo(req: IncomingRequest, out: ResponseOutparam) {
    let incoming = req.consume().expect("request body");
    let mut r = incoming.stream().expect("request stream");
    let resp = OutgoingResponse::new(Fields::new());
    let outgoing = resp.body().expect("response body");
    ResponseOutparam::set(out, Ok(resp));
    let mut w = outgoing.write().expect("body stream");
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = std::io::Read::read(&mut r, &mut buf).expect("read body");
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n]).expect("write body");
    }
    w.flush().expect("flush body");
    drop(w);
    drop(r);
    OutgoingBody::finish(outgoing, None).expect("finish body");
}

/// A 200 whose body `write` produces, flushing as it likes.
fn streamed(out: ResponseOutparam, write: impl FnOnce(&mut dyn std::io::Write)) {
    let resp = OutgoingResponse::new(Fields::new());
    let outgoing = resp.body().expect("response body");
    ResponseOutparam::set(out, Ok(resp));
    let mut w = outgoing.write().expect("body stream");
    write(&mut w);
    w.flush().expect("flush body");
    drop(w);
    OutgoingBody::finish(outgoing, None).expect("finish body");
}

fn lines(spec: &str, out: ResponseOutparam) {
    let (n, ms) = spec.split_once('/').unwrap_or((spec, "0"));
    let (n, ms): (u32, u64) = (n.parse().unwrap_or(1), ms.parse().unwrap_or(0));
    streamed(out, |w| {
        for i in 1..=n {
            if i > 1 {
                wasip2::clocks::monotonic_clock::subscribe_duration(ms * 1_000_000).block();
            }
            w.write_all(format!("line {i} of {n}\n").as_bytes())
                .expect("write body");
            w.flush().expect("flush body");
        }
    });
}

fn bytes(n: &str, out: ResponseOutparam) {
    let n: usize = n.parse().unwrap_or(0);
    streamed(out, |w| {
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut i = 0;
        while i < n {
            buf.clear();
            buf.extend((i..n.min(i + 64 * 1024)).map(|j| (j % 251) as u8));
            w.write_all(&buf).expect("write body");
            i += buf.len();
        }
    });
}

fn sum(req: IncomingRequest, out: ResponseOutparam) {
    let incoming = req.consume().expect("request body");
    let mut r = incoming.stream().expect("request stream");
    let (mut n, mut total) = (0u64, 0u64);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let got = std::io::Read::read(&mut r, &mut buf).expect("read body");
        if got == 0 {
            break;
        }
        n += got as u64;
        total = buf[..got]
            .iter()
            .fold(total, |t, b| t.wrapping_add(u64::from(*b)));
    }
    respond(out, 200, format!("{n} bytes, sum {total}\n").as_bytes());
}

fn fetch(target: &str, out: ResponseOutparam) {
    let (authority, path) = target.split_once('/').unwrap_or((target, ""));
    let req = OutgoingRequest::new(Fields::new());
    let _ = req.set_method(&Method::Get);
    let _ = req.set_scheme(Some(&Scheme::Http));
    let _ = req.set_authority(Some(authority));
    let _ = req.set_path_with_query(Some(&format!("/{path}")));
    let body = req.body().expect("request body");
    OutgoingBody::finish(body, None).expect("finish request body");
    let answer = match outgoing_handler::handle(req, None) {
        Err(e) => Err(format!("{e:?}")),
        Ok(future) => {
            future.subscribe().block();
            match future.get() {
                Some(Ok(Ok(resp))) => Ok(resp),
                Some(Ok(Err(e))) => Err(format!("{e:?}")),
                other => Err(format!("no response: {other:?}")),
            }
        }
    };
    match answer {
        Err(e) => respond(out, 502, format!("outgoing request failed: {e}\n").as_bytes()),
        Ok(resp) => {
            let status = resp.status();
            let body = resp.consume().expect("response body");
            let mut bytes = Vec::new();
            body.stream()
                .expect("response stream")
                .read_to_end(&mut bytes)
                .expect("read response");
            respond(out, status, &bytes);
        }
    }
}

impl wasip2::exports::http::incoming_handler::Guest for Hello {
    fn handle(req: IncomingRequest, out: ResponseOutparam) {
        let path = req.path_with_query().unwrap_or_default();
        // Matched at the end of the path: a route's prefix (`/app/echo`) stays in it.
        if path.ends_with("/echo") {
            echo(req, out);
        } else if path.ends_with("/sum") {
            sum(req, out);
        } else if path.ends_with("/trap") {
            panic!("asked to trap");
        } else if let Some((_, ms)) = path.split_once("/sleep/") {
            let ms: u64 = ms.parse().unwrap_or(0);
            wasip2::clocks::monotonic_clock::subscribe_duration(ms * 1_000_000).block();
            respond(out, 200, format!("slept {ms} ms\n").as_bytes());
        } else if let Some((_, spec)) = path.split_once("/stream/") {
            lines(spec, out);
        } else if let Some((_, n)) = path.split_once("/bytes/") {
            bytes(n, out);
        } else if let Some((_, target)) = path.split_once("/fetch/") {
            fetch(target, out);
        } else {
            respond(out, 200, b"Hello from Lattice!\n");
        }
    }
}
