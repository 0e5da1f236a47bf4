//! A component's `consumer` calls handed to the messaging provider its consumer link names
//! (wasmCloud's messaging-nats, or any server of `wasmcloud:messaging/consumer@0.2.0`), over
//! wRPC as a wasmCloud host hands them: what the provider may send is then the provider's
//! business, as on wasmCloud.

use std::sync::Arc;
use std::time::Duration;

use lattice_proto::grant;
use lattice_runtime::{Message, MessagingError};
use lattice_wrpc::messaging::{self as wire, BrokerMessage, CONSUMER_INSTANCE};
use lattice_wrpc::transport::{Call, SOURCE_HEADER};

use super::parts::Broker;

/// The target of `component`'s consumer link, when it is not the built-in capability.
pub(super) fn linked(broker: &Broker, component: &str) -> Option<String> {
    let route =
        broker
            .state
            .links
            .target(component, "wasmcloud", "messaging", "consumer", "default")?;
    (route.target != grant::MESSAGING).then_some(route.target)
}

async fn call<T>(
    broker: &Broker,
    component: &Arc<str>,
    target: &str,
    func: &str,
    params: Vec<u8>,
    budget: Duration,
    decode: impl Fn(&[u8]) -> Result<Result<T, String>, lattice_wrpc::DecodeError>,
) -> Result<T, MessagingError> {
    let prefix = lattice_proto::wrpc::component_prefix(&broker.lattice, target);
    let deadline = tokio::time::Instant::now() + budget;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(SOURCE_HEADER, &**component);
    let call =
        Call::new(&prefix, CONSUMER_INSTANCE, func, params.into(), deadline).with_headers(headers);
    match broker.calls.wrpc.invoke(call, decode).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(reason)) => Err(MessagingError::Failed(format!(
            "messaging provider {target}: {reason}"
        ))),
        Err(e) => Err(MessagingError::Failed(format!(
            "messaging provider {target}: {e}"
        ))),
    }
}

pub(super) async fn publish(
    broker: &Broker,
    component: &Arc<str>,
    target: &str,
    msg: Message,
) -> Result<(), MessagingError> {
    let mut params = Vec::new();
    wire::encode_publish(
        &BrokerMessage {
            subject: msg.subject,
            body: msg.body,
            reply_to: msg.reply_to,
        },
        &mut params,
    );
    call(
        broker,
        component,
        target,
        wire::PUBLISH,
        params,
        broker.call_timeout,
        wire::decode_publish,
    )
    .await
}

pub(super) async fn request(
    broker: &Broker,
    component: &Arc<str>,
    target: &str,
    subject: String,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Message, MessagingError> {
    let timeout = timeout.min(broker.call_timeout);
    let mut params = Vec::new();
    let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    wire::encode_request(&subject, &body, ms, &mut params);
    // The provider waits `timeout` for the answer; the call gets a moment more to return it.
    let budget = timeout + Duration::from_secs(1);
    let m = call(
        broker,
        component,
        target,
        wire::REQUEST,
        params,
        budget,
        wire::decode_request,
    )
    .await?;
    Ok(Message {
        subject: m.subject,
        body: m.body,
        reply_to: m.reply_to,
    })
}
