//! What each component running here may reach through the built-in capabilities, read from
//! its links and their configs (see [`lattice_proto::grant`] for the keys).
//!
//! Nothing is granted by default: a component without a `wasmcloud:messaging/consumer` link
//! cannot publish, one without a `wasi:keyvalue` link opens no bucket. Grants are resolved on
//! use and cached until the component's links or the config bucket change, so a publish costs
//! a table read, not a KV round trip.
//!
//! Not here: the checks of each subject or bucket against a grant (`messaging`,
//! `keyvalue`), and the WASI grants of a scale request (files, env, outgoing HTTP), which the
//! runtime enforces.

use std::collections::HashMap;
use std::sync::Mutex;

use lattice_proto::ctl::{ConfigMap, Link};
use lattice_proto::grant;

use crate::state::LatticeState;

/// Why a component may not do what it tried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Denied {
    #[error(
        "component {component} has no link for {interface} (grant it with a link from \
         {component} to {target} for that interface)"
    )]
    NoLink {
        component: String,
        interface: &'static str,
        target: &'static str,
    },
    #[error("subject {subject:?} is reserved for {space}; no grant opens it")]
    Reserved {
        subject: String,
        space: grant::Reserved,
    },
    #[error(
        "subject {subject:?} is not among the subjects component {component}'s messaging \
         link grants ({key}={granted})"
    )]
    Subject {
        component: String,
        subject: String,
        key: &'static str,
        granted: String,
    },
    #[error(
        "bucket {bucket:?} is not granted to component {component}: its wasi:keyvalue link \
         grants {granted}"
    )]
    Bucket {
        component: String,
        bucket: String,
        granted: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// What a `component → messaging` link grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MessagingGrant {
    /// Subject patterns the component may publish and send requests to; `None`: any subject
    /// that is not reserved.
    pub publish: Option<Vec<String>>,
    /// The NATS servers of the component's own connection (`cluster_uris`); `None`: the
    /// host's messaging connection.
    pub cluster: Option<Vec<String>>,
}

/// The servers a messaging link's `cluster_uris` names, if any, checked.
pub(crate) fn cluster_uris(config: &ConfigMap) -> Result<Option<Vec<String>>, Denied> {
    // Refused rather than ignored: connecting without them would not be what was asked.
    if let Some(key) = [grant::CLIENT_JWT, grant::CLIENT_SEED]
        .into_iter()
        .find(|k| config.contains_key(*k))
    {
        return Err(Denied::Invalid(format!(
            "messaging link config key {key} is not supported yet (cluster_uris is)"
        )));
    }
    let Some(v) = config.get(grant::CLUSTER_URIS) else {
        return Ok(None);
    };
    let uris: Vec<String> = grant::list(v).map(str::to_string).collect();
    let valid = |u: &String| {
        ["nats://", "tls://", "ws://", "wss://"]
            .iter()
            .any(|s| u.starts_with(s))
            || !u.contains("://")
    };
    if uris.is_empty() || !uris.iter().all(valid) {
        return Err(Denied::Invalid(format!(
            "{}={v:?}: expected comma-separated NATS URLs",
            grant::CLUSTER_URIS
        )));
    }
    Ok(Some(uris))
}

impl MessagingGrant {
    /// Whether `component` may publish to `subject` under this grant.
    pub fn check(&self, component: &str, subject: &str) -> Result<(), Denied> {
        grant::validate_subject(subject, false).map_err(|e| Denied::Invalid(e.to_string()))?;
        if let Some(space) = grant::reserved(subject) {
            return Err(Denied::Reserved {
                subject: subject.into(),
                space,
            });
        }
        match &self.publish {
            Some(allowed) if !allowed.iter().any(|p| grant::subject_matches(p, subject)) => {
                Err(Denied::Subject {
                    component: component.into(),
                    subject: subject.into(),
                    key: grant::PUBLISH,
                    granted: allowed.join(","),
                })
            }
            _ => Ok(()),
        }
    }
}

/// What a `component → keyvalue` link grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyValueGrant {
    /// The bucket every `open` not in `buckets` reaches (`bucket=`).
    pub bucket: Option<String>,
    /// Buckets `open` may name (`buckets=`).
    pub buckets: Vec<String>,
}

impl KeyValueGrant {
    /// The bucket component `component`'s `open(name)` reaches.
    pub fn resolve(&self, component: &str, name: &str) -> Result<String, Denied> {
        if self.buckets.iter().any(|b| b == name) {
            return Ok(name.to_string());
        }
        if let Some(b) = &self.bucket {
            return Ok(b.clone());
        }
        Err(Denied::Bucket {
            component: component.into(),
            bucket: name.into(),
            granted: if self.buckets.is_empty() {
                format!(
                    "no bucket (its target config sets neither {} nor {})",
                    grant::BUCKET,
                    grant::BUCKETS
                )
            } else {
                format!("{}={}", grant::BUCKETS, self.buckets.join(","))
            },
        })
    }
}

/// A cached resolution, with what it was computed from.
#[derive(Clone)]
struct Cached<T> {
    link: Link,
    generation: u64,
    value: Result<T, Denied>,
}

/// Every component's resolved grants on this host.
#[derive(Default)]
pub(crate) struct Grants {
    messaging: Mutex<HashMap<String, Cached<MessagingGrant>>>,
    keyvalue: Mutex<HashMap<String, Cached<KeyValueGrant>>>,
}

impl Grants {
    /// What `component` may publish to.
    pub async fn messaging(
        &self,
        state: &LatticeState,
        component: &str,
    ) -> Result<MessagingGrant, Denied> {
        let link = state
            .links
            .of_source_for(component, "wasmcloud", "messaging", "consumer")
            .into_iter()
            .find(|l| l.target == grant::MESSAGING);
        let needs = ("wasmcloud:messaging/consumer", grant::MESSAGING);
        resolve(
            &self.messaging,
            state,
            component,
            link.ok_or(needs),
            |config| {
                let publish = match config.get(grant::PUBLISH) {
                    None => None,
                    Some(v) => {
                        let mut patterns = Vec::new();
                        for p in grant::list(v) {
                            grant::validate_subject(p, true)
                                .map_err(|e| Denied::Invalid(format!("{}: {e}", grant::PUBLISH)))?;
                            patterns.push(p.to_string());
                        }
                        Some(patterns)
                    }
                };
                Ok(MessagingGrant {
                    publish,
                    cluster: cluster_uris(config)?,
                })
            },
        )
        .await
    }

    /// Which buckets `component` may open.
    pub async fn keyvalue(
        &self,
        state: &LatticeState,
        component: &str,
    ) -> Result<KeyValueGrant, Denied> {
        let link = state.links.of_source(component).into_iter().find(|l| {
            l.wit_namespace == "wasi" && l.wit_package == "keyvalue" && l.target == grant::KEYVALUE
        });
        let needs = ("wasi:keyvalue", grant::KEYVALUE);
        resolve(
            &self.keyvalue,
            state,
            component,
            link.ok_or(needs),
            |config| {
                let valid = |b: &str| {
                    lattice_proto::subject::validate_token("bucket", b)
                        .map(|_| b.to_string())
                        .map_err(|e| Denied::Invalid(e.to_string()))
                };
                Ok(KeyValueGrant {
                    bucket: config.get(grant::BUCKET).map(|b| valid(b)).transpose()?,
                    buckets: config
                        .get(grant::BUCKETS)
                        .map(|v| grant::list(v).map(valid).collect::<Result<Vec<_>, _>>())
                        .transpose()?
                        .unwrap_or_default(),
                })
            },
        )
        .await
    }
}

/// Looks `component`'s grant up in `cache`, computing it with `make` from the link's merged
/// target config when the link or the config bucket changed. Without a link (`Err` says for
/// which interface, to which target), nothing is granted.
async fn resolve<T: Clone>(
    cache: &Mutex<HashMap<String, Cached<T>>>,
    state: &LatticeState,
    component: &str,
    link: Result<Link, (&'static str, &'static str)>,
    make: impl FnOnce(&ConfigMap) -> Result<T, Denied>,
) -> Result<T, Denied> {
    let link = match link {
        Ok(l) => l,
        Err((interface, target)) => {
            return Err(Denied::NoLink {
                component: component.into(),
                interface,
                target,
            })
        }
    };
    let generation = state.config_generation();
    if let Some(c) = cache.lock().ok().and_then(|c| c.get(component).cloned()) {
        if c.link == link && c.generation == generation {
            return c.value;
        }
    }
    let mut config = ConfigMap::new();
    for name in &link.target_config {
        match state.config.get(name).await {
            Ok(Some(values)) => config.extend(values),
            Ok(None) => {}
            // Not cached: the next use tries the store again.
            Err(e) => return Err(Denied::Invalid(format!("cannot read config {name:?}: {e}"))),
        }
    }
    let value = make(&config);
    if let Ok(mut c) = cache.lock() {
        c.insert(
            component.to_string(),
            Cached {
                link,
                generation,
                value: value.clone(),
            },
        );
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishing_is_checked_against_reserved_spaces_and_the_grant() {
        let any = MessagingGrant {
            publish: None,
            cluster: None,
        };
        any.check("c", "app.orders").unwrap();
        for bad in [
            "wasmbus.ctl.v1.default.host.stop.N",
            "$JS.API.STREAM.LIST",
            "_INBOX.x.1",
            "default.calc.wrpc.0.0.1.x.add",
        ] {
            assert!(
                matches!(any.check("c", bad), Err(Denied::Reserved { .. })),
                "{bad}"
            );
        }
        assert!(matches!(any.check("c", "a.*"), Err(Denied::Invalid(_))));
        let narrow = MessagingGrant {
            publish: Some(vec!["app.>".into()]),
            cluster: None,
        };
        narrow.check("c", "app.x").unwrap();
        let e = narrow.check("c", "other.x").unwrap_err();
        assert!(e.to_string().contains("publish=app.>"), "{e}");
    }

    #[test]
    fn buckets_resolve_only_within_the_grant() {
        let one = KeyValueGrant {
            bucket: Some("b".into()),
            buckets: vec![],
        };
        assert_eq!(one.resolve("c", "anything").unwrap(), "b");
        let some = KeyValueGrant {
            bucket: None,
            buckets: vec!["x".into(), "y".into()],
        };
        assert_eq!(some.resolve("c", "y").unwrap(), "y");
        let e = some.resolve("c", "z").unwrap_err();
        assert!(e.to_string().contains("buckets=x,y"), "{e}");
    }
}
