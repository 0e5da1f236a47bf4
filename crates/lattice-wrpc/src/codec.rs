//! The component-model value encoding wRPC 0.0.1 puts on the wire, for any value type that
//! implements [`wasm_wave::wasm::WasmValue`] (wasmtime's `Val` on hosts, wasm-wave's `Value`
//! in the CLI).
//!
//! bool, s8 and u8 are one byte; wider integers are LEB128 (signed or unsigned); floats are
//! little-endian; a char is its UTF-8 bytes; strings and lists carry a LEB128 u32 length;
//! records and tuples are their fields in order; variants and enums a LEB128 discriminant
//! (then the payload); option and result a 0/1 byte (then the payload); flags a little-endian
//! bit vector of ceil(n/8) bytes. A function's parameters (and results) are encoded one after
//! another, like a tuple.
//!
//! Not supported (rejected with an error): `stream`, `future`, resources, fixed-length lists.
//! Decoding never panics and never allocates more than the input justifies.

use std::borrow::Cow;

use wasm_wave::wasm::{WasmType, WasmTypeKind, WasmValue};

use crate::leb;

pub use crate::error::{DecodeError, EncodeError};

/// Most memory [`decode_values`] lets values take, decoded: a `list<u8>` takes one value per
/// byte (tens of bytes each), and nested lists of empty elements far more, so the wire size
/// alone bounds nothing.
pub const MAX_DECODED_BYTES: usize = 64 << 20;

/// What decoding may still spend, in bytes of decoded values.
struct Budget {
    left: usize,
    limit: usize,
}

impl Budget {
    fn new(limit: usize) -> Self {
        Self { left: limit, limit }
    }

    fn spend(&mut self, bytes: usize) -> Result<(), DecodeError> {
        match self.left.checked_sub(bytes) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(DecodeError::TooLarge { limit: self.limit }),
        }
    }

    fn spent(&self) -> usize {
        self.limit - self.left
    }
}

impl DecodeError {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        DecodeError::Invalid(msg.into())
    }
}

/// Most elements accepted for a list whose elements may encode to zero bytes (e.g.
/// `list<tuple<>>`), so a length prefix alone cannot make the decoder loop for billions.
const MAX_ZERO_SIZED_ELEMENTS: u64 = 1 << 16;

/// Appends the encoding of `vals` (of `types`, one each) to `out`.
pub fn encode_values<V: WasmValue>(
    types: &[V::Type],
    vals: &[V],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if types.len() != vals.len() {
        return Err(EncodeError(format!(
            "{} values given for {} types",
            vals.len(),
            types.len()
        )));
    }
    for (ty, v) in types.iter().zip(vals) {
        encode(ty, v, out)?;
    }
    Ok(())
}

/// Decodes exactly one value of each of `types` from `bytes`; trailing bytes are an error.
pub fn decode_values<V: WasmValue>(types: &[V::Type], bytes: &[u8]) -> Result<Vec<V>, DecodeError> {
    decode_values_within(types, bytes, MAX_DECODED_BYTES).map(|(vals, _)| vals)
}

/// Like [`decode_values`], letting the values take at most `limit` bytes decoded; returns
/// them with the bytes they take (an estimate from the value type's size and the string and
/// list lengths), for a caller that counts what it holds.
pub fn decode_values_within<V: WasmValue>(
    types: &[V::Type],
    bytes: &[u8],
    limit: usize,
) -> Result<(Vec<V>, usize), DecodeError> {
    let mut input = bytes;
    let mut budget = Budget::new(limit);
    budget.spend(types.len().saturating_mul(std::mem::size_of::<V>()))?;
    let vals = types
        .iter()
        .map(|ty| decode_in::<V>(ty, &mut input, &mut budget))
        .collect::<Result<Vec<_>, _>>()?;
    if !input.is_empty() {
        return Err(DecodeError::invalid(format!(
            "{} bytes left over after the last value",
            input.len()
        )));
    }
    Ok((vals, budget.spent()))
}

/// Appends the encoding of `v` (of type `ty`) to `out`.
pub fn encode<V: WasmValue>(ty: &V::Type, v: &V, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    use WasmTypeKind as K;
    let kind = ty.kind();
    // `unwrap_*` panics on a kind mismatch: check first.
    if v.kind() != kind {
        return Err(EncodeError(format!(
            "expected a {kind}, got a {}",
            v.kind()
        )));
    }
    match kind {
        K::Bool => out.push(u8::from(v.unwrap_bool())),
        K::S8 => out.push(v.unwrap_s8() as u8),
        K::U8 => out.push(v.unwrap_u8()),
        K::S16 => leb::write_signed(out, v.unwrap_s16().into()),
        K::S32 => leb::write_signed(out, v.unwrap_s32().into()),
        K::S64 => leb::write_signed(out, v.unwrap_s64()),
        K::U16 => leb::write_unsigned(out, v.unwrap_u16().into()),
        K::U32 => leb::write_unsigned(out, v.unwrap_u32().into()),
        K::U64 => leb::write_unsigned(out, v.unwrap_u64()),
        K::F32 => out.extend_from_slice(&v.unwrap_f32().to_le_bytes()),
        K::F64 => out.extend_from_slice(&v.unwrap_f64().to_le_bytes()),
        K::Char => {
            let mut buf = [0u8; 4];
            out.extend_from_slice(v.unwrap_char().encode_utf8(&mut buf).as_bytes());
        }
        K::String => write_bytes(out, v.unwrap_string().as_bytes())?,
        K::List => {
            let elem = ty
                .list_element_type()
                .ok_or_else(|| EncodeError("list type without element type".into()))?;
            let items: Vec<Cow<'_, V>> = v.unwrap_list().collect();
            write_len(out, items.len())?;
            for item in &items {
                encode(&elem, item.as_ref(), out)?;
            }
        }
        K::Record => {
            let fields: Vec<(Cow<'_, str>, V::Type)> = ty.record_fields().collect();
            let vals: Vec<(Cow<'_, str>, Cow<'_, V>)> = v.unwrap_record().collect();
            if fields.len() != vals.len() {
                return Err(EncodeError(format!(
                    "record has {} fields, type has {}",
                    vals.len(),
                    fields.len()
                )));
            }
            for ((name, fty), (vname, fv)) in fields.iter().zip(&vals) {
                if name != vname {
                    return Err(EncodeError(format!("expected field {name}, got {vname}")));
                }
                encode(fty, fv.as_ref(), out)?;
            }
        }
        K::Tuple => {
            let types: Vec<V::Type> = ty.tuple_element_types().collect();
            let vals: Vec<Cow<'_, V>> = v.unwrap_tuple().collect();
            if types.len() != vals.len() {
                return Err(EncodeError(format!(
                    "tuple has {} elements, type has {}",
                    vals.len(),
                    types.len()
                )));
            }
            for (t, e) in types.iter().zip(&vals) {
                encode(t, e.as_ref(), out)?;
            }
        }
        K::Variant => {
            let (case, payload) = v.unwrap_variant();
            let cases: Vec<(Cow<'_, str>, Option<V::Type>)> = ty.variant_cases().collect();
            let (index, case_ty) = cases
                .iter()
                .enumerate()
                .find(|(_, (name, _))| *name == case)
                .map(|(i, (_, t))| (i, t))
                .ok_or_else(|| EncodeError(format!("unknown variant case {case}")))?;
            leb::write_unsigned(out, index as u64);
            match (case_ty, payload) {
                (Some(t), Some(p)) => encode(t, p.as_ref(), out)?,
                (None, None) => {}
                _ => {
                    return Err(EncodeError(format!(
                        "payload of case {case} does not match its type"
                    )))
                }
            }
        }
        K::Enum => {
            let case = v.unwrap_enum();
            let index = ty
                .enum_cases()
                .position(|c| c == case)
                .ok_or_else(|| EncodeError(format!("unknown enum case {case}")))?;
            leb::write_unsigned(out, index as u64);
        }
        K::Option => {
            let inner = ty
                .option_some_type()
                .ok_or_else(|| EncodeError("option type without payload type".into()))?;
            match v.unwrap_option() {
                None => out.push(0),
                Some(p) => {
                    out.push(1);
                    encode(&inner, p.as_ref(), out)?;
                }
            }
        }
        K::Result => {
            let (ok_ty, err_ty) = ty
                .result_types()
                .ok_or_else(|| EncodeError("result type without cases".into()))?;
            let (tag, payload, pty) = match v.unwrap_result() {
                Ok(p) => (0u8, p, ok_ty),
                Err(p) => (1u8, p, err_ty),
            };
            out.push(tag);
            match (pty, payload) {
                (Some(t), Some(p)) => encode(&t, p.as_ref(), out)?,
                (None, None) => {}
                _ => return Err(EncodeError("result payload does not match its type".into())),
            }
        }
        K::Flags => {
            let names: Vec<Cow<'_, str>> = ty.flags_names().collect();
            let mut bits = vec![0u8; names.len().div_ceil(8)];
            for set in v.unwrap_flags() {
                let i = names
                    .iter()
                    .position(|n| *n == set)
                    .ok_or_else(|| EncodeError(format!("unknown flag {set}")))?;
                bits[i / 8] |= 1 << (i % 8);
            }
            out.extend_from_slice(&bits);
        }
        other => {
            return Err(EncodeError(format!(
                "{other} values are not supported over wRPC yet"
            )))
        }
    }
    Ok(())
}

fn write_len(out: &mut Vec<u8>, len: usize) -> Result<(), EncodeError> {
    let len = u32::try_from(len).map_err(|_| EncodeError("length does not fit in u32".into()))?;
    leb::write_unsigned(out, len.into());
    Ok(())
}

fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), EncodeError> {
    write_len(out, bytes.len())?;
    out.extend_from_slice(bytes);
    Ok(())
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], DecodeError> {
    if input.len() < n {
        return Err(DecodeError::Incomplete);
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

fn byte(input: &mut &[u8]) -> Result<u8, DecodeError> {
    Ok(take(input, 1)?[0])
}

fn made<V>(r: Result<V, wasm_wave::wasm::WasmValueError>) -> Result<V, DecodeError> {
    r.map_err(|e| DecodeError::invalid(e.to_string()))
}

/// Decodes one value of type `ty` from the front of `input`, advancing it, within
/// [`MAX_DECODED_BYTES`].
pub fn decode<V: WasmValue>(ty: &V::Type, input: &mut &[u8]) -> Result<V, DecodeError> {
    decode_in(ty, input, &mut Budget::new(MAX_DECODED_BYTES))
}

/// [`decode`], spending from `budget` for every value it makes (its parent already paid for
/// the value itself: a list pays for its elements before allocating them).
fn decode_in<V: WasmValue>(
    ty: &V::Type,
    input: &mut &[u8],
    budget: &mut Budget,
) -> Result<V, DecodeError> {
    use WasmTypeKind as K;
    let each = std::mem::size_of::<V>();
    Ok(match ty.kind() {
        K::Bool => match byte(input)? {
            0 => V::make_bool(false),
            1 => V::make_bool(true),
            b => return Err(DecodeError::invalid(format!("bool byte {b:#x}"))),
        },
        K::S8 => V::make_s8(byte(input)? as i8),
        K::U8 => V::make_u8(byte(input)?),
        K::S16 => V::make_s16(leb::read_signed(input, 16)? as i16),
        K::S32 => V::make_s32(leb::read_signed(input, 32)? as i32),
        K::S64 => V::make_s64(leb::read_signed(input, 64)?),
        K::U16 => V::make_u16(leb::read_unsigned(input, 16)? as u16),
        K::U32 => V::make_u32(leb::read_unsigned(input, 32)? as u32),
        K::U64 => V::make_u64(leb::read_unsigned(input, 64)?),
        K::F32 => {
            let b = take(input, 4)?;
            V::make_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        }
        K::F64 => {
            let b = take(input, 8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            V::make_f64(f64::from_le_bytes(a))
        }
        K::Char => {
            let first = *input.first().ok_or(DecodeError::Incomplete)?;
            let len = match first {
                0x00..=0x7f => 1,
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf7 => 4,
                _ => return Err(DecodeError::invalid("char is not valid UTF-8")),
            };
            let b = take(input, len)?;
            let s = std::str::from_utf8(b)
                .map_err(|_| DecodeError::invalid("char is not valid UTF-8"))?;
            V::make_char(
                s.chars()
                    .next()
                    .ok_or_else(|| DecodeError::invalid("empty char"))?,
            )
        }
        K::String => {
            let len = leb::read_unsigned(input, 32)? as usize;
            let b = take(input, len)?;
            let s = std::str::from_utf8(b)
                .map_err(|_| DecodeError::invalid("string is not valid UTF-8"))?;
            budget.spend(len)?;
            V::make_string(Cow::Borrowed(s))
        }
        K::List => {
            let elem = ty
                .list_element_type()
                .ok_or_else(|| DecodeError::invalid("list type without element type"))?;
            let len = leb::read_unsigned(input, 32)?;
            // Every element of a non-empty-encoding type takes at least one byte.
            let cap = if may_encode_empty(&elem) {
                MAX_ZERO_SIZED_ELEMENTS
            } else {
                input.len() as u64
            };
            if len > cap {
                if may_encode_empty(&elem) {
                    return Err(DecodeError::invalid(format!(
                        "list of {len} zero-sized elements"
                    )));
                }
                return Err(DecodeError::Incomplete);
            }
            budget.spend((len as usize).saturating_mul(each))?;
            let mut items = Vec::with_capacity(len as usize);
            for _ in 0..len {
                items.push(decode_in::<V>(&elem, input, budget)?);
            }
            made(V::make_list(ty, items))?
        }
        K::Record => {
            let fields: Vec<(Cow<'_, str>, V::Type)> = ty.record_fields().collect();
            budget.spend(fields.len().saturating_mul(each))?;
            let mut vals = Vec::with_capacity(fields.len());
            for (_, fty) in &fields {
                vals.push(decode_in::<V>(fty, input, budget)?);
            }
            made(V::make_record(
                ty,
                fields.iter().map(|(n, _)| n.as_ref()).zip(vals),
            ))?
        }
        K::Tuple => {
            let types: Vec<V::Type> = ty.tuple_element_types().collect();
            budget.spend(types.len().saturating_mul(each))?;
            let mut vals = Vec::with_capacity(types.len());
            for t in &types {
                vals.push(decode_in::<V>(t, input, budget)?);
            }
            made(V::make_tuple(ty, vals))?
        }
        K::Variant => {
            let index = leb::read_unsigned(input, 32)? as usize;
            let cases: Vec<(Cow<'_, str>, Option<V::Type>)> = ty.variant_cases().collect();
            let (name, case_ty) = cases.get(index).ok_or_else(|| {
                DecodeError::invalid(format!("variant case {index} out of range"))
            })?;
            let payload = match case_ty {
                Some(t) => {
                    budget.spend(each)?;
                    Some(decode_in::<V>(t, input, budget)?)
                }
                None => None,
            };
            made(V::make_variant(ty, name, payload))?
        }
        K::Enum => {
            let index = leb::read_unsigned(input, 32)? as usize;
            let case = ty
                .enum_cases()
                .nth(index)
                .ok_or_else(|| DecodeError::invalid(format!("enum case {index} out of range")))?;
            made(V::make_enum(ty, &case))?
        }
        K::Option => {
            let inner = ty
                .option_some_type()
                .ok_or_else(|| DecodeError::invalid("option type without payload type"))?;
            let val = match byte(input)? {
                0 => None,
                1 => {
                    budget.spend(each)?;
                    Some(decode_in::<V>(&inner, input, budget)?)
                }
                b => return Err(DecodeError::invalid(format!("option tag {b:#x}"))),
            };
            made(V::make_option(ty, val))?
        }
        K::Result => {
            let (ok_ty, err_ty) = ty
                .result_types()
                .ok_or_else(|| DecodeError::invalid("result type without cases"))?;
            let mut decode_opt = |t: Option<V::Type>, input: &mut &[u8]| match t {
                Some(t) => {
                    budget.spend(each)?;
                    decode_in::<V>(&t, input, budget).map(Some)
                }
                None => Ok(None),
            };
            let val = match byte(input)? {
                0 => Ok(decode_opt(ok_ty, input)?),
                1 => Err(decode_opt(err_ty, input)?),
                b => return Err(DecodeError::invalid(format!("result tag {b:#x}"))),
            };
            made(V::make_result(ty, val))?
        }
        K::Flags => {
            let names: Vec<Cow<'_, str>> = ty.flags_names().collect();
            let bits = take(input, names.len().div_ceil(8))?;
            let set = names
                .iter()
                .enumerate()
                .filter(|(i, _)| bits[i / 8] & (1 << (i % 8)) != 0)
                .map(|(_, n)| n.as_ref());
            made(V::make_flags(ty, set))?
        }
        other => {
            return Err(DecodeError::invalid(format!(
                "{other} values are not supported over wRPC yet"
            )))
        }
    })
}

/// Whether a value of `ty` can encode to zero bytes.
fn may_encode_empty<T: WasmType>(ty: &T) -> bool {
    match ty.kind() {
        WasmTypeKind::Record => ty.record_fields().all(|(_, t)| may_encode_empty(&t)),
        WasmTypeKind::Tuple => ty.tuple_element_types().all(|t| may_encode_empty(&t)),
        WasmTypeKind::Flags => ty.flags_names().next().is_none(),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
