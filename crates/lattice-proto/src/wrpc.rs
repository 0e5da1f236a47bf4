//! wRPC 0.0.1 over NATS, as names: subjects, queue groups and headers (Lattice's extensions
//! marked). The exchange that uses them is `lattice-wrpc`'s.
//!
//! - Invocations: `{prefix}.wrpc.0.0.1.{instance}.{func}`, where a component's prefix is
//!   `{lattice}.{component_id}` ([`component_prefix`]); every instance of the component
//!   subscribes to [`serve_wildcard`] in the queue group named by the prefix.
//! - Per call: the client's reply subject `Rc`, `Rc.results`, `Rc.whole`; the server's inbox
//!   `Rs`, `Rs.params`, `Rs.credit`; async values (a `wrpc:http` body) on nested paths,
//!   `Rs.params.0.0`, `Rc.results.0.0` ([`nested`]).

/// Header with the reason a server could not produce results (Lattice).
pub const ERROR_HEADER: &str = "lattice-error";
/// Header with the caller's remaining time budget in milliseconds (Lattice).
pub const TIMEOUT_HEADER: &str = "lattice-timeout-ms";
/// Header with the calling component's id (as wasmCloud sends it).
pub const SOURCE_HEADER: &str = "source-id";
/// Header with the link name the call went through (as wasmCloud sends it).
pub const LINK_HEADER: &str = "link-name";
/// W3C trace-context header.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// Header of the handshake with the id of the host that accepted the call (Lattice).
pub const SERVER_HEADER: &str = "lattice-host-id";
/// Header of an invocation with the id of the host that made it, for a server that outlives
/// its caller otherwise: a forwarded HTTP request's streams (Lattice).
pub const CALLER_HEADER: &str = "lattice-caller-host";
/// Header of a handshake that stands for the whole result stream: a failure, its reason in
/// [`ERROR_HEADER`] (Lattice).
pub const WHOLE_HEADER: &str = "lattice-whole";
/// Header of an invocation whose results are streamed, which the server must answer in the
/// usual steps (Lattice).
pub const STREAM_HEADER: &str = "lattice-stream";

/// Chunks a server streams after a call's value, at most this many ahead of the reader's
/// credit (Lattice).
pub const STREAM_WINDOW: u64 = 16;
/// Largest chunk of a streamed body or result stream (capped by the server's `max_payload`).
pub const STREAM_CHUNK: usize = 64 << 10;
/// Credit payload by which a reader that lost interest stops the stream (Lattice).
pub const CREDIT_STOP: &[u8] = b"stop";

/// The instance of [`HTTP_FUNC`]: how one host hands an HTTP request to a component on
/// another (Lattice; the encoding is `lattice_wrpc::http`'s).
pub const HTTP_INSTANCE: &str = "lattice:http/incoming-handler@0.2.0";
/// The function that serves a forwarded HTTP request.
pub const HTTP_FUNC: &str = "handle";

/// The instance wasmCloud v1 serves HTTP components as, and its http-server provider and
/// `wash call` call them with (wRPC's `wrpc:http` types; `lattice_wrpc::wrpc_http`). Its
/// function is `handle` too.
pub const WRPC_HTTP_INSTANCE: &str = "wrpc:http/incoming-handler@0.1.0";
/// Nested path of a `wrpc:http` request's or response's body (field 0 of the record that is
/// element 0 of the parameters or results).
pub const WRPC_HTTP_BODY_PATH: &str = "0.0";

/// The invocation prefix of component `id` in `lattice`, `{lattice}.{id}`, which is also the
/// queue group its instances serve in.
pub fn component_prefix(lattice: &str, id: &str) -> String {
    let mut s = String::with_capacity(lattice.len() + id.len() + 1);
    s.push_str(lattice);
    s.push('.');
    s.push_str(id);
    s
}

/// The queue group in which a component's `wasmcloud:messaging` subscriptions take turns,
/// `{lattice}.{id}.messaging`: each message reaches one instance (Lattice).
pub fn messaging_group(lattice: &str, id: &str) -> String {
    format!("{lattice}.{id}.messaging")
}

/// The protocol segment of invocation subjects.
pub const PROTOCOL: &str = "wrpc.0.0.1";

/// `{prefix}.wrpc.0.0.1.{instance}.{func}` (`instance` empty for root-level functions).
pub fn invocation(prefix: &str, instance: &str, func: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + instance.len() + func.len() + 16);
    if !prefix.is_empty() {
        s.push_str(prefix);
        s.push('.');
    }
    s.push_str(PROTOCOL);
    s.push('.');
    if !instance.is_empty() {
        s.push_str(instance);
        s.push('.');
    }
    s.push_str(func);
    s
}

/// The wildcard a server subscribes to for every function under `prefix`.
pub fn serve_wildcard(prefix: &str) -> String {
    format!("{prefix}.{PROTOCOL}.>")
}

/// Splits a received invocation subject into `(instance, func)`. The instance may hold dots
/// (`wasi:keyvalue/store@0.2.0-draft`); function names never do.
pub fn parse_invocation<'a>(prefix: &str, subject: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = subject.strip_prefix(prefix)?.strip_prefix('.')?;
    let rest = rest.strip_prefix(PROTOCOL)?.strip_prefix('.')?;
    match rest.rsplit_once('.') {
        Some((instance, func)) if !func.is_empty() => Some((instance, func)),
        None if !rest.is_empty() => Some(("", rest)),
        _ => None,
    }
}

pub fn params(inbox: &str) -> String {
    suffixed(inbox, ".params")
}

pub fn results(inbox: &str) -> String {
    suffixed(inbox, ".results")
}

/// The subject of the value at nested `path` (`0.1`, ...) of a parameter or result stream:
/// `{stream}.{path}`, as wRPC indexes async values.
pub fn nested(stream: &str, path: &str) -> String {
    let mut s = String::with_capacity(stream.len() + path.len() + 1);
    s.push_str(stream);
    s.push('.');
    s.push_str(path);
    s
}

/// `{inbox}{suffix}`, for subjects made per call: one allocation, no formatting machinery
/// (`format!` showed in profiles of a served call).
fn suffixed(inbox: &str, suffix: &str) -> String {
    let mut s = String::with_capacity(inbox.len() + suffix.len());
    s.push_str(inbox);
    s.push_str(suffix);
    s
}

/// Where a Lattice server sends a short call's whole result stream, to a client that asked
/// for it (see `lattice_wrpc::transport`).
pub fn whole(inbox: &str) -> String {
    suffixed(inbox, ".whole")
}

/// Where a client returns credit for streamed result chunks (a Lattice extension; see
/// `lattice_wrpc::transport::Client::invoke_streaming`).
pub fn credit(server_inbox: &str) -> String {
    suffixed(server_inbox, ".credit")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_match_the_upstream_scheme() {
        assert_eq!(
            invocation("default.calc", "lattice:examples/calc@0.1.0", "add"),
            "default.calc.wrpc.0.0.1.lattice:examples/calc@0.1.0.add"
        );
        assert_eq!(invocation("", "", "hello"), "wrpc.0.0.1.hello");
        let s = invocation("lat.kv", "wasi:keyvalue/store@0.2.0-draft", "get");
        assert_eq!(
            parse_invocation("lat.kv", &s),
            Some(("wasi:keyvalue/store@0.2.0-draft", "get"))
        );
        assert_eq!(
            parse_invocation("lat.kv", "lat.kv.wrpc.0.0.1.root"),
            Some(("", "root"))
        );
        assert_eq!(parse_invocation("lat.kv", "lat.other.wrpc.0.0.1.x.y"), None);
        assert_eq!(params("_INBOX.a"), "_INBOX.a.params");
        assert_eq!(results("_INBOX.a"), "_INBOX.a.results");
    }
}
