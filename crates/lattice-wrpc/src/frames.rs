//! Reassembly of a value stream (parameters or results) from the NATS messages it arrives
//! in: the part of the exchange that reads bytes off the network, kept free of I/O so it can be
//! unit-tested and fuzzed (`fuzz/fuzz_targets/wrpc_frames.rs`).

use bytes::BytesMut;

use crate::codec::DecodeError;
use crate::error::{CallError, CallErrorKind};

/// What one more message did to a stream.
#[derive(Debug, PartialEq)]
pub enum Progress<T> {
    /// The bytes so far decode as a complete value.
    Done(T),
    /// More bytes are due.
    More,
}

/// Bytes of one value stream, as they arrive.
pub struct Frames {
    what: &'static str,
    buf: BytesMut,
    limit: usize,
    ended: bool,
}

impl Frames {
    /// A stream of `what` ("parameters", "results") that refuses to hold more than `limit`
    /// bytes, starting with the bytes of the first message.
    pub fn new(what: &'static str, first: &[u8], limit: usize) -> Self {
        Self {
            what,
            buf: BytesMut::from(first),
            limit,
            ended: false,
        }
    }

    /// Whether the peer ended the stream (sent an empty message).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Tries to decode what has arrived. An incomplete value after the end of the stream is
    /// a decode error, as is any invalid one.
    pub fn decode<T>(
        &self,
        decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<Progress<T>, CallError> {
        match decode(&self.buf) {
            Ok(v) => Ok(Progress::Done(v)),
            Err(DecodeError::Incomplete) if self.ended => Err(CallError::new(
                CallErrorKind::Decode,
                format!("{} ended before a complete value", self.what),
            )),
            Err(DecodeError::Incomplete) => Ok(Progress::More),
            Err(DecodeError::Invalid(m)) => Err(CallError::new(
                CallErrorKind::Decode,
                format!("{}: {m}", self.what),
            )),
            Err(e @ DecodeError::TooLarge { .. }) => Err(CallError::new(
                CallErrorKind::TooLarge,
                format!("{}: {e}", self.what),
            )),
        }
    }

    /// Adds one message's payload; an empty payload ends the stream.
    pub fn push(&mut self, payload: &[u8]) -> Result<(), CallError> {
        if payload.is_empty() {
            self.ended = true;
            return Ok(());
        }
        if self.buf.len() + payload.len() > self.limit {
            return Err(CallError::new(
                CallErrorKind::TooLarge,
                format!("{} exceed {} bytes", self.what, self.limit),
            ));
        }
        self.buf.extend_from_slice(payload);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_wave::value::{Type, Value};

    fn strings(b: &[u8]) -> Result<Vec<Value>, DecodeError> {
        crate::decode_values(&[Type::STRING], b)
    }

    #[test]
    fn a_value_split_across_messages_is_reassembled() {
        let mut bytes = Vec::new();
        crate::encode_values(
            &[Type::STRING],
            &[Value::from("hello".to_string())],
            &mut bytes,
        )
        .unwrap();
        let mut f = Frames::new("results", &bytes[..2], 1024);
        assert_eq!(f.decode(strings).unwrap(), Progress::More);
        f.push(&bytes[2..]).unwrap();
        assert!(matches!(f.decode(strings).unwrap(), Progress::Done(_)));
    }

    #[test]
    fn an_early_end_and_an_oversized_stream_are_errors() {
        let mut f = Frames::new("parameters", &[5, b'a'], 4);
        f.push(&[]).unwrap();
        let e = f.decode(strings).unwrap_err();
        assert_eq!(e.kind(), CallErrorKind::Decode);
        let mut f = Frames::new("parameters", &[5, b'a'], 4);
        assert_eq!(f.push(b"bcd").unwrap_err().kind(), CallErrorKind::TooLarge);
    }
}
