//! NATS subjects and JetStream bucket names of a lattice.
//!
//! A lattice is a namespace: every subject and bucket carries its name, so two lattices on one
//! NATS never see each other's hosts, config or events. Names that end up inside a subject are
//! validated here, once, because a `.`, `*`, `>` or whitespace in them would silently widen or
//! break a subscription.

use std::fmt;

use crate::op::{Op, Target};

/// Default prefix of control-interface subjects (wasmCloud's `WASMCLOUD_CTL_TOPIC_PREFIX`).
pub const DEFAULT_CTL_PREFIX: &str = "wasmbus.ctl";
/// Version segment of the control interface.
pub const CTL_VERSION: &str = "v1";
/// Prefix of lattice event subjects.
pub const EVENT_PREFIX: &str = "wasmbus.evt";
/// Type prefix of lattice CloudEvents.
pub const EVENT_TYPE_PREFIX: &str = "com.wasmcloud.lattice";

/// A name that is not usable inside a subject or bucket name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {name:?}: {reason}")]
pub struct InvalidName {
    pub what: &'static str,
    pub name: String,
    pub reason: &'static str,
}

/// Checks a single subject token (lattice name, host id, label key, ...).
///
/// Lattice names also become part of JetStream bucket names, so they are held to the bucket
/// alphabet: ASCII letters, digits, `-` and `_`.
pub fn validate_token(what: &'static str, name: &str) -> Result<(), InvalidName> {
    let err = |reason| {
        Err(InvalidName {
            what,
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return err("must not be empty");
    }
    if name.len() > 128 {
        return err("must be at most 128 bytes");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return err("may only hold ASCII letters, digits, '-' and '_'");
    }
    Ok(())
}

/// Checks a named-config name: it is a JetStream KV key and the tail of a subject, so it may
/// contain `.`-separated tokens but no wildcards, whitespace or empty tokens.
pub fn validate_config_name(name: &str) -> Result<(), InvalidName> {
    let err = |reason| {
        Err(InvalidName {
            what: "config name",
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return err("must not be empty");
    }
    if name.len() > 255 {
        return err("must be at most 255 bytes");
    }
    if name.split('.').any(str::is_empty) {
        return err("must not have empty '.'-separated parts");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'=' | b'/'))
    {
        return err("may only hold ASCII letters, digits and '-', '_', '.', '=', '/'");
    }
    Ok(())
}

/// Subjects of one lattice's control interface: `{prefix}.v1.{lattice}.…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtlSubjects {
    root: String,
}

impl CtlSubjects {
    /// Subjects under the default `wasmbus.ctl` prefix. Fails when `lattice` is not a valid name.
    pub fn new(lattice: &str) -> Result<Self, InvalidName> {
        Self::with_prefix(DEFAULT_CTL_PREFIX, lattice)
    }

    /// Subjects under a custom prefix (wasmCloud's `--ctl-topic-prefix`).
    pub fn with_prefix(prefix: &str, lattice: &str) -> Result<Self, InvalidName> {
        validate_token("lattice name", lattice)?;
        if prefix.is_empty()
            || prefix.split('.').any(|t| {
                t.is_empty() || t.contains(|c: char| c == '*' || c == '>' || c.is_whitespace())
            })
        {
            return Err(InvalidName {
                what: "control subject prefix",
                name: prefix.to_string(),
                reason: "must be dot-separated tokens without wildcards or whitespace",
            });
        }
        Ok(Self {
            root: format!("{prefix}.{CTL_VERSION}.{lattice}"),
        })
    }

    /// `{prefix}.v1.{lattice}`: every control subject of the lattice starts with this.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// An operation of the whole lattice ([`Target::Lattice`]): `{root}.{noun}.{verb}`.
    pub fn lattice_op(&self, op: Op) -> String {
        debug_assert_eq!(op.target(), Target::Lattice, "{op} names a target");
        format!("{}.{}.{}", self.root, op.noun(), op.verb())
    }

    /// Scatter-gather ping of every host.
    pub fn host_ping(&self) -> String {
        self.lattice_op(Op::HostPing)
    }

    /// Scatter-gather auction: hosts able to run a component answer.
    pub fn component_auction(&self) -> String {
        self.lattice_op(Op::ComponentAuction)
    }

    /// Scatter-gather auction: hosts able to run a provider answer.
    pub fn provider_auction(&self) -> String {
        self.lattice_op(Op::ProviderAuction)
    }

    /// Wildcard and queue group of link operations: links live in KV, so one host answers.
    pub fn link_wildcard(&self) -> (String, String) {
        (
            format!("{}.link.*", self.root),
            format!("{}.link", self.root),
        )
    }

    /// `claims.get` and its queue group: one host answers for the lattice.
    pub fn claims_get(&self) -> (String, String) {
        (
            self.lattice_op(Op::ClaimsGet),
            format!("{}.claims", self.root),
        )
    }

    /// Registry credentials for every host.
    pub fn registry_put(&self) -> String {
        self.lattice_op(Op::RegistryPut)
    }

    /// An operation addressed to one host ([`Target::Host`]): `{root}.{noun}.{verb}.{host_id}`.
    pub fn host_op(&self, op: Op, host_id: &str) -> String {
        debug_assert_eq!(op.target(), Target::Host, "{op} is not addressed to a host");
        format!("{}.{}.{}.{host_id}", self.root, op.noun(), op.verb())
    }

    /// Wildcard a host subscribes to for every operation addressed to it, known or not.
    pub fn host_ops_wildcard(&self, host_id: &str) -> String {
        format!("{}.*.*.{host_id}", self.root)
    }

    /// A named-config operation ([`Target::Config`]): `{root}.config.{verb}.{name}`.
    pub fn config_op(&self, op: Op, name: &str) -> String {
        debug_assert_eq!(op.target(), Target::Config, "{op} does not name a config");
        format!("{}.{}.{}.{name}", self.root, op.noun(), op.verb())
    }

    /// Wildcard and queue group of config operations: state lives in KV, so one host answers.
    pub fn config_wildcard(&self) -> (String, String) {
        (
            format!("{}.config.>", self.root),
            format!("{}.config", self.root),
        )
    }

    /// Splits a received subject into its operation, if it is under this lattice's root.
    pub fn parse<'a>(&self, subject: &'a str) -> Option<CtlOp<'a>> {
        let rest = subject
            .strip_prefix(self.root.as_str())?
            .strip_prefix('.')?;
        let mut parts = rest.splitn(3, '.');
        let noun = parts.next()?;
        let verb = parts.next().unwrap_or("");
        let target = parts.next();
        Some(CtlOp { noun, verb, target })
    }
}

/// A control subject split into `noun.verb[.target]` (the target is a host id or config name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtlOp<'a> {
    pub noun: &'a str,
    pub verb: &'a str,
    pub target: Option<&'a str>,
}

impl CtlOp<'_> {
    /// The operation the subject names, if a host serves it.
    pub fn op(&self) -> Option<Op> {
        Op::from_parts(self.noun, self.verb)
    }
}

impl fmt::Display for CtlOp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.noun, self.verb)
    }
}

/// `wasmbus.evt.{lattice}.{event_type}`.
pub fn event_subject(lattice: &str, event_type: &str) -> String {
    format!("{EVENT_PREFIX}.{lattice}.{event_type}")
}

/// Wildcard of every event of one lattice.
pub fn event_wildcard(lattice: &str) -> String {
    format!("{EVENT_PREFIX}.{lattice}.>")
}

/// JetStream KV bucket of named config: `CONFIGDATA_{lattice}`.
pub fn config_bucket(lattice: &str) -> String {
    format!("CONFIGDATA_{lattice}")
}

/// JetStream KV bucket of links and component specs: `LATTICEDATA_{lattice}`.
pub fn lattice_data_bucket(lattice: &str) -> String {
    format!("LATTICEDATA_{lattice}")
}

/// Key prefix of a component's links in the lattice-data bucket: `COMPONENT_{source_id}`.
pub const LINKS_KEY_PREFIX: &str = "COMPONENT_";

/// JetStream KV bucket of declared applications: `LATTICE_APPS_{lattice}` (Lattice).
pub fn apps_bucket(lattice: &str) -> String {
    format!("LATTICE_APPS_{lattice}")
}

/// Key prefix of an application's manifest in the apps bucket: `manifest.{name}`.
pub const APP_MANIFEST_KEY_PREFIX: &str = "manifest.";
/// Key prefix of an application's status in the apps bucket: `status.{name}`.
pub const APP_STATUS_KEY_PREFIX: &str = "status.";

/// JetStream KV bucket of the reconciler's lease, held by one host at a time:
/// `LATTICE_LEASE_{lattice}` (Lattice).
pub fn lease_bucket(lattice: &str) -> String {
    format!("LATTICE_LEASE_{lattice}")
}

/// The JetStream KV bucket behind a component's `wasi:keyvalue` bucket `name` in `lattice`.
///
/// `KV_{lattice}_{name}` when the lattice name has no `_` (the first `_` after `KV_` then
/// separates the two, so every such pair has a bucket of its own, and existing data keeps
/// its name); otherwise `KVL_{len}_{lattice}_{name}`, the lattice's length saying where it
/// ends. The two forms differ at their third byte, so no two pairs share a bucket: lattice
/// `a` bucket `b_c` and lattice `a_b` bucket `c` are `KV_a_b_c` and `KVL_3_a_b_c`.
pub fn keyvalue_bucket(lattice: &str, name: &str) -> String {
    if lattice.contains('_') {
        format!("KVL_{}_{lattice}_{name}", lattice.len())
    } else {
        format!("KV_{lattice}_{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyvalue_buckets_are_one_per_lattice_and_name() {
        assert_ne!(keyvalue_bucket("a", "b_c"), keyvalue_bucket("a_b", "c"));
        assert_eq!(keyvalue_bucket("default", "demo"), "KV_default_demo");
        // Every pair over a small alphabet, lengths 1..=3 each: no two share a bucket.
        let alphabet = ["a", "_", "1"];
        let mut words = vec![String::new()];
        let mut all = Vec::new();
        for _ in 0..3 {
            words = words
                .iter()
                .flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}")))
                .collect();
            all.extend(words.iter().cloned());
        }
        let mut seen = std::collections::HashMap::new();
        for l in &all {
            for n in &all {
                if let Some(prev) = seen.insert(keyvalue_bucket(l, n), (l.clone(), n.clone())) {
                    panic!("{prev:?} and {:?} share a bucket", (l, n));
                }
            }
        }
    }

    #[test]
    fn builds_wasmcloud_subjects() {
        let s = CtlSubjects::new("default").unwrap();
        assert_eq!(s.host_ping(), "wasmbus.ctl.v1.default.host.ping");
        assert_eq!(
            s.host_op(Op::LabelPut, "NABC"),
            "wasmbus.ctl.v1.default.label.put.NABC"
        );
        assert_eq!(
            s.host_ops_wildcard("NABC"),
            "wasmbus.ctl.v1.default.*.*.NABC"
        );
        assert_eq!(
            s.config_wildcard(),
            (
                "wasmbus.ctl.v1.default.config.>".to_string(),
                "wasmbus.ctl.v1.default.config".to_string()
            )
        );
        assert_eq!(
            event_subject("default", "host_started"),
            "wasmbus.evt.default.host_started"
        );
        assert_eq!(config_bucket("x"), "CONFIGDATA_x");
    }

    #[test]
    fn parses_operations() {
        let s = CtlSubjects::new("lat").unwrap();
        let op = s.parse("wasmbus.ctl.v1.lat.config.put.a.b").unwrap();
        assert_eq!(
            (op.noun, op.verb, op.target),
            ("config", "put", Some("a.b"))
        );
        let op = s.parse("wasmbus.ctl.v1.lat.host.ping").unwrap();
        assert_eq!((op.noun, op.verb, op.target), ("host", "ping", None));
        assert!(s.parse("wasmbus.ctl.v1.other.host.ping").is_none());
        assert!(s.parse("wasmbus.ctl.v1.latx.host.ping").is_none());
    }

    #[test]
    fn rejects_names_that_would_break_subjects() {
        for bad in ["", "a.b", "a*", ">", "a b", "ü"] {
            assert!(CtlSubjects::new(bad).is_err(), "{bad:?} accepted");
        }
        for bad in ["", "a..b", ".a", "a b", "a*", "a>"] {
            assert!(validate_config_name(bad).is_err(), "{bad:?} accepted");
        }
        validate_config_name("app.db-creds_1").unwrap();
        assert!(CtlSubjects::with_prefix("a.*", "x").is_err());
    }
}
