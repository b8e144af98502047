//! Flattening a record for CSV and tables without building a JSON value: a serde serializer that
//! walks the record once and hands each leaf to a callback with its flattened key (`vma_start`)
//! and its value. Keys are built in one reused buffer; nothing is allocated per field except
//! the text of arrays.

use serde::ser::{self, Serialize};

/// A leaf value.
#[derive(Debug)]
pub enum Leaf<'a> {
    /// Unknown (`null` in JSON).
    Null,
    /// A boolean.
    Bool(bool),
    /// An unsigned integer.
    U64(u64),
    /// A signed integer.
    I64(i64),
    /// A float.
    F64(f64),
    /// Text.
    Str(&'a str),
    /// An array, its items already rendered and joined with `|`.
    Joined(&'a str),
}

pub use super::ser_error::SerError as FlatError;

/// Walk `rec`, calling `f(key, leaf)` for every leaf in serde's field order.
pub fn walk<R: Serialize + ?Sized>(
    rec: &R,
    f: &mut dyn FnMut(&str, Leaf<'_>),
) -> Result<(), FlatError> {
    let mut key = String::new();
    rec.serialize(Flat { key: &mut key, f })
}

struct Flat<'k, 'f> {
    key: &'k mut String,
    f: &'f mut dyn FnMut(&str, Leaf<'_>),
}

impl Flat<'_, '_> {
    fn leaf(self, v: Leaf<'_>) -> Result<(), FlatError> {
        let key = if self.key.is_empty() {
            "value"
        } else {
            self.key.as_str()
        };
        (self.f)(key, v);
        Ok(())
    }
}

/// Renders array items to text for [`Leaf::Joined`].
fn item_text<T: Serialize + ?Sized>(v: &T) -> Result<String, FlatError> {
    let mut out = String::new();
    append_item(&mut out, v)?;
    Ok(out)
}

/// Append the text of an array item (or map key) to `out`: no allocation for plain strings.
fn append_item<T: Serialize + ?Sized>(out: &mut String, v: &T) -> Result<(), FlatError> {
    let start = out.len();
    walk(v, &mut |_, leaf| {
        use std::fmt::Write;
        let _ = match leaf {
            Leaf::Null => Ok(()),
            Leaf::Bool(b) => write!(out, "{b}"),
            Leaf::U64(n) => write!(out, "{n}"),
            Leaf::I64(n) => write!(out, "{n}"),
            Leaf::F64(n) => write!(out, "{n}"),
            Leaf::Str(s) | Leaf::Joined(s) => {
                if out.len() > start {
                    out.push(' ');
                }
                out.push_str(s);
                Ok(())
            }
        };
    })
}

macro_rules! leaf_fn {
    ($name:ident, $t:ty, $variant:ident, $conv:expr) => {
        fn $name(self, v: $t) -> Result<(), FlatError> {
            self.leaf(Leaf::$variant($conv(v)))
        }
    };
}

impl<'k, 'f> ser::Serializer for Flat<'k, 'f> {
    type Ok = ();
    type Error = FlatError;
    type SerializeSeq = Seq<'k, 'f>;
    type SerializeTuple = Seq<'k, 'f>;
    type SerializeTupleStruct = Seq<'k, 'f>;
    type SerializeTupleVariant = Seq<'k, 'f>;
    type SerializeMap = Map<'k, 'f>;
    type SerializeStruct = Struct<'k, 'f>;
    type SerializeStructVariant = Struct<'k, 'f>;

    leaf_fn!(serialize_bool, bool, Bool, |v| v);
    leaf_fn!(serialize_i8, i8, I64, i64::from);
    leaf_fn!(serialize_i16, i16, I64, i64::from);
    leaf_fn!(serialize_i32, i32, I64, i64::from);
    leaf_fn!(serialize_i64, i64, I64, |v| v);
    leaf_fn!(serialize_u8, u8, U64, u64::from);
    leaf_fn!(serialize_u16, u16, U64, u64::from);
    leaf_fn!(serialize_u32, u32, U64, u64::from);
    leaf_fn!(serialize_u64, u64, U64, |v| v);
    leaf_fn!(serialize_f32, f32, F64, f64::from);
    leaf_fn!(serialize_f64, f64, F64, |v| v);

    fn serialize_char(self, v: char) -> Result<(), FlatError> {
        let mut b = [0u8; 4];
        self.leaf(Leaf::Str(v.encode_utf8(&mut b)))
    }
    fn serialize_str(self, v: &str) -> Result<(), FlatError> {
        self.leaf(Leaf::Str(v))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), FlatError> {
        let s = String::from_utf8_lossy(v);
        self.leaf(Leaf::Str(&s))
    }
    fn serialize_none(self) -> Result<(), FlatError> {
        self.leaf(Leaf::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), FlatError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), FlatError> {
        self.leaf(Leaf::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), FlatError> {
        self.leaf(Leaf::Null)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), FlatError> {
        self.leaf(Leaf::Str(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), FlatError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        v: &T,
    ) -> Result<(), FlatError> {
        v.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'k, 'f>, FlatError> {
        Ok(Seq {
            flat: self,
            text: String::new(),
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq<'k, 'f>, FlatError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq<'k, 'f>, FlatError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        len: usize,
    ) -> Result<Seq<'k, 'f>, FlatError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Map<'k, 'f>, FlatError> {
        Ok(Map {
            s: Struct {
                key: self.key,
                f: self.f,
            },
            next: String::new(),
        })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Struct<'k, 'f>, FlatError> {
        Ok(Struct {
            key: self.key,
            f: self.f,
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Struct<'k, 'f>, FlatError> {
        Ok(Struct {
            key: self.key,
            f: self.f,
        })
    }
}

/// An array: its items rendered and joined with `|` into one leaf.
pub struct Seq<'k, 'f> {
    flat: Flat<'k, 'f>,
    text: String,
}

impl Seq<'_, '_> {
    fn item<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), FlatError> {
        if !self.text.is_empty() {
            self.text.push('|');
        }
        append_item(&mut self.text, v)?;
        Ok(())
    }
    fn done(self) -> Result<(), FlatError> {
        let Seq { flat, text } = self;
        flat.leaf(Leaf::Joined(&text))
    }
}

macro_rules! seq_impl {
    ($tr:ident, $m:ident) => {
        impl ser::$tr for Seq<'_, '_> {
            type Ok = ();
            type Error = FlatError;
            fn $m<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), FlatError> {
                self.item(v)
            }
            fn end(self) -> Result<(), FlatError> {
                self.done()
            }
        }
    };
}
seq_impl!(SerializeSeq, serialize_element);
seq_impl!(SerializeTuple, serialize_element);
seq_impl!(SerializeTupleStruct, serialize_field);
seq_impl!(SerializeTupleVariant, serialize_field);

/// A struct: each field's key is the parent's key, `_`, and the field name.
pub struct Struct<'k, 'f> {
    key: &'k mut String,
    f: &'f mut dyn FnMut(&str, Leaf<'_>),
}

impl Struct<'_, '_> {
    fn field<T: Serialize + ?Sized>(&mut self, name: &str, v: &T) -> Result<(), FlatError> {
        let len = self.key.len();
        if len > 0 {
            self.key.push('_');
        }
        self.key.push_str(name);
        let r = v.serialize(Flat {
            key: self.key,
            f: self.f,
        });
        self.key.truncate(len);
        r
    }
}

impl ser::SerializeStruct for Struct<'_, '_> {
    type Ok = ();
    type Error = FlatError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        v: &T,
    ) -> Result<(), FlatError> {
        self.field(name, v)
    }
    fn end(self) -> Result<(), FlatError> {
        Ok(())
    }
}

impl ser::SerializeStructVariant for Struct<'_, '_> {
    type Ok = ();
    type Error = FlatError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        v: &T,
    ) -> Result<(), FlatError> {
        self.field(name, v)
    }
    fn end(self) -> Result<(), FlatError> {
        Ok(())
    }
}

/// A map: like a struct whose field names are the keys rendered as text.
pub struct Map<'k, 'f> {
    s: Struct<'k, 'f>,
    next: String,
}

impl ser::SerializeMap for Map<'_, '_> {
    type Ok = ();
    type Error = FlatError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), FlatError> {
        self.next = item_text(k)?;
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), FlatError> {
        let name = std::mem::take(&mut self.next);
        self.s.field(&name, v)
    }
    fn end(self) -> Result<(), FlatError> {
        Ok(())
    }
}
