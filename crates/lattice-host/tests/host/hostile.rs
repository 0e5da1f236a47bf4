//! Hostile guests: a component of our own (`snoop`) tries every subject and bucket that would
//! let it act as its host. Each must fail with an error naming what it lacks, the host must
//! keep serving, and nothing the lattice holds may change or leak; then the subjects and
//! buckets its links grant must work.

use std::time::Duration;

use futures::StreamExt;
use lattice_host::Val;
use lattice_proto::ctl::Link;
use lattice_testkit::NatsServer;

use crate::common::*;

const SNOOP: &str = "lattice:examples/snoop@0.1.0";
const SECRET: &str = "s3cr3t-value-never-leaks";
/// The body of everything snoop sends, to tell its messages from the lattice's own.
const MARK: &[u8] = b"snoop-was-here";

/// What the host answered to one of snoop's attempts: `Ok` with the answer's bytes, or the
/// refusal's text.
async fn attempt(host: &lattice_host::Host, func: &str, params: &[Val]) -> Result<Vec<u8>, String> {
    let r = host.call("snoop", Some(SNOOP), func, params).await;
    match r
        .unwrap_or_else(|e| panic!("snoop.{func} trapped: {e}"))
        .remove(0)
    {
        Val::Result(Ok(None)) => Ok(Vec::new()),
        Val::Result(Ok(Some(v))) => match *v {
            Val::List(bytes) => Ok(bytes
                .into_iter()
                .map(|b| match b {
                    Val::U8(b) => b,
                    other => panic!("not a byte: {other:?}"),
                })
                .collect()),
            other => panic!("unexpected answer {other:?}"),
        },
        Val::Result(Err(Some(e))) => match *e {
            Val::String(s) => Err(s),
            other => panic!("unexpected error {other:?}"),
        },
        other => panic!("unexpected result {other:?}"),
    }
}

fn bytes(b: &[u8]) -> Val {
    Val::List(b.iter().map(|b| Val::U8(*b)).collect())
}

async fn publish(host: &lattice_host::Host, subject: &str) -> Result<Vec<u8>, String> {
    let params = [Val::String(subject.into()), Val::Option(None), bytes(MARK)];
    attempt(host, "publish", &params).await
}

async fn publish_with_reply(
    host: &lattice_host::Host,
    subject: &str,
    reply: &str,
) -> Result<Vec<u8>, String> {
    let params = [
        Val::String(subject.into()),
        Val::Option(Some(Box::new(Val::String(reply.into())))),
        bytes(MARK),
    ];
    attempt(host, "publish", &params).await
}

async fn request(host: &lattice_host::Host, subject: &str) -> Result<Vec<u8>, String> {
    let params = [Val::String(subject.into()), bytes(MARK), Val::U32(500)];
    attempt(host, "request", &params).await
}

async fn kv_set(host: &lattice_host::Host, bucket: &str) -> Result<Vec<u8>, String> {
    let params = [
        Val::String(bucket.into()),
        Val::String("k".into()),
        bytes(b"v"),
    ];
    attempt(host, "kv-set", &params).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_cannot_act_as_its_host_and_reaches_only_what_its_links_grant() {
    let nats = NatsServer::start().unwrap();
    let ctl = ctl(&nats.url(), "default").await;
    let host = in_process_host(&nats.url(), "default").await;
    let id = host.id().to_string();
    put_config(&ctl, "db", &[("password", SECRET)]).await;
    let cmd = scale_cmd(&component_ref("snoop"), "snoop", 2);
    assert_eq!(
        scale(&ctl, &id, &cmd).await.event_type(),
        Some("component_scaled")
    );
    let links_before = ctl.get_links().await.unwrap();

    // Everything the guest sends is watched: nothing may reach NATS.
    let mut seen = ctl.nats().subscribe(">").await.unwrap();
    ctl.nats().flush().await.unwrap();

    // No link at all: even an ordinary subject is refused, naming the missing link.
    let e = publish(&host, "app.hello").await.unwrap_err();
    assert!(
        e.contains("denied") && e.contains("wasmcloud:messaging/consumer"),
        "{e}"
    );
    let e = kv_set(&host, "default").await.unwrap_err();
    assert!(e.contains("AccessDenied"), "{e}");

    // Granted messaging (any subject that is not reserved): the lattice's own are still shut.
    let mut consumer = Link::new(
        "snoop",
        "messaging",
        "wasmcloud",
        "messaging",
        &["consumer"],
    );
    ctl.put_link(&consumer).await.unwrap();
    lattice_testkit::wait::until_async(
        "the consumer link seen by the host",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async { publish(&host, "app.hello").await.ok() },
    )
    .await
    .unwrap();
    let forbidden = [
        (
            format!("wasmbus.ctl.v1.default.host.stop.{id}"),
            "control interface",
        ),
        (
            "wasmbus.ctl.v1.default.config.get.db".to_string(),
            "control interface",
        ),
        (
            "wasmbus.ctl.v1.default.link.put".to_string(),
            "control interface",
        ),
        (
            "wasmbus.ctl.v1.default.component.scale.x".to_string(),
            "control interface",
        ),
        (
            "wasmbus.ctl.v1.other-lattice.host.ping".to_string(),
            "control interface",
        ),
        (
            "wasmbus.evt.default.host_stopped".to_string(),
            "control interface",
        ),
        ("$JS.API.STREAM.LIST".to_string(), "JetStream"),
        ("$KV.CONFIGDATA_default.db".to_string(), "JetStream"),
        ("$SYS.REQ.SERVER.PING".to_string(), "JetStream"),
        ("_INBOX.guessed.1".to_string(), "reply inboxes"),
        (
            "default.calc.wrpc.0.0.1.lattice:examples/calc@0.1.0.add".to_string(),
            "wRPC",
        ),
        ("other.x.wrpc.0.0.1.i.f".to_string(), "wRPC"),
    ];
    for (subject, why) in &forbidden {
        for r in [publish(&host, subject).await, request(&host, subject).await] {
            let e = r.expect_err(subject);
            assert!(e.contains("denied") && e.contains(why), "{subject}: {e}");
        }
        // Nor may it aim others' answers at them.
        let e = publish_with_reply(&host, "app.ask", subject)
            .await
            .unwrap_err();
        assert!(
            e.contains("denied") && e.contains(why),
            "reply-to {subject}: {e}"
        );
    }
    for bad in ["app.*", "app.>", "", "a..b", "a b"] {
        let e = publish(&host, bad).await.unwrap_err();
        assert!(e.contains("invalid subject"), "{bad:?}: {e}");
    }

    // Narrowed to `app.>`: other subjects are refused, naming the grant.
    put_config(&ctl, "snoop-pub", &[("publish", "app.>")]).await;
    consumer.target_config = vec!["snoop-pub".into()];
    ctl.put_link(&consumer).await.unwrap();
    let e = lattice_testkit::wait::until_async(
        "the narrowed grant seen by the host",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async { publish(&host, "orders.new").await.err() },
    )
    .await
    .unwrap();
    assert!(e.contains("publish=app.>"), "{e}");

    // Key-value: only the granted bucket opens.
    put_config(&ctl, "snoop-kv", &[("buckets", "granted")]).await;
    let mut kv = Link::new("snoop", "keyvalue", "wasi", "keyvalue", &["store"]);
    kv.target_config = vec!["snoop-kv".into()];
    ctl.put_link(&kv).await.unwrap();
    lattice_testkit::wait::until_async(
        "the bucket granted",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async { kv_set(&host, "granted").await.ok() },
    )
    .await
    .unwrap();
    for other in [
        "default",
        "demo",
        "CONFIGDATA_default",
        "LATTICEDATA_default",
    ] {
        let e = kv_set(&host, other).await.unwrap_err();
        assert!(e.contains("AccessDenied"), "{other}: {e}");
    }

    // What reached NATS from the guest: granted subjects only.
    ctl.nats().flush().await.unwrap();
    publish(&host, "app.last").await.unwrap();
    let mut from_guest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(m) = seen.next().await {
            if m.payload.as_ref() == MARK {
                from_guest.push(m.subject.to_string());
            }
            if m.subject.as_str() == "app.last" {
                break;
            }
        }
    })
    .await
    .expect("the granted publish reached NATS");
    // `orders.new` was granted too until the host saw the narrowed link, and the wait for
    // that may have sent it before; nothing reserved ever got through.
    for s in &from_guest {
        assert!(
            (s.starts_with("app.") || s == "orders.new")
                && lattice_proto::grant::reserved(s).is_none(),
            "the guest reached {s}"
        );
    }

    // The host is up, its lattice unchanged, and no config value went anywhere.
    assert_eq!(ctl.ping_hosts().await.unwrap().len(), 1);
    let mut links_after = ctl.get_links().await.unwrap();
    links_after.retain(|l| l.source_id != "snoop");
    assert_eq!(links_after, links_before, "links changed");
    let inv = ctl.host_inventory(&id).await.unwrap();
    assert_eq!(
        inv.components.len(),
        1,
        "components changed: {:?}",
        inv.components
    );
    assert_eq!(
        ctl.get_config("db").await.unwrap().unwrap()["password"],
        SECRET,
        "config changed"
    );
    host.shutdown(lattice_host::StopReason::Signal).await;
}
