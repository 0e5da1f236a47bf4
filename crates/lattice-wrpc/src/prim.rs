//! The few component-model encodings the hand-written HTTP values share (`http`,
//! `wrpc_http`): length-prefixed bytes and strings, `option<string>`, and a value's end.
//! Values of any WIT type go through [`crate::codec`] instead.

use crate::codec::DecodeError;
use crate::http::Headers;
use crate::leb;

pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    leb::write_unsigned(out, b.len() as u64);
    out.extend_from_slice(b);
}

pub(crate) fn put_option(out: &mut Vec<u8>, s: &Option<String>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_bytes(out, s.as_bytes());
        }
    }
}

pub(crate) fn put_headers(out: &mut Vec<u8>, h: &Headers) {
    leb::write_unsigned(out, h.len() as u64);
    for (name, value) in h {
        put_bytes(out, name.as_bytes());
        put_bytes(out, value);
    }
}

pub(crate) fn bytes<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], DecodeError> {
    let n = leb::read_unsigned(input, 32)? as usize;
    if input.len() < n {
        return Err(DecodeError::Incomplete);
    }
    let (b, rest) = input.split_at(n);
    *input = rest;
    Ok(b)
}

pub(crate) fn string(input: &mut &[u8]) -> Result<String, DecodeError> {
    let b = bytes(input)?;
    String::from_utf8(b.to_vec()).map_err(|_| DecodeError::invalid("string is not UTF-8"))
}

pub(crate) fn option(input: &mut &[u8]) -> Result<Option<String>, DecodeError> {
    let (&tag, rest) = input.split_first().ok_or(DecodeError::Incomplete)?;
    *input = rest;
    match tag {
        0 => Ok(None),
        1 => string(input).map(Some),
        t => Err(DecodeError::invalid(format!("option discriminant {t}"))),
    }
}

pub(crate) fn headers(input: &mut &[u8]) -> Result<Headers, DecodeError> {
    let n = leb::read_unsigned(input, 32)?;
    // Each field takes at least two bytes: a length prefix alone cannot allocate much.
    if n > input.len() as u64 / 2 {
        return Err(DecodeError::Incomplete);
    }
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let name = string(input)?;
        out.push((name, bytes(input)?.to_vec()));
    }
    Ok(out)
}

pub(crate) fn trailing(rest: &[u8]) -> Result<(), DecodeError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::invalid(format!(
            "{} bytes after the value",
            rest.len()
        )))
    }
}
