//! Malformed control traffic: every request gets an error envelope, nothing panics, and the
//! host keeps serving.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use lattice_proto::ctl::{HostLabel, HostLabelKey, ScaleComponentCommand};
use lattice_proto::{decode_request, CtlResponse};
use lattice_testkit::NatsServer;
use rand::{Rng, SeedableRng};

use crate::common::*;

const PER_SUBJECT: usize = 1000;

/// A random payload from a mix of shapes a broken or hostile client might send.
fn payload(rng: &mut impl Rng) -> Vec<u8> {
    let json_scalar = |rng: &mut dyn rand::RngCore| -> String {
        match rng.random_range(0..6) {
            0 => "null".into(),
            1 => rng.random::<bool>().to_string(),
            2 => rng.random::<i64>().to_string(),
            3 => format!("{:e}", rng.random::<f64>() * 1e300),
            4 => format!("\"{}\"", "x".repeat(rng.random_range(0..40))),
            _ => "[]".into(),
        }
    };
    match rng.random_range(0..100) {
        0..=19 => (0..rng.random_range(0..512))
            .map(|_| rng.random())
            .collect(),
        20..=34 => (0..rng.random_range(0..256))
            .map(|_| rng.random_range(0x20u8..0x7f))
            .collect(),
        35..=49 => json_scalar(rng).into_bytes(),
        50..=64 => {
            // Objects with the right field names but random value types, or random names.
            let keys = ["key", "value", "host_id", "timeout", "a", "", "\u{0}"];
            let fields: Vec<String> = (0..rng.random_range(0..4))
                .map(|_| {
                    let k = keys[rng.random_range(0..keys.len())];
                    format!("{k:?}: {}", json_scalar(rng))
                })
                .collect();
            format!("{{{}}}", fields.join(",")).into_bytes()
        }
        65..=79 => {
            // Valid JSON cut short.
            let full = br#"{"key":"zone","value":"a","host_id":"NABC","timeout":5}"#;
            full[..rng.random_range(0..full.len())].to_vec()
        }
        80..=89 => {
            // Deep nesting: must be refused, not overflow the stack.
            let depth = rng.random_range(100..5000);
            let mut v = "[".repeat(depth);
            v.push_str(&"]".repeat(rng.random_range(0..depth)));
            v.into_bytes()
        }
        90..=97 => {
            // Invalid UTF-8 inside a JSON string.
            let mut v = br#"{"key":""#.to_vec();
            v.extend([0xff, 0xfe, 0xc3]);
            v.extend(br#"","value":"x"}"#);
            v
        }
        _ => vec![b'{'; rng.random_range(100_000..300_000)],
    }
}

/// Whether `body` is a request the operation may accept.
fn acceptable(op: &str, body: &[u8]) -> bool {
    match op {
        "label.put" => {
            decode_request::<HostLabel>(body, "").is_ok_and(|l| !l.key.starts_with("hostcore."))
        }
        "label.del" => {
            decode_request::<HostLabelKey>(body, "").is_ok_and(|l| !l.key.starts_with("hostcore."))
        }
        "config.put" => decode_request::<BTreeMap<String, String>>(body, "").is_ok(),
        "registry.put" => {
            decode_request::<BTreeMap<String, serde_json::Map<String, serde_json::Value>>>(body, "")
                .is_ok()
        }
        "component.scale" => decode_request::<ScaleComponentCommand>(body, "")
            .is_ok_and(|c| !c.component_ref.is_empty() && !c.component_id.is_empty()),
        // Bodies are ignored; the request is valid whatever it carries.
        "host.ping" | "host.get" | "config.get" | "config.del" => true,
        // A stop needs this host's id, which random bytes never hold.
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_payloads_on_every_control_subject_get_errors_and_the_host_keeps_serving() {
    let nats = NatsServer::start().unwrap();
    let mut h = host(&nats.url(), "default").start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let client = ctl.nats().clone();
    let root = "wasmbus.ctl.v1.default";
    let id = h.id.clone();
    let ops: Vec<(&str, String)> = vec![
        ("host.ping", format!("{root}.host.ping")),
        ("host.get", format!("{root}.host.get.{id}")),
        ("host.stop", format!("{root}.host.stop.{id}")),
        ("label.put", format!("{root}.label.put.{id}")),
        ("label.del", format!("{root}.label.del.{id}")),
        ("config.put", format!("{root}.config.put.fuzz")),
        ("config.get", format!("{root}.config.get.fuzz")),
        ("config.del", format!("{root}.config.del.fuzz")),
        ("component.scale", format!("{root}.component.scale.{id}")),
        ("component.update", format!("{root}.component.update.{id}")),
        ("registry.put", format!("{root}.registry.put")),
        ("unknown", format!("{root}.bogus.verb.{id}")),
        ("config.bad", format!("{root}.config.explode.fuzz")),
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x01a7_71ce);
    let mut total = 0;
    let mut rejected = 0;
    for (op, subject) in &ops {
        let payloads: Vec<Vec<u8>> = (0..PER_SUBJECT).map(|_| payload(&mut rng)).collect();
        let results: Vec<(Vec<u8>, CtlResponse<serde_json::Value>)> =
            futures::stream::iter(payloads)
                .map(|body| {
                    let client = client.clone();
                    let subject = subject.clone();
                    async move {
                        let reply = tokio::time::timeout(
                            Duration::from_secs(5),
                            client.request(subject.clone(), body.clone().into()),
                        )
                        .await
                        .unwrap_or_else(|_| panic!("no reply on {subject} within 5 s"))
                        .unwrap_or_else(|e| panic!("request on {subject} failed: {e}"));
                        let envelope = serde_json::from_slice(&reply.payload).unwrap_or_else(|e| {
                            panic!(
                                "reply on {subject} is not an envelope ({e}): {:?}",
                                reply.payload
                            )
                        });
                        (body, envelope)
                    }
                })
                .buffer_unordered(32)
                .collect()
                .await;
        for (body, envelope) in results {
            total += 1;
            if envelope.success {
                assert!(
                    acceptable(op, &body),
                    "{op} accepted a payload it should refuse: {:?}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                );
            } else {
                rejected += 1;
                assert!(
                    !envelope.message.is_empty(),
                    "{op}: an error without a message"
                );
                if matches!(*op, "unknown" | "config.bad") {
                    assert_eq!(envelope.message, "unsupported subject");
                }
            }
        }
        // Between subjects: the host still answers pings.
        let hosts = ctl.ping_hosts().await.unwrap();
        assert_eq!(ids(&hosts), vec![id.clone()], "after fuzzing {op}");
    }
    println!("{total} malformed control requests, {rejected} rejected with an error envelope");
    assert!(h.process.is_running());
    assert!(!h.process.log().contains("panicked"), "{}", h.process.log());

    // Publishes with no reply subject are ignored without harm, and so are malformed
    // auctions (a host that cannot bid stays silent).
    for _ in 0..200 {
        client
            .publish(ops[2].1.clone(), payload(&mut rng).into())
            .await
            .unwrap();
        client
            .publish(
                format!("{root}.component.auction"),
                payload(&mut rng).into(),
            )
            .await
            .unwrap();
    }
    client.flush().await.unwrap();
    let inv = ctl.host_inventory(&id).await.unwrap();
    assert_eq!(inv.host_id, id);
}
