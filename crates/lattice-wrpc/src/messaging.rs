//! `wasmcloud:messaging@0.2.0` values, for handing a component's `consumer` calls to a
//! messaging provider it is linked to (wasmCloud's messaging-nats, say):
//!
//! ```wit
//! record broker-message { subject: string, body: list<u8>, reply-to: option<string> }
//! publish: func(msg: broker-message) -> result<_, string>;
//! request: func(subject: string, body: list<u8>, timeout-ms: u32) -> result<broker-message, string>;
//! ```

use crate::codec::DecodeError;
use crate::leb;
use crate::prim::{bytes, option, put_bytes, put_option, string, trailing};

/// The interface and functions a provider serves.
pub const CONSUMER_INSTANCE: &str = "wasmcloud:messaging/consumer@0.2.0";
pub const PUBLISH: &str = "publish";
pub const REQUEST: &str = "request";

/// A message: subject, body and where answers go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BrokerMessage {
    pub subject: String,
    pub body: Vec<u8>,
    pub reply_to: Option<String>,
}

fn put_message(out: &mut Vec<u8>, m: &BrokerMessage) {
    put_bytes(out, m.subject.as_bytes());
    put_bytes(out, &m.body);
    put_option(out, &m.reply_to);
}

/// The parameters of `publish`.
pub fn encode_publish(m: &BrokerMessage, out: &mut Vec<u8>) {
    put_message(out, m);
}

/// The parameters of `request`.
pub fn encode_request(subject: &str, body: &[u8], timeout_ms: u32, out: &mut Vec<u8>) {
    put_bytes(out, subject.as_bytes());
    put_bytes(out, body);
    leb::write_unsigned(out, timeout_ms.into());
}

fn result_tag(input: &mut &[u8]) -> Result<u8, DecodeError> {
    let (&t, rest) = input.split_first().ok_or(DecodeError::Incomplete)?;
    *input = rest;
    Ok(t)
}

/// The results of `publish`: `Err` with the provider's reason.
pub fn decode_publish(mut input: &[u8]) -> Result<Result<(), String>, DecodeError> {
    let r = match result_tag(&mut input)? {
        0 => Ok(()),
        1 => Err(string(&mut input)?),
        t => return Err(DecodeError::Invalid(format!("result discriminant {t}"))),
    };
    trailing(input)?;
    Ok(r)
}

/// The results of `request`.
pub fn decode_request(mut input: &[u8]) -> Result<Result<BrokerMessage, String>, DecodeError> {
    let r = match result_tag(&mut input)? {
        0 => Ok(BrokerMessage {
            subject: string(&mut input)?,
            body: bytes(&mut input)?.to_vec(),
            reply_to: option(&mut input)?,
        }),
        1 => Err(string(&mut input)?),
        t => return Err(DecodeError::Invalid(format!("result discriminant {t}"))),
    };
    trailing(input)?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_decode_and_report_truncation() {
        let mut ok = vec![0];
        put_message(
            &mut ok,
            &BrokerMessage {
                subject: "s".into(),
                body: b"b".to_vec(),
                reply_to: None,
            },
        );
        assert_eq!(decode_request(&ok).unwrap().unwrap().body, b"b");
        for cut in 0..ok.len() {
            assert_eq!(decode_request(&ok[..cut]), Err(DecodeError::Incomplete));
        }
        assert_eq!(decode_publish(&[1, 2, b'n', b'o']), Ok(Err("no".into())));
        assert_eq!(decode_publish(&[0]), Ok(Ok(())));
        assert!(decode_publish(&[0, 0]).is_err());
    }
}
