//! Decoding of the BTF binary format (the kernel's Documentation/bpf/btf.rst): a header, a type
//! section of variable-length records and a string section. Our own parser: the format is small
//! and documented, and every count and offset in it is checked against the section it lies in,
//! so a damaged file is an error, never a panic or an unbounded allocation.

use super::{Member, Type};

/// BTF's magic number as stored by a little-endian kernel.
const MAGIC: u16 = 0xeb9f;
/// The most types one file may declare (the kernel's own limit, BTF_MAX_TYPE).
pub(super) const MAX_TYPES: usize = 0x000f_ffff;

/// Reads u16/u32 words in the file's byte order.
struct Words<'a> {
    data: &'a [u8],
    big: bool,
}

impl Words<'_> {
    fn u32(&self, off: usize) -> Result<u32, String> {
        let b = self
            .data
            .get(off..off.checked_add(4).ok_or("offset overflow")?)
            .ok_or_else(|| format!("truncated at byte {off}"))?;
        let a = [b[0], b[1], b[2], b[3]];
        Ok(if self.big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }
}

/// The decoded sections: types (index 0 is `void`) and the string section.
pub(super) struct Parsed {
    pub types: Vec<Type>,
    pub strings: Vec<u8>,
}

/// Decode a whole BTF blob.
pub(super) fn parse(data: &[u8]) -> Result<Parsed, String> {
    if data.len() < 24 {
        return Err(format!(
            "{} bytes is too short for a BTF header",
            data.len()
        ));
    }
    let big = match u16::from_le_bytes([data[0], data[1]]) {
        MAGIC => false,
        m if m == MAGIC.swap_bytes() => true,
        m => {
            return Err(format!(
                "bad magic {m:#06x} (expected 0xeb9f): not a BTF file"
            ));
        }
    };
    if data[2] != 1 {
        return Err(format!("BTF version {} is not supported (only 1)", data[2]));
    }
    let w = Words { data, big };
    let hdr_len = w.u32(4)? as usize;
    if hdr_len < 24 || hdr_len > data.len() {
        return Err(format!("bad header length {hdr_len}"));
    }
    let section = |off_at: usize, what: &str| -> Result<std::ops::Range<usize>, String> {
        let off = w.u32(off_at)? as usize;
        let len = w.u32(off_at + 4)? as usize;
        let start = hdr_len.checked_add(off).ok_or("overflow")?;
        let end = start.checked_add(len).ok_or("overflow")?;
        if end > data.len() {
            return Err(format!(
                "{what} section {start}..{end} is past the end of the file ({} bytes)",
                data.len()
            ));
        }
        Ok(start..end)
    };
    let type_range = section(8, "type")?;
    let str_range = section(16, "string")?;
    let strings = data[str_range].to_vec();
    if strings.first().is_some_and(|&b| b != 0) {
        return Err("string section does not start with an empty string".into());
    }
    let tw = Words {
        data: &data[type_range],
        big,
    };
    let mut types = vec![Type::Void];
    let mut off = 0usize;
    while off < tw.data.len() {
        if types.len() > MAX_TYPES {
            return Err(format!("more than {MAX_TYPES} types"));
        }
        let (t, len) = parse_type(&tw, off).map_err(|e| format!("type {}: {e}", types.len()))?;
        types.push(t);
        off += len;
    }
    Ok(Parsed { types, strings })
}

/// One type record at `off`: the type and the record's length in bytes.
fn parse_type(w: &Words, off: usize) -> Result<(Type, usize), String> {
    let name = w.u32(off)?;
    let info = w.u32(off + 4)?;
    let size_or_type = w.u32(off + 8)?;
    let vlen = (info & 0xffff) as usize;
    let kind = (info >> 24) & 0x1f;
    let kind_flag = info >> 31 == 1;
    let base = off + 12;
    // Each record's variable part, checked to lie in the section before it is read.
    let need = |n: usize| -> Result<usize, String> {
        let end = base + n;
        if end > w.data.len() {
            Err(format!("record of kind {kind} runs past the type section"))
        } else {
            Ok(12 + n)
        }
    };
    Ok(match kind {
        1 => {
            let len = need(4)?;
            let enc = w.u32(base)?;
            (
                Type::Int {
                    name,
                    size: size_or_type,
                    bit_offset: (enc >> 16) & 0xff,
                    bits: enc & 0xff,
                    signed: (enc >> 24) & 1 == 1,
                },
                len,
            )
        }
        2 => (Type::Ptr { ty: size_or_type }, 12),
        3 => {
            let len = need(12)?;
            (
                Type::Array {
                    elem: w.u32(base)?,
                    nelems: w.u32(base + 8)?,
                },
                len,
            )
        }
        4 | 5 => {
            let len = need(vlen * 12)?;
            let mut members = Vec::with_capacity(vlen);
            for i in 0..vlen {
                let m = base + i * 12;
                let raw = w.u32(m + 8)?;
                let (bit_offset, bitfield) = if kind_flag {
                    (raw & 0x00ff_ffff, raw >> 24)
                } else {
                    (raw, 0)
                };
                members.push(Member {
                    name: w.u32(m)?,
                    ty: w.u32(m + 4)?,
                    bit_offset,
                    bitfield,
                });
            }
            (
                Type::Struct {
                    name,
                    size: size_or_type,
                    union: kind == 5,
                    members,
                },
                len,
            )
        }
        6 => (
            Type::Enum {
                name,
                size: size_or_type,
            },
            need(vlen * 8)?,
        ),
        19 => (
            Type::Enum {
                name,
                size: size_or_type,
            },
            need(vlen * 12)?,
        ),
        7 => (
            Type::Fwd {
                name,
                union: kind_flag,
            },
            12,
        ),
        8 => (
            Type::Typedef {
                name,
                ty: size_or_type,
            },
            12,
        ),
        9 | 10 | 11 | 18 => (
            Type::Qualifier {
                what: match kind {
                    9 => "volatile",
                    10 => "const",
                    11 => "restrict",
                    _ => "",
                },
                ty: size_or_type,
            },
            12,
        ),
        12 => (Type::Func { name }, 12),
        13 => (Type::FuncProto, need(vlen * 8)?),
        14 => (
            Type::Var {
                name,
                ty: size_or_type,
            },
            need(4)?,
        ),
        15 => (
            Type::Datasec {
                name,
                size: size_or_type,
            },
            need(vlen * 12)?,
        ),
        16 => (
            Type::Float {
                name,
                size: size_or_type,
            },
            12,
        ),
        17 => (Type::DeclTag, need(4)?),
        k => return Err(format!("unknown kind {k}")),
    })
}
