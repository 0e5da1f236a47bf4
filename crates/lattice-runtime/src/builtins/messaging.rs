//! `wasmcloud:messaging/consumer` for guests: their publishes and requests, turned into calls
//! on the host's [`Messaging`].

use std::sync::Arc;
use std::time::Duration;

use super::wasmcloud::messaging::{consumer, types::BrokerMessage};
use crate::messaging::{Message, Messaging};
use crate::store::Ctx;

impl Ctx {
    fn messaging(&self) -> Result<Arc<dyn Messaging>, String> {
        self.messaging
            .clone()
            .ok_or_else(|| "this host has no messaging".to_string())
    }
}

impl super::wasmcloud::messaging::types::Host for Ctx {}

impl consumer::Host for Ctx {
    async fn request(
        &mut self,
        subject: String,
        body: Vec<u8>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<BrokerMessage, String>> {
        let m = match self.messaging() {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        let timeout = Duration::from_millis(timeout_ms.into());
        Ok(m.request(self.component_id.clone(), subject, body, timeout)
            .await
            .map(|r| BrokerMessage {
                subject: r.subject,
                body: r.body,
                reply_to: r.reply_to,
            })
            .map_err(|e| e.to_string()))
    }

    async fn publish(&mut self, msg: BrokerMessage) -> wasmtime::Result<Result<(), String>> {
        let m = match self.messaging() {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        let msg = Message {
            subject: msg.subject,
            body: msg.body,
            reply_to: msg.reply_to,
        };
        Ok(m.publish(self.component_id.clone(), msg)
            .await
            .map_err(|e| e.to_string()))
    }
}
