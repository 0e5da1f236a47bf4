//! LEB128 integers, as the component-model value encoding uses them.

use crate::error::DecodeError;

pub fn write_unsigned(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

pub fn write_signed(out: &mut Vec<u8>, mut v: i64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        let done = (v == 0 && byte & 0x40 == 0) || (v == -1 && byte & 0x40 != 0);
        if done {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads an unsigned LEB128 of at most `bits` bits.
pub fn read_unsigned(input: &mut &[u8], bits: u32) -> Result<u64, DecodeError> {
    let mut result: u128 = 0;
    for i in 0..bits.div_ceil(7) {
        let Some((&byte, rest)) = input.split_first() else {
            return Err(DecodeError::Incomplete);
        };
        *input = rest;
        result |= u128::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if result >> bits != 0 {
                return Err(DecodeError::invalid(format!(
                    "LEB128 value overflows u{bits}"
                )));
            }
            return Ok(result as u64);
        }
    }
    Err(DecodeError::invalid(format!(
        "LEB128 encoding of u{bits} too long"
    )))
}

/// Reads a signed LEB128 of at most `bits` bits.
pub fn read_signed(input: &mut &[u8], bits: u32) -> Result<i64, DecodeError> {
    let mut result: i128 = 0;
    let mut shift = 0u32;
    for _ in 0..bits.div_ceil(7) {
        let Some((&byte, rest)) = input.split_first() else {
            return Err(DecodeError::Incomplete);
        };
        *input = rest;
        result |= i128::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            if byte & 0x40 != 0 {
                result |= -1i128 << shift;
            }
            let limit = 1i128 << (bits - 1);
            if result < -limit || result >= limit {
                return Err(DecodeError::invalid(format!(
                    "LEB128 value overflows s{bits}"
                )));
            }
            return Ok(result as i64);
        }
    }
    Err(DecodeError::invalid(format!(
        "LEB128 encoding of s{bits} too long"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_the_edges() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            write_unsigned(&mut out, v);
            assert_eq!(read_unsigned(&mut out.as_slice(), 64).unwrap(), v);
        }
        for v in [
            0i64,
            -1,
            63,
            64,
            -64,
            -65,
            i32::MIN as i64,
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = Vec::new();
            write_signed(&mut out, v);
            assert_eq!(read_signed(&mut out.as_slice(), 64).unwrap(), v, "{v}");
        }
        // Known encodings.
        let mut out = Vec::new();
        write_unsigned(&mut out, 624_485);
        assert_eq!(out, [0xe5, 0x8e, 0x26]);
        out.clear();
        write_signed(&mut out, -123_456);
        assert_eq!(out, [0xc0, 0xbb, 0x78]);
    }

    #[test]
    fn refuses_overflow_and_truncation() {
        let mut out = Vec::new();
        write_unsigned(&mut out, u64::from(u32::MAX) + 1);
        assert!(read_unsigned(&mut out.as_slice(), 32).is_err());
        assert_eq!(
            read_unsigned(&mut [0x80u8].as_slice(), 32),
            Err(DecodeError::Incomplete)
        );
        assert!(read_unsigned(&mut [0xff, 0xff, 0xff, 0xff, 0xff, 0x01].as_slice(), 32).is_err());
        let mut out = Vec::new();
        write_signed(&mut out, i64::from(i16::MAX) + 1);
        assert!(read_signed(&mut out.as_slice(), 16).is_err());
    }
}
