//! wRPC subjects: `{prefix}.wrpc.0.0.1.{instance}.{func}` and the inbox-derived ones.

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

/// `{inbox}{suffix}`, for subjects made per call: one allocation, no formatting machinery
/// (`format!` showed in profiles of a served call).
fn suffixed(inbox: &str, suffix: &str) -> String {
    let mut s = String::with_capacity(inbox.len() + suffix.len());
    s.push_str(inbox);
    s.push_str(suffix);
    s
}

/// Where a Lattice server sends a short call's whole result stream, to a client that asked
/// for it (see [`crate::transport`]).
pub fn whole(inbox: &str) -> String {
    suffixed(inbox, ".whole")
}

/// Where a client returns credit for streamed result chunks (a Lattice extension; see
/// [`crate::transport::Client::invoke_streaming`]).
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
