//! Handles messages on subscribed subjects: answers requests with the body upper-cased.

wit_bindgen::generate!({ path: "../wit", world: "echo-component", generate_all });

use exports::wasmcloud::messaging::handler::Guest;
use wasmcloud::messaging::{consumer, types::BrokerMessage};

struct Echo;

impl Guest for Echo {
    fn handle_message(msg: BrokerMessage) -> Result<(), String> {
        let Some(reply_to) = msg.reply_to else {
            return Ok(());
        };
        consumer::publish(&BrokerMessage {
            subject: reply_to,
            body: msg.body.to_ascii_uppercase(),
            reply_to: None,
        })
    }
}

export!(Echo);
