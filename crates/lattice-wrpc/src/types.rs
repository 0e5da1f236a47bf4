//! Function signatures as data, so a client without the component (the CLI) can encode
//! arguments and decode results: built from any [`WasmType`] on the host, turned into
//! wasm-wave types on the client.

use serde::{Deserialize, Serialize};
use wasm_wave::value::Type as WaveType;
use wasm_wave::wasm::{WasmType, WasmTypeKind};

/// A type that cannot be described or rebuilt, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TypeError(String);

/// A WIT value type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TypeDesc {
    Bool,
    S8,
    S16,
    S32,
    S64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
    Char,
    String,
    List {
        element: Box<TypeDesc>,
    },
    Record {
        fields: Vec<(String, TypeDesc)>,
    },
    Tuple {
        elements: Vec<TypeDesc>,
    },
    Variant {
        cases: Vec<(String, Option<TypeDesc>)>,
    },
    Enum {
        cases: Vec<String>,
    },
    Option {
        some: Box<TypeDesc>,
    },
    Result {
        ok: Option<Box<TypeDesc>>,
        err: Option<Box<TypeDesc>>,
    },
    Flags {
        names: Vec<String>,
    },
}

/// Parameter and result types of one function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub params: Vec<TypeDesc>,
    pub results: Vec<TypeDesc>,
}

impl TypeDesc {
    /// Describes `ty`, or says which part cannot travel over wRPC yet.
    pub fn of<T: WasmType>(ty: &T) -> Result<Self, TypeError> {
        use WasmTypeKind as K;
        let missing = || TypeError(format!("malformed {} type", ty.kind()));
        Ok(match ty.kind() {
            K::Bool => Self::Bool,
            K::S8 => Self::S8,
            K::S16 => Self::S16,
            K::S32 => Self::S32,
            K::S64 => Self::S64,
            K::U8 => Self::U8,
            K::U16 => Self::U16,
            K::U32 => Self::U32,
            K::U64 => Self::U64,
            K::F32 => Self::F32,
            K::F64 => Self::F64,
            K::Char => Self::Char,
            K::String => Self::String,
            K::List => Self::List {
                element: Box::new(Self::of(&ty.list_element_type().ok_or_else(missing)?)?),
            },
            K::Record => Self::Record {
                fields: ty
                    .record_fields()
                    .map(|(n, t)| Ok((n.into_owned(), Self::of(&t)?)))
                    .collect::<Result<_, TypeError>>()?,
            },
            K::Tuple => Self::Tuple {
                elements: ty
                    .tuple_element_types()
                    .map(|t| Self::of(&t))
                    .collect::<Result<_, _>>()?,
            },
            K::Variant => Self::Variant {
                cases: ty
                    .variant_cases()
                    .map(|(n, t)| Ok((n.into_owned(), t.map(|t| Self::of(&t)).transpose()?)))
                    .collect::<Result<_, TypeError>>()?,
            },
            K::Enum => Self::Enum {
                cases: ty.enum_cases().map(|c| c.into_owned()).collect(),
            },
            K::Option => Self::Option {
                some: Box::new(Self::of(&ty.option_some_type().ok_or_else(missing)?)?),
            },
            K::Result => {
                let (ok, err) = ty.result_types().ok_or_else(missing)?;
                Self::Result {
                    ok: ok.map(|t| Self::of(&t).map(Box::new)).transpose()?,
                    err: err.map(|t| Self::of(&t).map(Box::new)).transpose()?,
                }
            }
            K::Flags => Self::Flags {
                names: ty.flags_names().map(|n| n.into_owned()).collect(),
            },
            other => {
                return Err(TypeError(format!(
                    "{other} values cannot travel over wRPC yet"
                )))
            }
        })
    }

    /// The wasm-wave type, for parsing and printing WAVE text.
    pub fn to_wave(&self) -> Result<WaveType, TypeError> {
        use WasmTypeKind as K;
        let simple =
            |k| WaveType::simple(k).ok_or_else(|| TypeError(format!("no simple type {k}")));
        let bad = |what: &str| TypeError(format!("invalid {what} type"));
        Ok(match self {
            Self::Bool => simple(K::Bool)?,
            Self::S8 => simple(K::S8)?,
            Self::S16 => simple(K::S16)?,
            Self::S32 => simple(K::S32)?,
            Self::S64 => simple(K::S64)?,
            Self::U8 => simple(K::U8)?,
            Self::U16 => simple(K::U16)?,
            Self::U32 => simple(K::U32)?,
            Self::U64 => simple(K::U64)?,
            Self::F32 => simple(K::F32)?,
            Self::F64 => simple(K::F64)?,
            Self::Char => simple(K::Char)?,
            Self::String => simple(K::String)?,
            Self::List { element } => WaveType::list(element.to_wave()?),
            Self::Record { fields } => WaveType::record(
                fields
                    .iter()
                    .map(|(n, t)| Ok((n.as_str(), t.to_wave()?)))
                    .collect::<Result<Vec<_>, TypeError>>()?,
            )
            .ok_or_else(|| bad("record"))?,
            Self::Tuple { elements } => WaveType::tuple(
                elements
                    .iter()
                    .map(Self::to_wave)
                    .collect::<Result<Vec<_>, _>>()?,
            )
            .ok_or_else(|| bad("tuple"))?,
            Self::Variant { cases } => WaveType::variant(
                cases
                    .iter()
                    .map(|(n, t)| Ok((n.as_str(), t.as_ref().map(Self::to_wave).transpose()?)))
                    .collect::<Result<Vec<_>, TypeError>>()?,
            )
            .ok_or_else(|| bad("variant"))?,
            Self::Enum { cases } => {
                WaveType::enum_ty(cases.iter().map(String::as_str)).ok_or_else(|| bad("enum"))?
            }
            Self::Option { some } => WaveType::option(some.to_wave()?),
            Self::Result { ok, err } => WaveType::result(
                ok.as_ref().map(|t| t.to_wave()).transpose()?,
                err.as_ref().map(|t| t.to_wave()).transpose()?,
            ),
            Self::Flags { names } => {
                WaveType::flags(names.iter().map(String::as_str)).ok_or_else(|| bad("flags"))?
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_and_rebuilds_types() {
        let rec = WaveType::record([
            ("name", WaveType::STRING),
            ("tags", WaveType::list(WaveType::option(WaveType::U8))),
        ])
        .unwrap();
        let d = TypeDesc::of(&rec).unwrap();
        let json = serde_json::to_string(&d).unwrap();
        let back: TypeDesc = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        assert_eq!(back.to_wave().unwrap(), rec);
    }
}
