//! The control interface's reply envelope, and decoding of request bodies.
//!
//! Every reply is `{"success": bool, "message": string, "response": T?}`. Every request body
//! that arrives from the network is decoded by [`decode_request`], which never panics and says
//! what was wrong, so a malformed payload gets an error envelope and the host keeps serving.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// Largest request body a host will try to decode; anything larger is refused before parsing.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// The `{success, message, response}` envelope of every control-interface reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CtlResponse<T> {
    pub success: bool,
    #[serde(default)]
    pub message: String,
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub response: Option<T>,
}

fn none<T>() -> Option<T> {
    None
}

impl<T> CtlResponse<T> {
    /// A successful reply carrying `response`.
    pub fn ok(response: T) -> Self {
        Self {
            success: true,
            message: String::new(),
            response: Some(response),
        }
    }
}

impl CtlResponse<()> {
    /// A successful reply without a body.
    pub fn success() -> Self {
        Self {
            success: true,
            message: String::new(),
            response: None,
        }
    }

    /// A successful reply without a body but with a message.
    pub fn success_with(message: impl Into<String>) -> Self {
        Self {
            success: true,
            message: message.into(),
            response: None,
        }
    }

    /// A failed reply saying why.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            success: false,
            message: message.into(),
            response: None,
        }
    }
}

/// Why a request body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("request body is empty; expected a JSON {expected}")]
    Empty { expected: &'static str },
    #[error("request body is {len} bytes, over the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("malformed JSON request body (expected {expected}): {detail}")]
    Malformed {
        expected: &'static str,
        detail: String,
    },
}

/// Decodes a JSON request body into `T`, describing `expected` in errors (e.g. "label object
/// {key, value}"). Never panics, whatever the bytes.
pub fn decode_request<T: DeserializeOwned>(
    body: &[u8],
    expected: &'static str,
) -> Result<T, DecodeError> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(DecodeError::TooLarge {
            len: body.len(),
            max: MAX_REQUEST_BYTES,
        });
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::Empty { expected });
    }
    serde_json::from_slice(body).map_err(|e| DecodeError::Malformed {
        expected,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn envelope_matches_wasmcloud_shape() {
        let json = serde_json::to_value(CtlResponse::error("unsupported subject")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"success": false, "message": "unsupported subject"})
        );
        let ok: CtlResponse<u32> =
            serde_json::from_str(r#"{"success":true,"message":"","response":7}"#).unwrap();
        assert_eq!(ok.response, Some(7));
        // wasmCloud omits `message` at times; a missing `response` is None.
        let bare: CtlResponse<u32> = serde_json::from_str(r#"{"success":true}"#).unwrap();
        assert_eq!(bare.response, None);
    }

    #[test]
    fn decode_errors_say_what_is_wrong() {
        let e = decode_request::<BTreeMap<String, String>>(b"", "string map").unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        let e = decode_request::<BTreeMap<String, String>>(b"{\"a\":1}", "string map").unwrap_err();
        assert!(e.to_string().contains("malformed JSON"), "{e}");
        let big = vec![b' '; MAX_REQUEST_BYTES + 1];
        assert!(matches!(
            decode_request::<BTreeMap<String, String>>(&big, "x"),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn decode_never_panics_on_garbage() {
        // A cheap deterministic sweep; the fuzz target in `fuzz/` goes further.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for len in 0..2000usize {
            let bytes: Vec<u8> = (0..len % 97)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x & 0xff) as u8
                })
                .collect();
            let _ = decode_request::<crate::ctl::HostLabel>(&bytes, "label");
            let _ = decode_request::<crate::ctl::StopHostCommand>(&bytes, "stop");
            let _ = decode_request::<crate::ctl::ConfigMap>(&bytes, "map");
        }
    }
}
