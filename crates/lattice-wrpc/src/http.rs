//! HTTP requests and responses between hosts: how one host hands a request it received to a
//! component running on another, and streams the response back.
//!
//! The function is `lattice:http/incoming-handler@0.2.0.handle`, served like any export (in
//! the component's queue group). Its parameter and its first result use the component-model
//! encoding of
//!
//! ```wit
//! record request { method: string, path-with-query: string, scheme: option<string>,
//!                  authority: option<string>, headers: list<tuple<string, list<u8>>>,
//!                  body: list<u8>, body-follows: bool }
//! record response-head { status: u16, headers: list<tuple<string, list<u8>>> }
//! handle: func(request: request) -> response-head;
//! ```
//!
//! A request body known to be small travels in `body`; any other follows the request as a
//! stream of parameter chunks (`body-follows`), and the response body follows the head as a
//! stream of result chunks, both with flow control (see
//! [`crate::transport::Client::invoke_streaming`]). So a long or endless body (an upload, a
//! download, server-sent events) reaches the other side as it is written. wasmCloud's
//! `wrpc:http/incoming-handler@0.1.0` ([`crate::wrpc_http`]) carries bodies as `stream<u8>` on
//! nested paths without flow control; that is why Lattice hosts talk this function of their own
//! between them, and `wrpc:http` to wasmCloud's hosts and providers.

use crate::codec::DecodeError;
use crate::prim::{bytes, headers, option, put_bytes, put_headers, put_option, string, trailing};

pub use lattice_proto::wrpc::{HTTP_FUNC, HTTP_INSTANCE};

/// Header fields, in order, repeated names allowed.
pub type Headers = Vec<(String, Vec<u8>)>;

/// An HTTP request: its head, and its body or the first part of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    pub method: String,
    pub path_with_query: String,
    pub scheme: Option<String>,
    pub authority: Option<String>,
    pub headers: Headers,
    pub body: Vec<u8>,
    /// The rest of the body streams after the request.
    pub body_follows: bool,
}

/// The status and headers of an HTTP response; its body follows as a stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: Headers,
}

impl Request {
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, self.method.as_bytes());
        put_bytes(out, self.path_with_query.as_bytes());
        put_option(out, &self.scheme);
        put_option(out, &self.authority);
        put_headers(out, &self.headers);
        put_bytes(out, &self.body);
        out.push(u8::from(self.body_follows));
    }

    /// Decodes a whole request; [`DecodeError::Incomplete`] if more bytes are needed.
    pub fn decode(mut input: &[u8]) -> Result<Self, DecodeError> {
        let r = Request {
            method: string(&mut input)?,
            path_with_query: string(&mut input)?,
            scheme: option(&mut input)?,
            authority: option(&mut input)?,
            headers: headers(&mut input)?,
            body: bytes(&mut input)?.to_vec(),
            body_follows: match input.split_first() {
                None => return Err(DecodeError::Incomplete),
                Some((0, rest)) => {
                    input = rest;
                    false
                }
                Some((1, rest)) => {
                    input = rest;
                    true
                }
                Some((b, _)) => return Err(DecodeError::invalid(format!("bool byte {b}"))),
            },
        };
        trailing(input)?;
        Ok(r)
    }
}

impl ResponseHead {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.status.to_le_bytes());
        put_headers(out, &self.headers);
    }

    /// Decodes a whole head; [`DecodeError::Incomplete`] if more bytes are needed.
    pub fn decode(mut input: &[u8]) -> Result<Self, DecodeError> {
        if input.len() < 2 {
            return Err(DecodeError::Incomplete);
        }
        let status = u16::from_le_bytes([input[0], input[1]]);
        input = &input[2..];
        let r = ResponseHead {
            status,
            headers: headers(&mut input)?,
        };
        trailing(input)?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reports_truncation() {
        let req = Request {
            method: "POST".into(),
            path_with_query: "/a?b=c".into(),
            scheme: Some("http".into()),
            authority: None,
            headers: vec![("x".into(), b"1".to_vec()), ("x".into(), vec![0xff])],
            body: vec![7; 300],
            body_follows: true,
        };
        let mut b = Vec::new();
        req.encode(&mut b);
        assert_eq!(Request::decode(&b), Ok(req));
        for cut in 0..b.len() {
            assert_eq!(
                Request::decode(&b[..cut]),
                Err(DecodeError::Incomplete),
                "{cut}"
            );
        }
        let resp = ResponseHead {
            status: 404,
            headers: vec![("content-type".into(), b"text/plain".to_vec())],
        };
        let mut b = Vec::new();
        resp.encode(&mut b);
        assert_eq!(ResponseHead::decode(&b), Ok(resp));
        b.push(0);
        assert!(matches!(
            ResponseHead::decode(&b),
            Err(DecodeError::Invalid(_))
        ));
        // A length need not be minimal LEB128 (the fuzzer's first find): the value is the
        // same, and it re-encodes minimally.
        let r = ResponseHead::decode(&[32, 5, 0x80, 0]).unwrap();
        assert_eq!((r.status, r.headers.len()), (0x0520, 0));
        let mut again = Vec::new();
        r.encode(&mut again);
        assert_eq!(again, [32, 5, 0]);
    }
}
