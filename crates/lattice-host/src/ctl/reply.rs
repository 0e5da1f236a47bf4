//! What a control handler answers: the encoded reply envelope, and what to do once it is sent.

use bytes::Bytes;
use lattice_proto::CtlResponse;
use serde::Serialize;

/// What a handler wants done after its reply is sent.
pub(crate) enum After {
    Nothing,
    Stop(crate::StopReason),
}

/// A handler's outcome: the encoded reply envelope (none: stay silent, as a host that does
/// not bid in an auction does) and any follow-up.
pub(crate) struct Handled {
    pub(super) reply: Option<Bytes>,
    pub(super) after: After,
}

impl Handled {
    pub(super) fn reply<T: Serialize>(response: CtlResponse<T>) -> Self {
        Self {
            reply: Some(encode(&response)),
            after: After::Nothing,
        }
    }

    pub(super) fn silent() -> Self {
        Self {
            reply: None,
            after: After::Nothing,
        }
    }

    pub(super) fn error(message: impl Into<String>) -> Self {
        Self::reply(CtlResponse::error(message))
    }
}

fn encode<T: Serialize>(response: &CtlResponse<T>) -> Bytes {
    serde_json::to_vec(response)
        .map(Bytes::from)
        // Our own response types always serialize; keep a valid envelope if one ever does not.
        .unwrap_or_else(|e| {
            Bytes::from(format!(
                r#"{{"success":false,"message":"cannot encode reply: {}"}}"#,
                e.to_string().replace('"', "'")
            ))
        })
}
