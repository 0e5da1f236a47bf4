//! Placement: how many instances of a component each host should run. Pure functions of the
//! scaler and the hosts seen, so the reconciler's decisions can be tested without a lattice.
//! Components take any number of instances per host ([`place`]); a capability provider is a
//! process, at most one per host ([`place_provider`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::manifest::{Scaler, ScalerProperties, Spread};

/// A host as the reconciler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostView {
    pub id: String,
    pub labels: BTreeMap<String, String>,
    /// Instances (max concurrency) of each component id running there.
    pub running: BTreeMap<String, u32>,
    /// Ids of the capability providers running there.
    pub providers: BTreeSet<String>,
}

/// Instances per host id, and what could not be placed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    pub per_host: BTreeMap<String, u32>,
    /// Human-readable reasons some instances have no host (empty: all placed).
    pub unplaced: Vec<String>,
}

fn matches(host: &HostView, spread: &Spread) -> bool {
    spread
        .requirements
        .iter()
        .all(|(k, v)| host.labels.get(k) == Some(v))
}

fn spreads(s: &ScalerProperties) -> Vec<Spread> {
    if s.spread.is_empty() {
        vec![Spread {
            name: "default".into(),
            requirements: BTreeMap::new(),
            weight: Some(1),
        }]
    } else {
        s.spread.clone()
    }
}

/// A daemonscaler's placement: `each` on every host matching any of its spreads.
fn daemon(s: &ScalerProperties, hosts: &[HostView], each: u32) -> Placement {
    let mut out = Placement::default();
    if s.instances == 0 {
        return out;
    }
    let spreads = spreads(s);
    for h in hosts
        .iter()
        .filter(|h| spreads.iter().any(|sp| matches(h, sp)))
    {
        out.per_host.insert(h.id.clone(), each);
    }
    if out.per_host.is_empty() {
        out.unplaced
            .push("daemonscaler: no host matches any spread".to_string());
    }
    out
}

/// A spreadscaler's spreads, each with its share of the instances by weight.
fn shares(s: &ScalerProperties) -> Vec<(Spread, u32)> {
    let spreads = spreads(s);
    let weights: Vec<u32> = spreads.iter().map(|sp| sp.weight.unwrap_or(1)).collect();
    let parts = split(s.instances, &weights);
    spreads.into_iter().zip(parts).collect()
}

/// `total` split by `weights`, largest remainder first (ties to the earlier entry), so the
/// parts always add up to `total`.
fn split(total: u32, weights: &[u32]) -> Vec<u32> {
    let sum: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<(u64, u64)> = weights
        .iter()
        .map(|w| {
            let n = u64::from(total) * u64::from(*w);
            (n / sum, n % sum)
        })
        .collect();
    let mut parts: Vec<u32> = exact.iter().map(|(q, _)| *q as u32).collect();
    let mut left = total - parts.iter().sum::<u32>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|a, b| exact[*b].1.cmp(&exact[*a].1).then(a.cmp(b)));
    for i in order {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts
}

/// Where component `id`'s instances go under `scaler`, given `hosts`.
///
/// A spread's share is divided evenly over the hosts that match it; the odd instances go to
/// hosts already running the most of this component (so nothing moves needlessly), then by
/// id. Overlapping spreads add up on the hosts they share.
pub fn place(scaler: &Scaler, id: &str, hosts: &[HostView]) -> Placement {
    let mut out = Placement::default();
    match scaler {
        Scaler::Daemon(s) => return daemon(s, hosts, s.instances),
        Scaler::Spread(s) => {
            for (spread, share) in shares(s) {
                let mut eligible: Vec<&HostView> =
                    hosts.iter().filter(|h| matches(h, &spread)).collect();
                if eligible.is_empty() {
                    if share > 0 {
                        out.unplaced.push(format!(
                            "spread {:?}: no host has labels {:?} for its {share} instance(s)",
                            spread.name, spread.requirements
                        ));
                    }
                    continue;
                }
                eligible.sort_by(|a, b| {
                    let (ra, rb) = (a.running.get(id), b.running.get(id));
                    rb.cmp(&ra).then(a.id.cmp(&b.id))
                });
                let n = eligible.len() as u32;
                for (k, h) in eligible.iter().enumerate() {
                    let count = share / n + u32::from((k as u32) < share % n);
                    if count > 0 {
                        *out.per_host.entry(h.id.clone()).or_default() += count;
                    }
                }
            }
        }
    }
    out
}

/// Which hosts run provider `id` under `scaler` (each gets 1 in `per_host`).
///
/// A spreadscaler's `instances` counts hosts, split over the spreads by weight; within a
/// spread the hosts already running the provider are kept first, then by id, and a host
/// counts once even where spreads overlap. A daemonscaler runs it on every matching host.
pub fn place_provider(scaler: &Scaler, id: &str, hosts: &[HostView]) -> Placement {
    let mut out = Placement::default();
    match scaler {
        Scaler::Daemon(s) => return daemon(s, hosts, 1),
        Scaler::Spread(s) => {
            for (spread, share) in shares(s) {
                let mut eligible: Vec<&HostView> = hosts
                    .iter()
                    .filter(|h| matches(h, &spread) && !out.per_host.contains_key(&h.id))
                    .collect();
                eligible.sort_by(|a, b| {
                    let (ra, rb) = (a.providers.contains(id), b.providers.contains(id));
                    rb.cmp(&ra).then(a.id.cmp(&b.id))
                });
                for h in eligible.iter().take(share as usize) {
                    out.per_host.insert(h.id.clone(), 1);
                }
                if (eligible.len() as u32) < share {
                    out.unplaced.push(format!(
                        "spread {:?}: {} more host(s) with labels {:?} needed for provider {id} (one per host)",
                        spread.name,
                        share - eligible.len() as u32,
                        spread.requirements
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(id: &str, zone: &str, running: u32) -> HostView {
        HostView {
            id: id.into(),
            labels: [("zone".to_string(), zone.to_string())].into(),
            running: if running > 0 {
                [("c".to_string(), running)].into()
            } else {
                BTreeMap::new()
            },
            providers: if running > 0 {
                ["c".to_string()].into()
            } else {
                BTreeSet::new()
            },
        }
    }

    fn spread(instances: u32, spreads: &[(&str, &str, u32)]) -> Scaler {
        Scaler::Spread(ScalerProperties {
            instances,
            spread: spreads
                .iter()
                .map(|(name, zone, w)| Spread {
                    name: name.to_string(),
                    requirements: [("zone".to_string(), zone.to_string())].into(),
                    weight: Some(*w),
                })
                .collect(),
        })
    }

    #[test]
    fn weights_split_the_total_exactly() {
        assert_eq!(split(6, &[2, 1]), vec![4, 2]);
        assert_eq!(split(5, &[1, 1, 1]), vec![2, 2, 1]);
        assert_eq!(split(1, &[1, 3]), vec![0, 1]);
        assert_eq!(split(7, &[0, 0]), vec![0, 0]);
    }

    #[test]
    fn a_weighted_spread_lands_on_the_matching_hosts() {
        let hosts = [host("h1", "a", 0), host("h2", "a", 0), host("h3", "b", 0)];
        let p = place(&spread(6, &[("a", "a", 2), ("b", "b", 1)]), "c", &hosts);
        assert_eq!(
            p.per_host,
            [("h1".into(), 2), ("h2".into(), 2), ("h3".into(), 2)].into()
        );
        assert!(p.unplaced.is_empty());
        // h2 gone: zone a's four all go to h1.
        let p = place(
            &spread(6, &[("a", "a", 2), ("b", "b", 1)]),
            "c",
            &[host("h1", "a", 2), host("h3", "b", 2)],
        );
        assert_eq!(p.per_host, [("h1".into(), 4), ("h3".into(), 2)].into());
    }

    #[test]
    fn odd_instances_stay_where_they_run() {
        let hosts = [host("h1", "a", 0), host("h2", "a", 2)];
        let p = place(&spread(3, &[("a", "a", 1)]), "c", &hosts);
        assert_eq!(p.per_host, [("h1".into(), 1), ("h2".into(), 2)].into());
    }

    #[test]
    fn impossible_and_overlapping_spreads_are_stable_and_explained() {
        let hosts = [host("h1", "a", 0)];
        let s = spread(4, &[("a", "a", 1), ("also-a", "a", 1), ("z", "z", 2)]);
        let p = place(&s, "c", &hosts);
        assert_eq!(p.per_host, [("h1".into(), 2)].into());
        assert_eq!(p.unplaced.len(), 1);
        assert!(p.unplaced[0].contains("spread \"z\""), "{:?}", p.unplaced);
        // The same input gives the same answer: nothing for a reconciler to chase.
        assert_eq!(place(&s, "c", &hosts), p);
    }

    #[test]
    fn a_daemon_runs_on_every_matching_host() {
        let hosts = [host("h1", "a", 0), host("h2", "b", 0)];
        let d = Scaler::Daemon(ScalerProperties {
            instances: 3,
            spread: vec![],
        });
        assert_eq!(
            place(&d, "c", &hosts).per_host,
            [("h1".into(), 3), ("h2".into(), 3)].into()
        );
    }

    #[test]
    fn a_provider_runs_once_per_host_kept_where_it_runs() {
        let hosts = [host("h1", "a", 0), host("h2", "a", 1), host("h3", "b", 0)];
        // Two in zone a: h2 keeps its instance, h1 is next by id.
        let p = place_provider(&spread(2, &[("a", "a", 1)]), "c", &hosts);
        assert_eq!(p.per_host, [("h1".into(), 1), ("h2".into(), 1)].into());
        let p = place_provider(&spread(1, &[("a", "a", 1)]), "c", &hosts);
        assert_eq!(p.per_host, [("h2".into(), 1)].into());
        // Overlapping spreads do not put two on one host; a shortfall is explained.
        let p = place_provider(
            &spread(4, &[("a", "a", 1), ("also-a", "a", 1)]),
            "c",
            &hosts,
        );
        assert_eq!(p.per_host, [("h1".into(), 1), ("h2".into(), 1)].into());
        assert_eq!(p.unplaced.len(), 1, "{:?}", p.unplaced);
        assert!(p.unplaced[0].contains("2 more host(s)"), "{:?}", p.unplaced);
        let d = Scaler::Daemon(ScalerProperties {
            instances: 5,
            spread: vec![],
        });
        assert_eq!(place_provider(&d, "c", &hosts).per_host.len(), 3);
    }
}
