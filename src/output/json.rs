//! A compact JSON writer for records: the same text as `serde_json::to_writer` for the types
//! records use, at a fraction of the cost for per-page listings. Struct field names are Rust
//! identifiers and need no escaping, so they are copied as they are; strings are scanned once
//! and copied whole when nothing needs escaping; integers go through a small formatter.
//! Anything a record should not contain (NaN, non-string map keys) is an error, as in serde_json.

use serde::ser::{self, Serialize};

pub use super::ser_error::SerError as JsonError;
use super::ser_error::SerError;

/// Append `v` as one line of JSON (without the newline) to `out`.
pub fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) -> Result<(), JsonError> {
    v.serialize(Json { out })
}

struct Json<'a> {
    out: &'a mut Vec<u8>,
}

/// "00" to "99": two digits per division.
const DIGITS2: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

fn uint(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    while v >= 100 {
        let d = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGITS2[d..d + 2]);
    }
    if v >= 10 {
        let d = v as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGITS2[d..d + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + v as u8;
    }
    out.extend_from_slice(&buf[i..]);
}

/// True when no byte of `b` needs escaping in a JSON string (control characters, `"`, `\\`),
/// eight bytes at a time.
fn clean(b: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |v: u64| v.wrapping_sub(LO) & !v & HI;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let v = u64::from_le_bytes(w);
        // a byte below 0x20, or equal to '"' (0x22) or '\\' (0x5c)
        let below = v.wrapping_sub(LO * 0x20) & !v & HI;
        if below | zero_byte(v ^ (LO * 0x22)) | zero_byte(v ^ (LO * 0x5c)) != 0 {
            return false;
        }
    }
    chunks
        .remainder()
        .iter()
        .all(|&c| c >= 0x20 && c != b'"' && c != b'\\')
}

fn int(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    uint(out, v.unsigned_abs());
}

/// A JSON string: copied whole unless a byte needs escaping.
fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let b = s.as_bytes();
    if clean(b) {
        out.extend_from_slice(b);
    } else {
        for c in s.chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\u{08}' => out.extend_from_slice(b"\\b"),
                '\u{0c}' => out.extend_from_slice(b"\\f"),
                c if (c as u32) < 0x20 => {
                    out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
                }
                c => {
                    let mut tmp = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
    }
    out.push(b'"');
}

fn float(out: &mut Vec<u8>, v: f64) -> Result<(), JsonError> {
    if !v.is_finite() {
        return Err(SerError(format!("{v} cannot be written as JSON")));
    }
    // Floats are rare in records: serde_json's own formatting (ryu's shortest digits), so
    // the text is exactly serde_json's even where two shortest forms exist.
    serde_json::to_writer(&mut *out, &v).map_err(|e| SerError(e.to_string()))
}

/// A compound (array, object) being written: `first` says whether a comma is due.
pub struct Compound<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    close: u8,
}

impl Compound<'_> {
    fn comma(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
    }
    fn key(&mut self, k: &str) {
        self.comma();
        // Field names are identifiers: no escaping needed (checked in debug builds).
        debug_assert!(!k.bytes().any(|c| c < 0x20 || c == b'"' || c == b'\\'));
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
    }
    fn end(self) {
        self.out.push(self.close);
    }
}

/// An integer method of the serializer: widen, then write.
macro_rules! json_int {
    ($m:ident: $t:ty => $write:ident, $widen:path) => {
        fn $m(self, v: $t) -> Result<(), JsonError> {
            $write(self.out, $widen(v));
            Ok(())
        }
    };
}

impl<'a> ser::Serializer for Json<'a> {
    type Ok = ();
    type Error = JsonError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = MapKeys<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), JsonError> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    json_int!(serialize_i8: i8 => int, i64::from);
    json_int!(serialize_i16: i16 => int, i64::from);
    json_int!(serialize_i32: i32 => int, i64::from);
    json_int!(serialize_i64: i64 => int, i64::from);
    json_int!(serialize_u8: u8 => uint, u64::from);
    json_int!(serialize_u16: u16 => uint, u64::from);
    json_int!(serialize_u32: u32 => uint, u64::from);
    json_int!(serialize_u64: u64 => uint, u64::from);
    fn serialize_f32(self, v: f32) -> Result<(), JsonError> {
        float(self.out, f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), JsonError> {
        float(self.out, v)
    }
    fn serialize_char(self, v: char) -> Result<(), JsonError> {
        let mut b = [0u8; 4];
        string(self.out, v.encode_utf8(&mut b));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), JsonError> {
        string(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), JsonError> {
        let mut s = self.serialize_seq(Some(v.len()))?;
        for b in v {
            ser::SerializeSeq::serialize_element(&mut s, b)?;
        }
        ser::SerializeSeq::end(s)
    }
    fn serialize_none(self) -> Result<(), JsonError> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), JsonError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), JsonError> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), JsonError> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), JsonError> {
        string(self.out, variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), JsonError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), JsonError> {
        self.out.push(b'{');
        string(self.out, variant);
        self.out.push(b':');
        v.serialize(Json { out: self.out })?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a>, JsonError> {
        self.out.push(b'[');
        Ok(Compound {
            out: self.out,
            first: true,
            close: b']',
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, JsonError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, JsonError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, JsonError> {
        Err(SerError("tuple variants are not used in records".into()))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<MapKeys<'a>, JsonError> {
        self.out.push(b'{');
        Ok(MapKeys {
            c: Compound {
                out: self.out,
                first: true,
                close: b'}',
            },
        })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, JsonError> {
        self.out.push(b'{');
        Ok(Compound {
            out: self.out,
            first: true,
            close: b'}',
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, JsonError> {
        Err(SerError("struct variants are not used in records".into()))
    }
}

macro_rules! seq_like {
    ($tr:ident, $m:ident) => {
        impl ser::$tr for Compound<'_> {
            type Ok = ();
            type Error = JsonError;
            fn $m<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), JsonError> {
                self.comma();
                v.serialize(Json { out: self.out })
            }
            fn end(self) -> Result<(), JsonError> {
                Compound::end(self);
                Ok(())
            }
        }
    };
}
seq_like!(SerializeSeq, serialize_element);
seq_like!(SerializeTuple, serialize_element);
seq_like!(SerializeTupleStruct, serialize_field);
seq_like!(SerializeTupleVariant, serialize_field);

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        k: &'static str,
        v: &T,
    ) -> Result<(), JsonError> {
        self.key(k);
        v.serialize(Json { out: self.out })
    }
    fn end(self) -> Result<(), JsonError> {
        Compound::end(self);
        Ok(())
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        k: &'static str,
        v: &T,
    ) -> Result<(), JsonError> {
        self.key(k);
        v.serialize(Json { out: self.out })
    }
    fn end(self) -> Result<(), JsonError> {
        Compound::end(self);
        Ok(())
    }
}

/// A map: keys are any string (escaped), values any value.
pub struct MapKeys<'a> {
    c: Compound<'a>,
}

impl ser::SerializeMap for MapKeys<'_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), JsonError> {
        self.c.comma();
        k.serialize(KeyOnly { out: self.c.out })?;
        self.c.out.push(b':');
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), JsonError> {
        v.serialize(Json { out: self.c.out })
    }
    fn end(self) -> Result<(), JsonError> {
        self.c.end();
        Ok(())
    }
}

/// Map keys: strings (and unit variants), written escaped; anything else is refused.
struct KeyOnly<'a> {
    out: &'a mut Vec<u8>,
}

fn not_a_key() -> JsonError {
    SerError("map keys must be strings".into())
}

macro_rules! key_refuse {
    ($($m:ident: $t:ty),*) => {
        $(fn $m(self, _: $t) -> Result<(), JsonError> {
            Err(not_a_key())
        })*
    };
}

impl ser::Serializer for KeyOnly<'_> {
    type Ok = ();
    type Error = JsonError;
    type SerializeSeq = ser::Impossible<(), JsonError>;
    type SerializeTuple = ser::Impossible<(), JsonError>;
    type SerializeTupleStruct = ser::Impossible<(), JsonError>;
    type SerializeTupleVariant = ser::Impossible<(), JsonError>;
    type SerializeMap = ser::Impossible<(), JsonError>;
    type SerializeStruct = ser::Impossible<(), JsonError>;
    type SerializeStructVariant = ser::Impossible<(), JsonError>;

    fn serialize_str(self, v: &str) -> Result<(), JsonError> {
        string(self.out, v);
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        v: &'static str,
    ) -> Result<(), JsonError> {
        string(self.out, v);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), JsonError> {
        v.serialize(self)
    }
    key_refuse!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_f32: f32, serialize_f64: f64, serialize_char: char,
        serialize_bytes: &[u8]);
    key_refuse!(serialize_unit_struct: &'static str);
    fn serialize_none(self) -> Result<(), JsonError> {
        Err(not_a_key())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), JsonError> {
        Err(not_a_key())
    }
    fn serialize_unit(self) -> Result<(), JsonError> {
        Err(not_a_key())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), JsonError> {
        Err(not_a_key())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, JsonError> {
        Err(not_a_key())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, JsonError> {
        Err(not_a_key())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, JsonError> {
        Err(not_a_key())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, JsonError> {
        Err(not_a_key())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, JsonError> {
        Err(not_a_key())
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, JsonError> {
        Err(not_a_key())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, JsonError> {
        Err(not_a_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Serialize;
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    struct Inner {
        start: u64,
        path: String,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Thp,
    }

    #[derive(Serialize)]
    struct Rec {
        pid: u32,
        neg: i64,
        pfn: Option<u64>,
        none: Option<u64>,
        ok: bool,
        share: f64,
        flags: Vec<&'static str>,
        kind: Kind,
        vma: Inner,
        map: BTreeMap<String, u64>,
        tuple: (u8, &'static str),
    }

    fn same_as_serde_json<T: Serialize>(v: &T) -> Result<(), TestCaseError> {
        let mut ours = Vec::new();
        write(&mut ours, v).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let theirs = serde_json::to_vec(v).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );
        Ok(())
    }

    proptest! {
        #[test]
        fn writes_what_serde_json_writes(
            pid in any::<u32>(), neg in any::<i64>(), pfn in any::<Option<u64>>(), ok in any::<bool>(),
            share in -1e12f64..1e12, path in "\\PC{0,20}|[\"\\\\\n\t\u{1}]{0,5}", key in "\\PC{0,8}",
        ) {
            let mut map = BTreeMap::new();
            map.insert(key, 7);
            same_as_serde_json(&Rec {
                pid, neg, pfn, none: None, ok, share, flags: vec!["lru", "anonymous"], kind: Kind::Thp,
                vma: Inner { start: u64::MAX, path }, map, tuple: (3, "x"),
            })?;
        }
    }

    #[test]
    fn clean_finds_every_byte_that_needs_escaping() {
        for pos in 0..20 {
            for bad in [0u8, 0x1f, b'"', b'\\', b'\n'] {
                let mut v = vec![b'a'; 20];
                v[pos] = bad;
                assert!(!clean(&v), "{bad:#x} at {pos}");
            }
        }
        assert!(clean("héllo wörld, ünïcode is fine ~~~".as_bytes()));
        let mut out = Vec::new();
        for v in [0, 9, 10, 99, 100, 12345, u64::MAX] {
            out.clear();
            uint(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
        }
    }

    #[test]
    fn nan_is_an_error() {
        let mut out = Vec::new();
        assert!(write(&mut out, &f64::NAN).is_err());
    }
}
