//! HTTP as wasmCloud v1 carries it over wRPC: `wrpc:http/incoming-handler@0.1.0.handle`, the
//! function wasmCloud hosts serve HTTP components as and its http-server provider and
//! `wash call` invoke (wRPC's `wrpc:http@0.1.0` types, over `wasi:http@0.2.0`'s):
//!
//! ```wit
//! type fields = list<tuple<string, list<list<u8>>>>;
//! record request { body: stream<u8>, trailers: future<option<fields>>, method: method,
//!                  path-with-query: option<string>, scheme: option<scheme>,
//!                  authority: option<string>, headers: fields }
//! record response { body: stream<u8>, trailers: future<option<fields>>, status: u16,
//!                   headers: fields }
//! handle: func(request: request) -> result<response, error-code>;
//! ```
//!
//! A `stream<u8>` is written in place as a `list<u8>`: a non-empty one is the whole stream; an
//! empty one means the stream follows on the value's nested path (`{stream}.0.0` for both
//! bodies: field 0 of element 0) as `list<u8>` chunks, the last one empty ([`ByteChunks`]).
//! A `future<T>` is an `option<T>` in place: `some` is the value, `none` means it follows on
//! its nested path. Trailers are not forwarded: a request's are ignored and a response says
//! it has none.
//!
//! Not here: the exchange (`crate::transport`), serving a component (`lattice-host`).

use std::sync::LazyLock;

use wasm_wave::value::{Type, Value};

use crate::codec::DecodeError;
pub use crate::http::{Headers, ResponseHead};
use crate::leb;
use crate::prim::{bytes, option, put_bytes, put_option, string, trailing};

pub use lattice_proto::wrpc::{WRPC_HTTP_BODY_PATH, WRPC_HTTP_INSTANCE};

/// The head of a `wrpc:http` request, and its body when it came in place.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    pub method: String,
    pub path_with_query: Option<String>,
    pub scheme: Option<String>,
    pub authority: Option<String>,
    /// Header fields in order, one entry per value.
    pub headers: Headers,
    /// `Some`: the whole body (in place); `None`: it follows on [`WRPC_HTTP_BODY_PATH`].
    pub body: Option<Vec<u8>>,
}

/// The failure a handler reports in place of a response (`wasi:http`'s `error-code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    /// `HTTP-response-timeout`: no response in time.
    ResponseTimeout,
    /// `internal-error(option<string>)`.
    Internal(Option<String>),
    /// Any other case, in WAVE text (`connection-refused`, `DNS-error({...})`, ...).
    Other(String),
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorCode::ResponseTimeout => f.write_str("HTTP-response-timeout"),
            ErrorCode::Internal(None) => f.write_str("internal-error"),
            ErrorCode::Internal(Some(m)) => write!(f, "internal-error: {m}"),
            ErrorCode::Other(s) => f.write_str(s),
        }
    }
}

const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];
const METHOD_OTHER: u64 = 9;
const SCHEMES: [&str; 2] = ["http", "https"];
const SCHEME_OTHER: u64 = 2;
const ERROR_RESPONSE_TIMEOUT: u64 = 33;
const ERROR_INTERNAL: u64 = 38;

fn put_method(out: &mut Vec<u8>, m: &str) {
    match METHODS.iter().position(|k| *k == m) {
        Some(i) => leb::write_unsigned(out, i as u64),
        None => {
            leb::write_unsigned(out, METHOD_OTHER);
            put_bytes(out, m.as_bytes());
        }
    }
}

fn method(input: &mut &[u8]) -> Result<String, DecodeError> {
    match leb::read_unsigned(input, 32)? {
        METHOD_OTHER => string(input),
        i => METHODS
            .get(i as usize)
            .map(|m| m.to_string())
            .ok_or_else(|| DecodeError::Invalid(format!("method case {i}"))),
    }
}

fn put_scheme(out: &mut Vec<u8>, s: &Option<String>) {
    let Some(s) = s else {
        out.push(0);
        return;
    };
    out.push(1);
    match SCHEMES.iter().position(|k| k.eq_ignore_ascii_case(s)) {
        Some(i) => leb::write_unsigned(out, i as u64),
        None => {
            leb::write_unsigned(out, SCHEME_OTHER);
            put_bytes(out, s.as_bytes());
        }
    }
}

fn scheme(input: &mut &[u8]) -> Result<Option<String>, DecodeError> {
    match tag(input)? {
        0 => Ok(None),
        1 => match leb::read_unsigned(input, 32)? {
            SCHEME_OTHER => string(input).map(Some),
            i => SCHEMES
                .get(i as usize)
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| DecodeError::Invalid(format!("scheme case {i}"))),
        },
        t => Err(DecodeError::Invalid(format!("option discriminant {t}"))),
    }
}

fn tag(input: &mut &[u8]) -> Result<u8, DecodeError> {
    let (&t, rest) = input.split_first().ok_or(DecodeError::Incomplete)?;
    *input = rest;
    Ok(t)
}

/// `fields`: one entry per name, its values in order (names compared as they are).
fn put_fields(out: &mut Vec<u8>, h: &Headers) {
    let mut grouped: Vec<(&str, Vec<&[u8]>)> = Vec::new();
    for (name, value) in h {
        match grouped.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => grouped.push((name, vec![value])),
        }
    }
    leb::write_unsigned(out, grouped.len() as u64);
    for (name, values) in grouped {
        put_bytes(out, name.as_bytes());
        leb::write_unsigned(out, values.len() as u64);
        for v in values {
            put_bytes(out, v);
        }
    }
}

fn fields(input: &mut &[u8]) -> Result<Headers, DecodeError> {
    let n = leb::read_unsigned(input, 32)?;
    // Every entry takes at least two bytes: a count alone cannot make us allocate.
    if n > input.len() as u64 / 2 {
        return Err(DecodeError::Incomplete);
    }
    let mut out = Vec::new();
    for _ in 0..n {
        let name = string(input)?;
        let values = leb::read_unsigned(input, 32)?;
        if values > input.len() as u64 {
            return Err(DecodeError::Incomplete);
        }
        for _ in 0..values {
            out.push((name.clone(), bytes(input)?.to_vec()));
        }
    }
    Ok(out)
}

/// A `stream<u8>` in place: `Some(bytes)` when whole, `None` when it follows.
fn put_stream(out: &mut Vec<u8>, whole: Option<&[u8]>) {
    match whole {
        Some(b) if !b.is_empty() => put_bytes(out, b),
        _ => out.push(0),
    }
}

fn stream(input: &mut &[u8]) -> Result<Option<Vec<u8>>, DecodeError> {
    let b = bytes(input)?;
    Ok((!b.is_empty()).then(|| b.to_vec()))
}

/// Trailers in place: a future that is ready, with none.
fn put_no_trailers(out: &mut Vec<u8>) {
    out.extend_from_slice(&[1, 0]);
}

/// Trailers in place: skipped when ready, `Ok(())` when they follow (and are ignored).
fn skip_trailers(input: &mut &[u8]) -> Result<(), DecodeError> {
    match tag(input)? {
        0 => Ok(()),
        1 => match tag(input)? {
            0 => Ok(()),
            1 => fields(input).map(drop),
            t => Err(DecodeError::Invalid(format!("option discriminant {t}"))),
        },
        t => Err(DecodeError::Invalid(format!("future discriminant {t}"))),
    }
}

impl Request {
    /// The parameters of `handle`; a body that is `None` or empty follows on its path (see
    /// [`ByteChunks`]), so the caller must send it there, ending with an empty chunk.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_stream(out, self.body.as_deref());
        put_no_trailers(out);
        put_method(out, &self.method);
        put_option(out, &self.path_with_query);
        put_scheme(out, &self.scheme);
        put_option(out, &self.authority);
        put_fields(out, &self.headers);
    }

    /// Decodes the parameters of `handle`; [`DecodeError::Incomplete`] if more are needed.
    pub fn decode(mut input: &[u8]) -> Result<Self, DecodeError> {
        let body = stream(&mut input)?;
        skip_trailers(&mut input)?;
        let r = Request {
            method: method(&mut input)?,
            path_with_query: option(&mut input)?,
            scheme: scheme(&mut input)?,
            authority: option(&mut input)?,
            headers: fields(&mut input)?,
            body,
        };
        trailing(input)?;
        Ok(r)
    }
}

/// The results of `handle` for `head`, its body following on its path.
pub fn encode_response(head: &ResponseHead, out: &mut Vec<u8>) {
    out.push(0);
    put_stream(out, None);
    put_no_trailers(out);
    leb::write_unsigned(out, head.status.into());
    put_fields(out, &head.headers);
}

impl ErrorCode {
    /// The results of `handle` for this failure.
    pub fn encode_err(&self, out: &mut Vec<u8>) {
        out.push(1);
        match self {
            ErrorCode::ResponseTimeout => leb::write_unsigned(out, ERROR_RESPONSE_TIMEOUT),
            ErrorCode::Internal(m) => {
                leb::write_unsigned(out, ERROR_INTERNAL);
                put_option(out, m);
            }
            // Sent on as an internal error that names it.
            ErrorCode::Other(s) => {
                leb::write_unsigned(out, ERROR_INTERNAL);
                put_option(out, &Some(s.clone()));
            }
        }
    }
}

/// `wasi:http@0.2.0`'s `error-code`, for decoding any case of it.
static ERROR_CODE: LazyLock<Type> = LazyLock::new(|| {
    let opt = |t: Type| Some(Type::option(t));
    let record = |fields: Vec<(&str, Type)>| Type::record(fields).expect("a record with fields");
    let field_size = || {
        record(vec![
            ("field-name", Type::option(Type::STRING)),
            ("field-size", Type::option(Type::U32)),
        ])
    };
    let cases: Vec<(&str, Option<Type>)> = vec![
        ("DNS-timeout", None),
        (
            "DNS-error",
            Some(record(vec![
                ("rcode", Type::option(Type::STRING)),
                ("info-code", Type::option(Type::U16)),
            ])),
        ),
        ("destination-not-found", None),
        ("destination-unavailable", None),
        ("destination-IP-prohibited", None),
        ("destination-IP-unroutable", None),
        ("connection-refused", None),
        ("connection-terminated", None),
        ("connection-timeout", None),
        ("connection-read-timeout", None),
        ("connection-write-timeout", None),
        ("connection-limit-reached", None),
        ("TLS-protocol-error", None),
        ("TLS-certificate-error", None),
        (
            "TLS-alert-received",
            Some(record(vec![
                ("alert-id", Type::option(Type::U8)),
                ("alert-message", Type::option(Type::STRING)),
            ])),
        ),
        ("HTTP-request-denied", None),
        ("HTTP-request-length-required", None),
        ("HTTP-request-body-size", opt(Type::U64)),
        ("HTTP-request-method-invalid", None),
        ("HTTP-request-URI-invalid", None),
        ("HTTP-request-URI-too-long", None),
        ("HTTP-request-header-section-size", opt(Type::U32)),
        ("HTTP-request-header-size", opt(field_size())),
        ("HTTP-request-trailer-section-size", opt(Type::U32)),
        ("HTTP-request-trailer-size", Some(field_size())),
        ("HTTP-response-incomplete", None),
        ("HTTP-response-header-section-size", opt(Type::U32)),
        ("HTTP-response-header-size", Some(field_size())),
        ("HTTP-response-body-size", opt(Type::U64)),
        ("HTTP-response-trailer-section-size", opt(Type::U32)),
        ("HTTP-response-trailer-size", Some(field_size())),
        ("HTTP-response-transfer-coding", opt(Type::STRING)),
        ("HTTP-response-content-coding", opt(Type::STRING)),
        ("HTTP-response-timeout", None),
        ("HTTP-upgrade-failed", None),
        ("HTTP-protocol-error", None),
        ("loop-detected", None),
        ("configuration-error", None),
        ("internal-error", opt(Type::STRING)),
    ];
    Type::variant(cases).expect("error-code has cases")
});

/// The results of `handle`: a response head (its body follows on its path, or is whole in
/// place: the second element) or the handler's failure.
pub type Outcome = Result<(ResponseHead, Option<Vec<u8>>), ErrorCode>;

/// Decodes the results of `handle`; [`DecodeError::Incomplete`] if more are needed.
pub fn decode_outcome(mut input: &[u8]) -> Result<Outcome, DecodeError> {
    match tag(&mut input)? {
        0 => {
            let body = stream(&mut input)?;
            skip_trailers(&mut input)?;
            let status = leb::read_unsigned(&mut input, 16)? as u16;
            let headers = fields(&mut input)?;
            trailing(input)?;
            Ok(Ok((ResponseHead { status, headers }, body)))
        }
        1 => {
            let mut rest = input;
            let case = leb::read_unsigned(&mut rest, 32)?;
            let code = match case {
                ERROR_RESPONSE_TIMEOUT => {
                    input = rest;
                    ErrorCode::ResponseTimeout
                }
                ERROR_INTERNAL => {
                    input = rest;
                    ErrorCode::Internal(option(&mut input)?)
                }
                _ => {
                    let v: Value = crate::codec::decode(&*ERROR_CODE, &mut input)?;
                    ErrorCode::Other(
                        wasm_wave::to_string(&v).unwrap_or_else(|_| format!("case {case}")),
                    )
                }
            };
            trailing(input)?;
            Ok(Err(code))
        }
        t => Err(DecodeError::Invalid(format!("result discriminant {t}"))),
    }
}

/// Reads a `stream<u8>` that follows on a nested path, message by message: each payload
/// holds any part of the `list<u8>` chunks, the last one empty. Holds at most the bytes of
/// one chunk's length prefix between messages; data is handed on as it arrives.
#[derive(Debug, Default)]
pub struct ByteChunks {
    /// Bytes of the current chunk still to come.
    remaining: u64,
    /// A length prefix cut by a message boundary.
    prefix: Vec<u8>,
    done: bool,
}

impl ByteChunks {
    /// Whether the stream's last (empty) chunk was read.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Takes the next message's payload; appends the data it carries to `out`.
    pub fn push(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<bytes::Bytes>,
    ) -> Result<(), DecodeError> {
        while !input.is_empty() {
            if self.done {
                return Err(DecodeError::Invalid(format!(
                    "{} bytes after the end of the stream",
                    input.len()
                )));
            }
            if self.remaining > 0 {
                let n = self.remaining.min(input.len() as u64) as usize;
                out.push(bytes::Bytes::copy_from_slice(&input[..n]));
                input = &input[n..];
                self.remaining -= n as u64;
                continue;
            }
            self.prefix.push(input[0]);
            input = &input[1..];
            if self.prefix.last().is_some_and(|b| b & 0x80 != 0) {
                if self.prefix.len() >= 5 {
                    return Err(DecodeError::invalid("chunk length too long"));
                }
                continue;
            }
            let n = leb::read_unsigned(&mut self.prefix.as_slice(), 32)?;
            self.prefix.clear();
            if n == 0 {
                self.done = true;
            }
            self.remaining = n;
        }
        Ok(())
    }
}

/// One chunk of a `stream<u8>` that follows on a nested path (the last one is empty).
pub fn encode_chunk(data: &[u8], out: &mut Vec<u8>) {
    put_bytes(out, data);
}

#[cfg(test)]
mod tests;
