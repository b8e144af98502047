//! The running kernel's types from BTF (`/sys/kernel/btf/vmlinux`, CONFIG_DEBUG_INFO_BTF):
//! struct and union layouts, field paths resolved to bit offsets, type names as C writes them.
//!
//! Why our own parser and not the btf-rs crate: btf-rs 2.0 is LGPL-2.1-or-later, which pgtool's
//! "GPL-2.0-only OR MIT" could not keep on its MIT side, and it brings a dozen dependencies;
//! the part of the format we need (one header, two sections, nineteen kinds) is a few hundred
//! lines (`parse.rs`).

mod parse;

use crate::error::{Error, Result};
use crate::root::SysRoot;
use std::path::{Path, PathBuf};

/// A BTF type id (0 is `void`).
pub type TypeId = u32;

/// The largest BTF file read (vmlinux's is about 5 MiB).
const MAX_BTF_BYTES: u64 = 256 << 20;
/// How deep typedef/const/array chains and nested expansions go before we stop.
const MAX_DEPTH: usize = 32;
/// The most rows one layout returns (task_struct fully expanded is a few thousand).
pub const MAX_LAYOUT_ROWS: usize = 100_000;

/// A member of a struct or union.
#[derive(Clone, Debug)]
struct Member {
    name: u32,
    ty: TypeId,
    bit_offset: u32,
    /// Bitfield width in bits (0: not a bitfield, or the old encoding in the INT type).
    bitfield: u32,
}

/// One decoded type (names are offsets into the string section).
#[derive(Clone, Debug)]
enum Type {
    Void,
    Int {
        name: u32,
        size: u32,
        bit_offset: u32,
        bits: u32,
        signed: bool,
    },
    Ptr {
        ty: TypeId,
    },
    Array {
        elem: TypeId,
        nelems: u32,
    },
    Struct {
        name: u32,
        size: u32,
        union: bool,
        members: Vec<Member>,
    },
    Enum {
        name: u32,
        size: u32,
    },
    Fwd {
        name: u32,
        union: bool,
    },
    Typedef {
        name: u32,
        ty: TypeId,
    },
    /// const, volatile, restrict, or a type tag (`what` empty).
    Qualifier {
        what: &'static str,
        ty: TypeId,
    },
    Func {
        name: u32,
    },
    FuncProto,
    Var {
        name: u32,
        ty: TypeId,
    },
    Datasec {
        name: u32,
        size: u32,
    },
    Float {
        name: u32,
        size: u32,
    },
    DeclTag,
}

/// What a type is, once typedefs and qualifiers are looked through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `void`, or a type without a size.
    Void,
    /// An integer (or bool/char) of `size` bytes.
    Int {
        /// Signed.
        signed: bool,
    },
    /// A pointer to the type.
    Ptr(TypeId),
    /// An array of `len` elements.
    Array {
        /// Element type.
        elem: TypeId,
        /// Number of elements.
        len: u32,
    },
    /// A struct or union.
    Struct {
        /// A union.
        union: bool,
    },
    /// An enum.
    Enum,
    /// Anything else (function, float, forward declaration...).
    Other,
}

/// One field of a layout, or a field found by path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The access path from the outer type (`mm.pgd`, `__state`); an anonymous struct or
    /// union has its parent's path (C reaches its members as the parent's).
    pub path: String,
    /// The member's own name; empty for an anonymous struct or union.
    pub name: String,
    /// Nesting depth in the layout (0: a member of the outer type).
    pub depth: u32,
    /// Offset from the start of the outer type, in bits.
    pub bit_offset: u64,
    /// Size in bytes (of the storage type, for a bitfield).
    pub size: u64,
    /// Width of a bitfield in bits; 0 when not a bitfield.
    pub bitfield_bits: u32,
    /// The type as C writes it (`struct list_head`, `char[16]`, `struct mm_struct *`).
    pub type_name: String,
    /// The type's id.
    pub ty: TypeId,
}

impl Field {
    /// Offset in bytes (of the byte holding the first bit, for a bitfield).
    pub fn offset(&self) -> u64 {
        self.bit_offset / 8
    }
}

/// The types of one BTF file.
pub struct Btf {
    types: Vec<Type>,
    strings: Vec<u8>,
    path: PathBuf,
}

impl Btf {
    /// The running kernel's BTF (or a `--root` tree's copy).
    pub fn load(root: &SysRoot) -> Result<Btf> {
        let path = root.btf_vmlinux();
        let data = read_bounded(&path)?;
        Btf::from_bytes(&data, &path)
    }

    /// Decode a BTF blob; `path` names it in errors.
    pub fn from_bytes(data: &[u8], path: &Path) -> Result<Btf> {
        let p = parse::parse(data).map_err(|msg| Error::Parse {
            path: path.to_path_buf(),
            line: 0,
            msg: format!("not a valid BTF file: {msg}"),
        })?;
        Ok(Btf {
            types: p.types,
            strings: p.strings,
            path: path.to_path_buf(),
        })
    }

    /// The file this came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of types, `void` included.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Never true: `void` is always there.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    fn str(&self, off: u32) -> &str {
        let s = self.strings.get(off as usize..).unwrap_or(&[]);
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        std::str::from_utf8(&s[..end]).unwrap_or("?")
    }

    fn get(&self, id: TypeId) -> &Type {
        self.types.get(id as usize).unwrap_or(&Type::Void)
    }

    /// The struct or union called `name` (`page`, `struct page`, `union foo`), a complete
    /// definition preferred over a forward declaration; a typedef of one is followed.
    pub fn find_struct(&self, name: &str) -> Option<TypeId> {
        let name = name.trim();
        let (want_union, bare) = match name.split_once(' ') {
            Some(("struct", n)) => (Some(false), n.trim()),
            Some(("union", n)) => (Some(true), n.trim()),
            _ => (None, name),
        };
        let mut typedef = None;
        for (i, t) in self.types.iter().enumerate() {
            match t {
                Type::Struct {
                    name: n, union: u, ..
                } if want_union.is_none_or(|w| w == *u) && self.str(*n) == bare => {
                    return Some(i as TypeId);
                }
                Type::Typedef { name: n, ty } if want_union.is_none() && self.str(*n) == bare => {
                    typedef.get_or_insert(*ty);
                }
                _ => {}
            }
        }
        let id = self.resolve(typedef?);
        matches!(self.get(id), Type::Struct { .. }).then_some(id)
    }

    /// Like [`find_struct`](Self::find_struct), with an error naming the type and the file.
    pub fn struct_id(&self, name: &str) -> Result<TypeId> {
        self.find_struct(name).ok_or_else(|| {
            Error::NotFound(format!(
                "no struct or union {name:?} in {} ({} types)",
                self.path.display(),
                self.len()
            ))
        })
    }

    /// `id` with typedefs, qualifiers and type tags looked through.
    pub fn resolve(&self, mut id: TypeId) -> TypeId {
        for _ in 0..MAX_DEPTH {
            match self.get(id) {
                Type::Typedef { ty, .. } | Type::Qualifier { ty, .. } => id = *ty,
                _ => return id,
            }
        }
        id
    }

    /// What `id` is.
    pub fn kind(&self, id: TypeId) -> Kind {
        match self.get(self.resolve(id)) {
            Type::Int { signed, .. } => Kind::Int { signed: *signed },
            Type::Ptr { ty } => Kind::Ptr(*ty),
            Type::Array { elem, nelems } => Kind::Array {
                elem: *elem,
                len: *nelems,
            },
            Type::Struct { union, .. } => Kind::Struct { union: *union },
            Type::Enum { .. } => Kind::Enum,
            Type::Void => Kind::Void,
            _ => Kind::Other,
        }
    }

    /// Size of `id` in bytes (pointers are 8 bytes: BTF of 64-bit kernels); `None` for void,
    /// functions, forward declarations, or an overflowing array.
    pub fn size_of(&self, id: TypeId) -> Option<u64> {
        self.size_depth(id, 0)
    }

    fn size_depth(&self, id: TypeId, depth: usize) -> Option<u64> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.get(id) {
            Type::Int { size, .. }
            | Type::Struct { size, .. }
            | Type::Enum { size, .. }
            | Type::Datasec { size, .. }
            | Type::Float { size, .. } => Some(u64::from(*size)),
            Type::Ptr { .. } => Some(8),
            Type::Array { elem, nelems } => self
                .size_depth(*elem, depth + 1)?
                .checked_mul(u64::from(*nelems)),
            Type::Typedef { ty, .. } | Type::Qualifier { ty, .. } | Type::Var { ty, .. } => {
                self.size_depth(*ty, depth + 1)
            }
            _ => None,
        }
    }

    /// The type as C writes it: `unsigned int`, `struct list_head *`, `char[16]`.
    pub fn type_name(&self, id: TypeId) -> String {
        self.name_depth(id, 0)
    }

    fn name_depth(&self, id: TypeId, depth: usize) -> String {
        if depth > MAX_DEPTH {
            return "...".into();
        }
        let named = |kw: &str, n: u32| {
            let s = self.str(n);
            if s.is_empty() {
                format!("{kw} {{...}}")
            } else {
                format!("{kw} {s}")
            }
        };
        match self.get(id) {
            Type::Void => "void".into(),
            Type::Int { name, .. }
            | Type::Typedef { name, .. }
            | Type::Float { name, .. }
            | Type::Func { name, .. }
            | Type::Var { name, .. }
            | Type::Datasec { name, .. } => self.str(*name).into(),
            Type::Ptr { ty } => {
                let inner = self.name_depth(*ty, depth + 1);
                if inner.ends_with('*') {
                    format!("{inner}*")
                } else {
                    format!("{inner} *")
                }
            }
            Type::Array { elem, nelems } => {
                format!("{}[{nelems}]", self.name_depth(*elem, depth + 1))
            }
            Type::Struct { name, union, .. } | Type::Fwd { name, union } => {
                named(if *union { "union" } else { "struct" }, *name)
            }
            Type::Enum { name, .. } => named("enum", *name),
            Type::Qualifier { what, ty } => {
                let inner = self.name_depth(*ty, depth + 1);
                if what.is_empty() {
                    inner
                } else {
                    format!("{what} {inner}")
                }
            }
            Type::FuncProto => "fn(...)".into(),
            Type::DeclTag => "decl_tag".into(),
        }
    }

    /// The members of struct/union `id`: (name, type, bit offset, bitfield bits), a bitfield
    /// of the old encoding (width in the INT type) normalised to the new one.
    fn members(&self, id: TypeId) -> Vec<(&str, TypeId, u64, u32)> {
        let Type::Struct { members, .. } = self.get(id) else {
            return Vec::new();
        };
        members
            .iter()
            .map(|m| {
                let mut off = u64::from(m.bit_offset);
                let mut bits = m.bitfield;
                // the old encoding: a bitfield's width and bit offset are in its INT type
                if let (
                    0,
                    Type::Int {
                        size,
                        bit_offset,
                        bits: b,
                        ..
                    },
                ) = (bits, self.get(self.resolve(m.ty)))
                    && *b != 0
                    && u64::from(*b) != u64::from(*size) * 8
                {
                    bits = *b;
                    off += u64::from(*bit_offset);
                }
                (self.str(m.name), m.ty, off, bits)
            })
            .collect()
    }

    fn field_row(&self, path: String, depth: u32, ty: TypeId, off: u64, bits: u32) -> Field {
        let name = match path.rsplit_once('.') {
            Some((_, n)) => n.to_string(),
            None => path.clone(),
        };
        Field {
            name,
            path,
            depth,
            bit_offset: off,
            size: self.size_of(ty).unwrap_or(0),
            bitfield_bits: bits,
            type_name: self.type_name(ty),
            ty,
        }
    }

    /// The layout of struct/union `id`, like `pahole`: every member with its offset, size and
    /// type; anonymous structs and unions are expanded in place (their members one level
    /// deeper), and named ones too when `expand` is set (to 32 levels), at most
    /// [`MAX_LAYOUT_ROWS`] rows.
    pub fn layout(&self, id: TypeId, expand: bool) -> Vec<Field> {
        let mut rows = Vec::new();
        self.layout_into(&mut rows, id, "", 0, 0, expand);
        rows
    }

    fn layout_into(
        &self,
        rows: &mut Vec<Field>,
        id: TypeId,
        prefix: &str,
        base: u64,
        depth: u32,
        expand: bool,
    ) {
        if depth as usize > MAX_DEPTH {
            return;
        }
        for (name, ty, off, bits) in self.members(self.resolve(id)) {
            if rows.len() >= MAX_LAYOUT_ROWS {
                return;
            }
            let path = if prefix.is_empty() {
                name.to_string()
            } else if name.is_empty() {
                prefix.to_string()
            } else {
                format!("{prefix}.{name}")
            };
            let abs = base.saturating_add(off);
            let mut row = self.field_row(path.clone(), depth, ty, abs, bits);
            row.name = name.to_string();
            rows.push(row);
            let inner = self.resolve(ty);
            if matches!(self.get(inner), Type::Struct { .. }) && (name.is_empty() || expand) {
                self.layout_into(rows, inner, &path, abs, depth + 1, expand);
            }
        }
    }

    /// `field` followed by its members when it is a struct or union (anonymous ones always,
    /// named ones with `expand`), at their offsets in the outer type, one level deeper.
    pub fn layout_from(&self, field: &Field, expand: bool) -> Vec<Field> {
        let mut rows = vec![field.clone()];
        if matches!(self.get(self.resolve(field.ty)), Type::Struct { .. }) {
            self.layout_into(
                &mut rows,
                field.ty,
                &field.path,
                field.bit_offset,
                field.depth + 1,
                expand,
            );
        }
        rows
    }

    /// The layout of the struct or union called `name`.
    pub fn struct_layout(&self, name: &str) -> Result<Vec<Field>> {
        Ok(self.layout(self.struct_id(name)?, false))
    }

    /// The field at `path` (`mm`, `se.vruntime`, `pid_links`) of the struct/union called
    /// `type_name`, members of anonymous structs and unions found as C finds them.
    pub fn field(&self, type_name: &str, path: &str) -> Result<Field> {
        self.field_of(self.struct_id(type_name)?, path)
    }

    /// The field at `path` of struct/union `id`; an empty path is the whole type.
    pub fn field_of(&self, id: TypeId, path: &str) -> Result<Field> {
        let mut cur = self.field_row(String::new(), 0, id, 0, 0);
        for part in path.split('.').filter(|p| !p.is_empty()) {
            let outer = self.resolve(cur.ty);
            if !matches!(self.get(outer), Type::Struct { .. }) {
                return Err(Error::NotFound(format!(
                    "{:?} is a {}, not a struct or union: it has no field {part:?}",
                    if cur.path.is_empty() {
                        "type"
                    } else {
                        &cur.path
                    },
                    cur.type_name
                )));
            }
            let (ty, off, bits) = self.find_member(outer, part, 0).ok_or_else(|| {
                Error::NotFound(format!(
                    "{} has no field {part:?} (in {})",
                    self.type_name(outer),
                    self.path.display()
                ))
            })?;
            let p = if cur.path.is_empty() {
                part.to_string()
            } else {
                format!("{}.{part}", cur.path)
            };
            cur = self.field_row(p, 0, ty, cur.bit_offset.saturating_add(off), bits);
        }
        Ok(cur)
    }

    /// Member `name` of struct/union `id`, looking inside anonymous members (at most
    /// [`MAX_LAYOUT_ROWS`] structs visited: a damaged file's cycles end there).
    fn find_member(&self, id: TypeId, name: &str, depth: usize) -> Option<(TypeId, u64, u32)> {
        let mut budget = MAX_LAYOUT_ROWS;
        self.find_member_in(id, name, depth, &mut budget)
    }

    fn find_member_in(
        &self,
        id: TypeId,
        name: &str,
        depth: usize,
        budget: &mut usize,
    ) -> Option<(TypeId, u64, u32)> {
        if depth > MAX_DEPTH || *budget == 0 {
            return None;
        }
        *budget -= 1;
        let members = self.members(id);
        if let Some(&(_, ty, off, bits)) = members.iter().find(|m| m.0 == name) {
            return Some((ty, off, bits));
        }
        for m in members.iter().filter(|m| m.0.is_empty()) {
            if let Some((ty, off, bits)) =
                self.find_member_in(self.resolve(m.1), name, depth + 1, budget)
            {
                return Some((ty, m.2.saturating_add(off), bits));
            }
        }
        None
    }
}

/// Read a whole kernel file of at most [`MAX_BTF_BYTES`], with the config hint when absent.
fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Unsupported {
                path: path.to_path_buf(),
                what: "the kernel's BTF type information".into(),
                hint: "the kernel needs CONFIG_DEBUG_INFO_BTF=y".into(),
            }
        } else {
            Error::io(path, e)
        }
    })?;
    let mut data = Vec::new();
    f.take(MAX_BTF_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| Error::io(path, e))?;
    if data.len() as u64 > MAX_BTF_BYTES {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            line: 0,
            msg: format!("larger than {MAX_BTF_BYTES} bytes: not a vmlinux BTF file"),
        });
    }
    Ok(data)
}
