//! What a component may reach: the link and config names that grant built-in capabilities,
//! and the NATS subject rules every grant is checked against.
//!
//! A component gets nothing by default. Messaging and key-value are granted by links, as on
//! wasmCloud v1 (where each was a provider that a link had to name):
//! - publishing and requests: a link from the component for `wasmcloud:messaging/consumer`
//!   to [`MESSAGING`]; its target config may narrow the subjects ([`PUBLISH`]);
//! - receiving: a link from [`MESSAGING`] to the component for `wasmcloud:messaging/handler`
//!   whose source config lists [`SUBSCRIPTIONS`];
//! - key-value: a link from the component for `wasi:keyvalue` to [`KEYVALUE`] whose target
//!   config names the bucket ([`BUCKET`]) or buckets ([`BUCKETS`]).
//!
//! Whatever a link says, subjects that belong to the lattice's own machinery are never
//! reachable through a host ([`reserved`]): the control interface and events, JetStream and
//! the server's `$` subjects, wRPC invocations of any lattice, and inboxes (but for the reply
//! subject of a message the component was handed).
//!
//! Pure data and matching; the host's `grants` module resolves links into these.

use std::fmt;

/// Target (for sending) and source (for receiving) id of the built-in messaging capability.
pub const MESSAGING: &str = "messaging";
/// Target id of the built-in key-value capability.
pub const KEYVALUE: &str = "keyvalue";

/// Source-config key of a `messaging → component` link: subjects to subscribe, comma-separated
/// (wasmCloud's messaging-nats key).
pub const SUBSCRIPTIONS: &str = "subscriptions";
/// Target-config key of a `component → messaging` link: the subjects (patterns) the component
/// may publish and send requests to, comma-separated. Absent: any subject that is not
/// reserved.
pub const PUBLISH: &str = "publish";
/// Messaging link config key (wasmCloud's): the NATS servers of a connection of the
/// component's own, comma-separated, instead of the host's.
pub const CLUSTER_URIS: &str = "cluster_uris";
/// Messaging link config key (wasmCloud's): the user JWT of that connection. Not supported
/// yet: a link that sets it is refused, not connected without it.
pub const CLIENT_JWT: &str = "client_jwt";
/// Messaging link config key (wasmCloud's): the user nkey seed signing for [`CLIENT_JWT`].
/// Not supported yet, as [`CLIENT_JWT`].
pub const CLIENT_SEED: &str = "client_seed";
/// Target-config key of a `component → keyvalue` link: the one bucket every `open` reaches.
pub const BUCKET: &str = "bucket";
/// Target-config key of a `component → keyvalue` link: buckets that `open` may name,
/// comma-separated.
pub const BUCKETS: &str = "buckets";

/// Header of a reply saying the request was refused by the service, not answered by it (the
/// NATS services convention); [`SERVICE_ERROR_CODE`] holds its HTTP-like code.
pub const SERVICE_ERROR: &str = "Nats-Service-Error";
/// Code of a [`SERVICE_ERROR`] reply: `503` when a component is at its bound of messages.
pub const SERVICE_ERROR_CODE: &str = "Nats-Service-Error-Code";

/// How many subjects one component may be subscribed to on one host.
pub const MAX_SUBSCRIPTIONS: usize = 64;

/// Why a subject is closed to components.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// `wasmbus.>`: the control interface and lattice events.
    Control,
    /// A subject whose first token starts with `$`: JetStream, KV, object store, system.
    Server,
    /// `_INBOX.>`: replies to other parties' requests.
    Inbox,
    /// A wRPC invocation (`wrpc.>` up to two tokens deep), of any lattice.
    Wrpc,
}

impl fmt::Display for Reserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reserved::Control => "the control interface and events (wasmbus.>)",
            Reserved::Server => "the server's and JetStream's subjects ($…)",
            Reserved::Inbox => "other parties' reply inboxes (_INBOX.>)",
            Reserved::Wrpc => "wRPC invocations (…wrpc.>)",
        })
    }
}

/// The reserved space `subject` lies in, if any. For a subscription pattern this is read
/// token by token, wildcards as written: `wasmbus.>` is reserved, `*.ctl.>` is not (a
/// subscription may match reserved subjects through a wildcard; such messages are filtered
/// out when they arrive, see [`reserved`] on each delivered subject).
pub fn reserved(subject: &str) -> Option<Reserved> {
    let mut tokens = subject.split('.');
    let first = tokens.next().unwrap_or("");
    if first.starts_with('$') {
        return Some(Reserved::Server);
    }
    match first {
        "wasmbus" => return Some(Reserved::Control),
        "_INBOX" => return Some(Reserved::Inbox),
        _ => {}
    }
    // `wrpc` as the first, second or third token of a longer subject: `wrpc.0.0.1.…` or
    // `{lattice}.{component}.wrpc.…`.
    let rest: Vec<&str> = std::iter::once(first).chain(tokens).collect();
    rest.iter()
        .take(3)
        .enumerate()
        .any(|(i, t)| *t == "wrpc" && i + 1 < rest.len())
        .then_some(Reserved::Wrpc)
}

/// Whether `subject` (no wildcards) matches `pattern` (NATS wildcards `*` and a final `>`).
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// A subject or subscription pattern that is not a well-formed NATS subject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid subject {subject:?}: {reason}")]
pub struct InvalidSubject {
    pub subject: String,
    pub reason: &'static str,
}

/// Checks that `subject` is a well-formed NATS subject; `wildcards` allows `*` and a final
/// `>` (subscriptions and grant patterns).
pub fn validate_subject(subject: &str, wildcards: bool) -> Result<(), InvalidSubject> {
    let err = |reason| {
        Err(InvalidSubject {
            subject: subject.chars().take(256).collect(),
            reason,
        })
    };
    if subject.is_empty() {
        return err("must not be empty");
    }
    if subject.len() > 1024 {
        return err("must be at most 1024 bytes");
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    for (i, t) in tokens.iter().enumerate() {
        if t.is_empty() {
            return err("must not have empty '.'-separated tokens");
        }
        if t.bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return err("must not hold whitespace or control characters");
        }
        let wild = *t == "*" || *t == ">";
        if wild && !wildcards {
            return err("must not hold wildcards");
        }
        if *t == ">" && i + 1 != tokens.len() {
            return err("'>' may only be the last token");
        }
        if !wild && (t.contains('*') || t.contains('>')) {
            return err("'*' and '>' must be whole tokens");
        }
    }
    Ok(())
}

/// Splits a comma-separated config value into its trimmed, non-empty items.
pub fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_spaces() {
        for (p, want) in [
            ("wasmbus.ctl.v1.default.host.stop.N1", Reserved::Control),
            ("wasmbus.>", Reserved::Control),
            ("$JS.API.STREAM.LIST", Reserved::Server),
            ("$KV.LATTICEDATA_default.x", Reserved::Server),
            ("$SYS.REQ.SERVER.PING", Reserved::Server),
            ("_INBOX.abc.1", Reserved::Inbox),
            (
                "default.calc.wrpc.0.0.1.lattice:examples/calc@0.1.0.add",
                Reserved::Wrpc,
            ),
            ("other.calc.wrpc.>", Reserved::Wrpc),
            ("wrpc.0.0.1.x.f", Reserved::Wrpc),
            ("_INBOX.>", Reserved::Inbox),
        ] {
            assert_eq!(reserved(p), Some(want), "{p}");
        }
        // Wildcards are read as written: what they reach is filtered on delivery.
        for p in [
            "demo.echo",
            "orders.*.created",
            "app.>",
            "a.b.c.wrpc",
            "wrpc",
            ">",
            "*.ctl.>",
        ] {
            assert_eq!(reserved(p), None, "{p}");
        }
    }

    #[test]
    fn matches_nats_wildcards() {
        assert!(subject_matches("a.*.c", "a.b.c"));
        assert!(subject_matches("a.>", "a.b.c"));
        assert!(!subject_matches("a.>", "a"));
        assert!(!subject_matches("a.*", "a.b.c"));
        assert!(subject_matches("a.b", "a.b"));
        assert!(!subject_matches("a.b", "a.b.c"));
    }

    #[test]
    fn subjects_are_validated() {
        validate_subject("a.b.c", false).unwrap();
        validate_subject("a.*.>", true).unwrap();
        for bad in ["", "a..b", "a.>.b", "a b", "a*", "a.\n"] {
            assert!(validate_subject(bad, true).is_err(), "{bad:?}");
        }
        assert!(validate_subject("a.*", false).is_err());
    }
}
