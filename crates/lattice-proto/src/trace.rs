//! W3C trace context (`traceparent: 00-{trace-id}-{parent-id}-{flags}`) carried by calls.
//!
//! A call keeps the trace it belongs to: a server takes the caller's `traceparent`, and calls
//! it makes in turn carry the same trace id with a new parent id.

use std::fmt;

/// One `traceparent` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
    pub flags: u8,
}

fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    let bytes = uuid::Uuid::new_v4().into_bytes();
    out.copy_from_slice(&bytes[..N]);
    out
}

fn hex_to<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl TraceParent {
    /// A new trace (sampled).
    pub fn root() -> Self {
        Self {
            trace_id: random(),
            parent_id: random(),
            flags: 1,
        }
    }

    /// The context for a call made on behalf of this one: same trace, new parent id.
    pub fn child(&self) -> Self {
        Self {
            parent_id: random(),
            ..*self
        }
    }

    /// Parses a `traceparent` header (version 00); `None` when malformed or all-zero.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.trim().split('-');
        let (version, trace, parent, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "00" || parts.next().is_some() {
            return None;
        }
        let tp = Self {
            trace_id: hex_to(trace)?,
            parent_id: hex_to(parent)?,
            flags: hex_to::<1>(flags)?[0],
        };
        (tp.trace_id != [0; 16] && tp.parent_id != [0; 8]).then_some(tp)
    }

    /// The trace id as 32 hex digits.
    pub fn trace_id_hex(&self) -> String {
        self.trace_id.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The parent (span) id as 16 hex digits.
    pub fn parent_id_hex(&self) -> String {
        self.parent_id.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("00-")?;
        for b in self.trace_id {
            write!(f, "{b:02x}")?;
        }
        f.write_str("-")?;
        for b in self.parent_id {
            write!(f, "{b:02x}")?;
        }
        write!(f, "-{:02x}", self.flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prints_and_derives() {
        let s = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let tp = TraceParent::parse(s).unwrap();
        assert_eq!(tp.to_string(), s);
        let child = tp.child();
        assert_eq!(child.trace_id, tp.trace_id);
        assert_ne!(child.parent_id, tp.parent_id);
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-xyz-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad}");
        }
        assert!(TraceParent::parse(&TraceParent::root().to_string()).is_some());
    }
}
