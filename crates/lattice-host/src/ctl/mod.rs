//! The control-interface server: subscriptions, dispatch and replies.
//!
//! These subscriptions cover the whole interface:
//! - `{root}.host.ping`, `{root}.component.auction` and `{root}.provider.auction`: every
//!   (eligible) host answers
//!   (scatter-gather);
//! - `{root}.registry.put`: every host takes the credentials;
//! - `{root}.*.*.{host_id}`: every operation addressed to this host, known or not, so unknown
//!   ones get a clear "unsupported subject" instead of silence;
//! - `{root}.config.>` and `{root}.link.*` in queue groups `{root}.config` and `{root}.link`:
//!   config and links live in KV, so one host answers.
//!
//! Liveness operations (`host.ping`, `host.get`, `host.alive`) are answered at once by the task
//! reading their subscription: they are cheap and never wait behind other work. Every other
//! request runs in a task of its own, [`MAX_CONCURRENT_REQUESTS`] at a time, with up to
//! [`MAX_QUEUED_REQUESTS`] more waiting; past that a request is refused with "busy" at once,
//! so a flood of heavy requests costs bounded memory and never stalls the reading task.
//! Handlers are one file per group of operations; each returns the encoded reply.

mod component;
mod config;
mod host;
mod label;
mod link;
mod provider;
mod registry;
mod reply;

use std::sync::Arc;

use futures::StreamExt;
use lattice_proto::op::{Op, Target};
use lattice_proto::subject::CtlOp;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::shared::HostShared;
use crate::HostError;
use reply::{After, Handled};

/// Control requests (other than liveness) handled at once.
pub(crate) const MAX_CONCURRENT_REQUESTS: usize = 64;
/// Control requests waiting for one of those slots; more are refused with "busy".
pub(crate) const MAX_QUEUED_REQUESTS: usize = 1024;

/// Subscribes to the control interface and spawns one serving task per subscription.
pub(crate) async fn serve(shared: Arc<HostShared>) -> Result<Vec<JoinHandle<()>>, HostError> {
    let subscribe_err = |subject: &str| {
        let subject = subject.to_string();
        move |source| HostError::Subscribe { subject, source }
    };
    let nats = &shared.nats;
    let ping = shared.subjects.host_ping();
    let ping_sub = nats
        .subscribe(ping.clone())
        .await
        .map_err(subscribe_err(&ping))?;
    let ops = shared.subjects.host_ops_wildcard(&shared.me.id);
    let ops_sub = nats
        .subscribe(ops.clone())
        .await
        .map_err(subscribe_err(&ops))?;
    let (config, group) = shared.subjects.config_wildcard();
    let config_sub = nats
        .queue_subscribe(config.clone(), group)
        .await
        .map_err(subscribe_err(&config))?;
    let (links, links_group) = shared.subjects.link_wildcard();
    let link_sub = nats
        .queue_subscribe(links.clone(), links_group)
        .await
        .map_err(subscribe_err(&links))?;
    let auction = shared.subjects.component_auction();
    let auction_sub = nats
        .subscribe(auction.clone())
        .await
        .map_err(subscribe_err(&auction))?;
    let provider_auction = shared.subjects.provider_auction();
    let provider_auction_sub = nats
        .subscribe(provider_auction.clone())
        .await
        .map_err(subscribe_err(&provider_auction))?;
    let (claims, claims_group) = shared.subjects.claims_get();
    let claims_sub = nats
        .queue_subscribe(claims.clone(), claims_group)
        .await
        .map_err(subscribe_err(&claims))?;
    let registry = shared.subjects.registry_put();
    let registry_sub = nats
        .subscribe(registry.clone())
        .await
        .map_err(subscribe_err(&registry))?;

    let permits = Arc::new(Permits {
        running: Semaphore::new(MAX_CONCURRENT_REQUESTS),
        queued: Arc::new(Semaphore::new(
            MAX_QUEUED_REQUESTS + MAX_CONCURRENT_REQUESTS,
        )),
    });
    Ok([
        ping_sub,
        ops_sub,
        config_sub,
        link_sub,
        auction_sub,
        provider_auction_sub,
        claims_sub,
        registry_sub,
    ]
    .into_iter()
    .map(|sub| tokio::spawn(serve_subscription(shared.clone(), sub, permits.clone())))
    .collect())
}

/// The slots of control work shared by every subscription of a host.
struct Permits {
    running: Semaphore,
    /// Requests admitted (running or waiting to run).
    queued: Arc<Semaphore>,
}

async fn serve_subscription(
    shared: Arc<HostShared>,
    mut sub: async_nats::Subscriber,
    permits: Arc<Permits>,
) {
    while let Some(msg) = sub.next().await {
        if shared
            .subjects
            .parse(msg.subject.as_str())
            .and_then(|parsed| parsed.op())
            .is_some_and(Op::is_liveness)
        {
            handle_message(&shared, msg).await;
            continue;
        }
        let Ok(admitted) = permits.queued.clone().try_acquire_owned() else {
            tracing::debug!(subject = %msg.subject, "control request refused: busy");
            if let Some(reply_to) = msg.reply {
                let busy = Handled::error(format!(
                    "busy: this host is handling {MAX_CONCURRENT_REQUESTS} control requests with {MAX_QUEUED_REQUESTS} waiting; try again"
                ));
                if let Some(reply) = busy.reply {
                    let _ = shared.nats.publish(reply_to, reply).await;
                }
            }
            continue;
        };
        let shared = shared.clone();
        let permits = permits.clone();
        tokio::spawn(async move {
            if let Ok(running) = permits.running.acquire().await {
                handle_message(&shared, msg).await;
                drop(running);
            }
            drop(admitted);
        });
    }
}

async fn handle_message(shared: &Arc<HostShared>, msg: async_nats::Message) {
    let subject = msg.subject.as_str();
    let parsed = shared.subjects.parse(subject);
    // With traces on, each control operation is a span; work it starts (a scale) continues it.
    let op = parsed.as_ref().and_then(|p| p.op());
    let (span, trace) = crate::traces::start(
        shared.server.tracing.as_deref(),
        lattice_telemetry::Kind::Server,
        None,
        || match op {
            Some(op) => format!("ctl {}.{}", op.noun(), op.verb()),
            None => "ctl".to_string(),
        },
        || {
            let mut a = vec![lattice_telemetry::KeyValue::new(
                "lattice.ctl.subject",
                subject.to_string(),
            )];
            if let Some(op) = op {
                a.push(lattice_telemetry::KeyValue::new(
                    "lattice.ctl.operation",
                    format!("{}.{}", op.noun(), op.verb()),
                ));
            }
            a
        },
    );
    let handled = match parsed {
        Some(op) => {
            let dispatched = dispatch(shared, op, &msg.payload);
            lattice_runtime::CURRENT_TRACE
                .scope(trace, dispatched)
                .await
        }
        None => Handled::error("unsupported subject"),
    };
    if let Some(span) = span {
        span.end(None);
    }
    tracing::debug!(subject, "control request");
    if let (Some(reply_to), Some(reply)) = (msg.reply, handled.reply) {
        if let Err(e) = shared.nats.publish(reply_to, reply).await {
            tracing::warn!(subject, error = %e, "cannot send control reply");
        }
    }
    match handled.after {
        After::Nothing => {}
        After::Stop(reason) => {
            // Make sure the acknowledgement leaves before the connection is drained.
            let _ = shared.nats.flush().await;
            let _ = shared.stop.send(Some(reason));
        }
    }
}

async fn dispatch(shared: &Arc<HostShared>, parsed: CtlOp<'_>, body: &[u8]) -> Handled {
    let Some(op) = parsed.op() else {
        return Handled::error("unsupported subject");
    };
    match (op, parsed.target) {
        (_, Some(_)) if op.target() == Target::Lattice => Handled::error("unsupported subject"),
        (Op::ComponentScale, Some(_)) => component::scale(shared, body),
        (Op::ComponentUpdate, Some(_)) => component::update(shared, body),
        (Op::ComponentSignature, Some(_)) => component::signature(shared, body),
        (Op::ComponentScale | Op::ComponentUpdate | Op::ComponentSignature, None) => {
            Handled::error("unsupported subject")
        }
        (Op::ComponentAuction, _) => component::auction(shared, body),
        (Op::ProviderStart, Some(_)) => provider::start(&shared.me, &shared.providers, body),
        (Op::ProviderStop, Some(_)) => provider::stop(&shared.me, &shared.providers, body),
        (Op::ProviderStart | Op::ProviderStop, None) => Handled::error("unsupported subject"),
        (Op::ProviderAuction, _) => provider::auction(&shared.me, &shared.providers, body),
        (Op::LinkPut | Op::LinkDel | Op::LinkGet, _) => {
            link::handle(&shared.state, &shared.events, op, body).await
        }
        (Op::RegistryPut, _) => registry::put(&shared.components, body),
        // Lattice components are not signed (wascap claims are not read), so there are
        // none to list; wash and wadm get the empty list wasmCloud gives for unsigned ones.
        (Op::ClaimsGet, _) => Handled::reply(lattice_proto::CtlResponse::ok(Vec::<
            std::collections::HashMap<String, String>,
        >::new())),
        (Op::HostPing, _) => host::ping(shared),
        (Op::HostGet, _) => host::get(shared),
        (Op::HostAlive, _) => host::alive(&shared.server.serving, body),
        (Op::HostStop, _) => host::stop(&shared.me, body),
        (Op::LabelPut, _) => label::put(&shared.me, &shared.events, body).await,
        (Op::LabelDel, _) => label::del(&shared.me, &shared.events, body).await,
        (Op::ConfigPut | Op::ConfigGet | Op::ConfigDel, Some(name)) => {
            config::handle(&shared.state, &shared.events, op, name, body).await
        }
        (Op::ConfigPut | Op::ConfigGet | Op::ConfigDel, None) => {
            Handled::error(format!("{op} needs a config name in the subject"))
        }
    }
}
