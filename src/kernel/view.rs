//! What `pgtool kstruct`, `ksym` and `ktask` list, as records: a type's layout, its values
//! read from kernel memory, symbols, the kernel base, a task.

use super::{Btf, Field, Kallsyms, Kcore, Kind, TypeId};
use crate::error::{Error, Result};
use crate::output::Record;
use serde::Serialize;

/// One field of a layout (`kstruct TYPE`).
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct LayoutRow {
    /// Nesting depth (0: a member of the type asked for).
    pub depth: u32,
    /// The access path (`tasks.next`); an anonymous struct/union ends in `<anon>`.
    pub field: String,
    /// The member's own name indented two spaces per depth, as pahole nests it (`<anon>` for
    /// an anonymous struct or union): what the table shows.
    pub member: String,
    /// The type as C writes it.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Byte offset from the start of the type asked for; for a bitfield, of its storage unit
    /// (the aligned `size_bytes` word holding it), as pahole prints it.
    pub offset: u64,
    /// Size in bytes (of the storage unit, for a bitfield).
    pub size_bytes: u64,
    /// Bit offset from the start of the type (bitfields only).
    pub bit_offset: Option<u64>,
    /// Width of a bitfield in bits.
    pub bitfield_bits: Option<u32>,
}

impl Record for LayoutRow {
    const TABLE_COLUMNS: &'static [&'static str] = &[
        "offset",
        "size_bytes",
        "member",
        "type",
        "bit_offset",
        "bitfield_bits",
    ];
}

/// One field's value at an address (`kstruct TYPE ADDR`).
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct ValueRow {
    /// The access path.
    pub field: String,
    /// The type as C writes it.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Kernel virtual address of the field.
    pub addr: u64,
    /// Size in bytes.
    pub size_bytes: u64,
    /// The value: decimal for integers and bitfields, `0x` hex for pointers, a quoted string
    /// for char arrays; null for structs, unions and other arrays (their members have rows).
    pub value: Option<String>,
    /// The raw little-endian word for fields of at most 8 bytes.
    pub value_raw: Option<u64>,
    /// The kernel symbol a pointer points into (`name+0xoff/0xsize [module]`).
    pub symbol: Option<String>,
}

impl Record for ValueRow {}

fn display_path(f: &Field) -> String {
    if !f.name.is_empty() {
        return f.path.clone();
    }
    if f.path.is_empty() {
        "<anon>".into()
    } else {
        format!("{}.<anon>", f.path)
    }
}

/// Split `TYPE.FIELD.FIELD` into the type and the path.
fn split_spec(spec: &str) -> (&str, &str) {
    spec.split_once('.').unwrap_or((spec, ""))
}

/// The fields of `spec` (`task_struct`, `task_struct.se`): without a path every member of the
/// type, with one that field and its members; `expand` expands named struct members too.
pub fn fields(btf: &Btf, spec: &str, expand: bool) -> Result<Vec<Field>> {
    let (ty, path) = split_spec(spec);
    if ty.trim().is_empty() {
        return Err(Error::Usage(format!(
            "bad type {}: expected TYPE[.FIELD...], e.g. task_struct.mm",
            crate::input::quote(spec)
        )));
    }
    let id: TypeId = btf.struct_id(ty)?;
    if path.is_empty() {
        return Ok(btf.layout(id, expand));
    }
    let f = btf.field_of(id, path)?;
    Ok(btf.layout_from(&f, expand))
}

/// The layout of `spec`, as records.
pub fn layout(btf: &Btf, spec: &str, expand: bool) -> Result<Vec<LayoutRow>> {
    Ok(fields(btf, spec, expand)?
        .iter()
        .map(|f| LayoutRow {
            depth: f.depth,
            field: display_path(f),
            member: format!(
                "{:indent$}{}",
                "",
                if f.name.is_empty() { "<anon>" } else { &f.name },
                indent = 2 * f.depth as usize
            ),
            type_name: f.type_name.clone(),
            offset: if f.bitfield_bits > 0 && f.size > 0 {
                f.bit_offset / (f.size * 8) * f.size
            } else {
                f.offset()
            },
            size_bytes: f.size,
            bit_offset: (f.bitfield_bits > 0).then_some(f.bit_offset),
            bitfield_bits: (f.bitfield_bits > 0).then_some(f.bitfield_bits),
        })
        .collect())
}

/// The values of `spec`'s fields in the `TYPE` at kernel address `addr`, read in one bounded
/// read of the type's span; pointers resolved through `syms` when given.
pub fn values(
    btf: &Btf,
    kcore: &Kcore,
    syms: Option<&Kallsyms>,
    spec: &str,
    addr: u64,
    expand: bool,
) -> Result<Vec<ValueRow>> {
    let rows = fields(btf, spec, expand)?;
    let (start, end) = rows.iter().fold((u64::MAX, 0u64), |(s, e), f| {
        (s.min(f.offset()), e.max(f.offset().saturating_add(f.size)))
    });
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let len = end.saturating_sub(start) as usize;
    let mut buf = vec![0u8; len.min(super::kcore::MAX_READ)];
    let base = addr
        .checked_add(start)
        .ok_or_else(|| Error::NotFound(format!("kernel address {addr:#x} + {start} overflows")))?;
    kcore.read_virt(base, &mut buf)?;
    Ok(rows
        .iter()
        .map(|f| value_row(btf, syms, f, addr, &buf, start))
        .collect())
}

fn le(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(b)
}

fn value_row(
    btf: &Btf,
    syms: Option<&Kallsyms>,
    f: &Field,
    addr: u64,
    buf: &[u8],
    start: u64,
) -> ValueRow {
    let off = (f.offset() - start) as usize;
    let bytes = buf
        .get(off..off.saturating_add(f.size as usize))
        .unwrap_or(&[]);
    let mut row = ValueRow {
        field: display_path(f),
        type_name: f.type_name.clone(),
        addr: addr.wrapping_add(f.offset()),
        size_bytes: f.size,
        value: None,
        value_raw: None,
        symbol: None,
    };
    if f.bitfield_bits > 0 {
        let shift = (f.bit_offset % 8) as u32;
        let need = (shift + f.bitfield_bits).div_ceil(8) as usize;
        let word = buf.get(off..off + need.min(8)).map(le).unwrap_or(0);
        let mask = if f.bitfield_bits >= 64 {
            u64::MAX
        } else {
            (1u64 << f.bitfield_bits) - 1
        };
        let v = (word >> shift) & mask;
        row.value = Some(v.to_string());
        row.value_raw = Some(v);
        return row;
    }
    if bytes.len() <= 8 && !bytes.is_empty() {
        row.value_raw = Some(le(bytes));
    }
    let raw = row.value_raw.unwrap_or(0);
    match btf.kind(f.ty) {
        k @ (Kind::Int { .. } | Kind::Enum) if bytes.len() <= 8 && !bytes.is_empty() => {
            let bits = bytes.len() * 8;
            let v = if k == (Kind::Int { signed: true }) {
                // sign-extend from the field's width
                (((raw << (64 - bits)) as i64) >> (64 - bits)).to_string()
            } else {
                raw.to_string()
            };
            row.value = Some(v);
        }
        Kind::Ptr(_) => {
            row.value = Some(format!("{raw:#x}"));
            row.symbol = syms.and_then(|s| s.lookup(raw)).map(|l| l.to_string());
        }
        Kind::Array { elem, .. } if btf.size_of(btf.resolve(elem)) == Some(1) => {
            if matches!(btf.kind(elem), Kind::Int { .. }) {
                let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                row.value = Some(format!("{:?}", String::from_utf8_lossy(&bytes[..end])));
            }
        }
        _ => {}
    }
    row
}

/// An address resolved to a symbol, or a name to an address (`ksym`).
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct SymRow {
    /// The address asked for, or the symbol's.
    pub addr: u64,
    /// The symbol.
    pub symbol: String,
    /// Address minus the symbol's.
    pub offset: u64,
    /// Distance to the next symbol.
    pub size_bytes: Option<u64>,
    /// nm's type letter.
    pub kind: String,
    /// The module (null: the kernel image).
    pub module: Option<String>,
    /// `name+0xoff/0xsize [module]`, as the kernel's `%pS`.
    pub location: String,
}

impl Record for SymRow {}

/// `ksym`: a number is an address to resolve, anything else a symbol name.
pub fn ksym(syms: &Kallsyms, what: &str) -> Result<SymRow> {
    let looks_numeric =
        what.trim().starts_with("0x") || what.trim().bytes().all(|b| b.is_ascii_digit());
    let addr = if looks_numeric {
        crate::input::parse_number_for(what, "address")?
    } else {
        syms.address_of(what.trim()).ok_or_else(|| {
            Error::NotFound(format!(
                "no symbol {} in /proc/kallsyms",
                crate::input::quote(what)
            ))
        })?
    };
    let loc = syms.lookup(addr).ok_or_else(|| {
        Error::NotFound(format!(
            "address {addr:#x} is not inside any kernel or module symbol"
        ))
    })?;
    Ok(SymRow {
        addr,
        symbol: loc.symbol.name.clone(),
        offset: loc.offset,
        size_bytes: loc.size,
        kind: loc.symbol.kind.to_string(),
        module: loc.symbol.module.clone(),
        location: loc.to_string(),
    })
}

/// The kernel's base and KASLR offset (`ksym --base`).
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct BaseRow {
    /// The address of `_text`.
    pub kernel_base_addr: u64,
    /// `_text` minus x86-64's link-time 0xffffffff81000000 (null elsewhere).
    pub kaslr_offset: Option<u64>,
    /// The same, in hex.
    pub kaslr_offset_hex: Option<String>,
    /// The address of `_end`.
    pub kernel_end_addr: Option<u64>,
}

impl Record for BaseRow {}

/// The kernel base row.
pub fn base(syms: &Kallsyms) -> Result<BaseRow> {
    let b = syms
        .kernel_base()
        .ok_or_else(|| Error::NotFound("no _text or _stext symbol in /proc/kallsyms".into()))?;
    let k = syms.kaslr_offset();
    Ok(BaseRow {
        kernel_base_addr: b,
        kaslr_offset: k,
        kaslr_offset_hex: k.map(crate::output::hex),
        kernel_end_addr: syms.address_of("_end"),
    })
}

/// A task's task_struct and what hangs off it (`ktask PID`).
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct TaskRow {
    /// The task's PID (thread id).
    pub pid: u32,
    /// Its `comm`.
    pub comm: String,
    /// Address of its task_struct.
    pub task_addr: u64,
    /// `task->mm` (null for kernel threads).
    pub mm_addr: Option<u64>,
    /// `task->mm->pgd` (the page table root, a kernel virtual address).
    pub pgd_addr: Option<u64>,
    /// The fields asked for with `--field`, by path: the value as `kstruct` shows it.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl Record for TaskRow {}

/// `ktask`: find `pid`'s task_struct and read `mm`, `mm->pgd` and the `extra` field paths.
pub fn task(
    btf: &Btf,
    kcore: &Kcore,
    syms: &Kallsyms,
    pid: u32,
    extra: &[String],
) -> Result<TaskRow> {
    let t = super::find_task(btf, kcore, syms, pid)?;
    let mm = kcore.read_u64(t.addr + btf.field("task_struct", "mm")?.offset())?;
    let pgd = match mm {
        0 => None,
        mm => Some(kcore.read_u64(mm + btf.field("mm_struct", "pgd")?.offset())?),
    };
    let mut fields = serde_json::Map::new();
    for name in extra {
        let spec = format!("task_struct.{name}");
        let rows = values(btf, kcore, Some(syms), &spec, t.addr, false)?;
        let v = rows.first().and_then(|r| {
            r.value
                .clone()
                .or_else(|| r.value_raw.map(crate::output::hex))
        });
        fields.insert(
            name.clone(),
            v.map(serde_json::Value::String)
                .unwrap_or(serde_json::Value::Null),
        );
    }
    Ok(TaskRow {
        pid: t.pid,
        comm: t.comm,
        task_addr: t.addr,
        mm_addr: (mm != 0).then_some(mm),
        pgd_addr: pgd,
        fields,
    })
}
