//! The demo's front end: answers HTTP with a greeting from the greeter component it is linked
//! to (over wRPC when the greeter runs on another host).
//!
//! `GET /?name=NAME` (default `world`).

use std::io::Write as _;

use wasip2::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

wit_bindgen::generate!({ path: "../wit", world: "demo-web-component", generate_all });

wasip2::http::proxy::export!(Web);

struct Web;

fn name_of(path: &str) -> String {
    path.split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("name="))
        .filter(|n| !n.is_empty())
        .unwrap_or("world")
        .to_string()
}

impl wasip2::exports::http::incoming_handler::Guest for Web {
    fn handle(req: IncomingRequest, out: ResponseOutparam) {
        let name = name_of(&req.path_with_query().unwrap_or_default());
        let greeting = lattice::examples::greeter::greet(&name);
        let headers = Fields::new();
        let _ = headers.append("content-type", b"text/plain; charset=utf-8");
        let resp = OutgoingResponse::new(headers);
        let body = resp.body().expect("response body");
        ResponseOutparam::set(out, Ok(resp));
        let mut w = body.write().expect("body stream");
        w.write_all(format!("{greeting}\n").as_bytes()).expect("write body");
        w.flush().expect("flush body");
        drop(w);
        OutgoingBody::finish(body, None).expect("finish body");
    }
}
