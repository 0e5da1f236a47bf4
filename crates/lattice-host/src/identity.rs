//! Who a host is: its nkey, a friendly name and the labels it sets on itself.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use nkeys::{KeyPair, KeyPairType};

use lattice_proto::ctl::RESERVED_LABEL_PREFIX;

/// Who this host is and what it says about itself in pings, heartbeats and events; only its
/// labels change after start-up (`label.put|del`).
pub(crate) struct Identity {
    pub id: String,
    pub friendly_name: String,
    pub lattice: String,
    pub started: Instant,
    pub labels: RwLock<BTreeMap<String, String>>,
    pub heartbeat_interval: Duration,
    pub js_domain: Option<String>,
}

impl Identity {
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.labels.read().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

/// The host's server key pair: from `seed` (`SN…`) or fresh.
pub(crate) fn host_key(seed: Option<&str>) -> Result<KeyPair, String> {
    match seed {
        None => Ok(KeyPair::new(KeyPairType::Server)),
        Some(seed) => {
            let kp = KeyPair::from_seed(seed).map_err(|e| format!("invalid host seed: {e}"))?;
            if !kp.public_key().starts_with('N') {
                return Err("host seed must be a server nkey seed (SN…)".into());
            }
            Ok(kp)
        }
    }
}

const ADJECTIVES: &[&str] = &[
    "amber", "bold", "calm", "dawn", "eager", "fair", "gentle", "hidden", "icy", "jolly", "keen",
    "lively", "misty", "noble", "odd", "proud", "quiet", "rapid", "silent", "tidy", "upbeat",
    "vivid", "wild", "young",
];
const NOUNS: &[&str] = &[
    "brook", "cedar", "delta", "ember", "fjord", "grove", "harbor", "island", "jetty", "knoll",
    "lagoon", "meadow", "nebula", "orchard", "pine", "quarry", "river", "summit", "tundra",
    "valley", "willow", "zephyr",
];

/// A readable name derived from the public key, so a host keeps its name across restarts when
/// it keeps its seed.
pub fn friendly_name(public_key: &str) -> String {
    // FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
    let h = public_key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let adj = ADJECTIVES[(h % ADJECTIVES.len() as u64) as usize];
    let noun = NOUNS[((h >> 16) % NOUNS.len() as u64) as usize];
    format!("{adj}-{noun}-{:04}", (h >> 32) % 10_000)
}

/// The user's labels plus `hostcore.os`, `hostcore.arch` and `hostcore.osfamily`.
pub(crate) fn host_labels(
    user: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    if let Some(k) = user.keys().find(|k| k.starts_with(RESERVED_LABEL_PREFIX)) {
        return Err(format!(
            "label {k:?} is reserved: keys starting with {RESERVED_LABEL_PREFIX:?} are set by the host"
        ));
    }
    let mut labels = user.clone();
    labels.insert("hostcore.os".into(), std::env::consts::OS.into());
    labels.insert("hostcore.arch".into(), std::env::consts::ARCH.into());
    labels.insert("hostcore.osfamily".into(), std::env::consts::FAMILY.into());
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_server_keys() {
        let kp = host_key(None).unwrap();
        assert!(kp.public_key().starts_with('N'));
        let seed = kp.seed().unwrap();
        assert_eq!(host_key(Some(&seed)).unwrap().public_key(), kp.public_key());
        let user = KeyPair::new(KeyPairType::User).seed().unwrap();
        assert!(host_key(Some(&user)).is_err());
        assert!(host_key(Some("garbage")).is_err());
    }

    #[test]
    fn names_are_stable_per_key() {
        assert_eq!(friendly_name("NABC"), friendly_name("NABC"));
        assert_ne!(friendly_name("NABC"), friendly_name("NABD"));
    }

    #[test]
    fn hostcore_labels_are_added_and_reserved() {
        let labels = host_labels(&[("zone".to_string(), "a".to_string())].into()).unwrap();
        assert_eq!(labels["hostcore.os"], std::env::consts::OS);
        assert_eq!(labels["zone"], "a");
        assert!(host_labels(&[("hostcore.os".to_string(), "x".to_string())].into()).is_err());
    }
}
