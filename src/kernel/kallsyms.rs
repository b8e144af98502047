//! `/proc/kallsyms`: kernel and module symbols, address <-> `symbol+0xoff/0xsize [module]`,
//! and the kernel base and KASLR offset.
//!
//! kallsyms gives no sizes: a symbol's size is the distance to the next higher address, as the
//! kernel's own `%pS` computes it. Non-root readers (and kernel.kptr_restrict=2) see every
//! address as 0; that is an error saying so, not an empty table.

use crate::error::{Error, Result};
use crate::root::SysRoot;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// x86-64's link-time address of `_text`: __START_KERNEL_map (0xffffffff80000000) plus the
/// default CONFIG_PHYSICAL_START (16 MiB). The KASLR offset is `_text` minus this.
pub const X86_64_LINK_BASE: u64 = 0xffff_ffff_8100_0000;
/// The most symbols read (a distribution kernel with modules has about 200,000).
const MAX_SYMBOLS: usize = 4_000_000;
/// The longest line accepted.
const MAX_LINE: usize = 1024;

/// One symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    /// Its address.
    pub addr: u64,
    /// nm's type letter (`T` text, `D` data, `b` local bss...).
    pub kind: char,
    /// The name.
    pub name: String,
    /// The module it belongs to (`None`: the kernel image).
    pub module: Option<String>,
}

/// An address resolved to a symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location<'a> {
    /// The symbol at or below the address.
    pub symbol: &'a Symbol,
    /// Address minus the symbol's.
    pub offset: u64,
    /// Distance to the next symbol (`None` for the last one).
    pub size: Option<u64>,
}

impl std::fmt::Display for Location<'_> {
    /// `name+0xoff/0xsize [module]`, as the kernel's `%pS` prints it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}+{:#x}", self.symbol.name, self.offset)?;
        if let Some(s) = self.size {
            write!(f, "/{s:#x}")?;
        }
        if let Some(m) = &self.symbol.module {
            write!(f, " [{m}]")?;
        }
        Ok(())
    }
}

/// Parse one kallsyms line: `ffffffff81000000 T _text` or `... t name\t[module]`.
pub fn parse_line(line: &str) -> std::result::Result<Symbol, String> {
    let mut it = line.split_ascii_whitespace();
    let (Some(a), Some(k), Some(name)) = (it.next(), it.next(), it.next()) else {
        return Err("expected ADDRESS TYPE NAME [MODULE]".into());
    };
    let addr = u64::from_str_radix(a, 16).map_err(|_| format!("{a:?} is not a hex address"))?;
    let mut kc = k.chars();
    let kind = match (kc.next(), kc.next()) {
        (Some(c), None) if c.is_ascii_alphabetic() || c == '?' => c,
        _ => return Err(format!("{k:?} is not a symbol type letter")),
    };
    let module = match it.next() {
        None => None,
        Some(m) => Some(
            m.strip_prefix('[')
                .and_then(|m| m.strip_suffix(']'))
                .filter(|m| !m.is_empty())
                .ok_or_else(|| format!("{m:?} is not a [module]"))?
                .to_string(),
        ),
    };
    if it.next().is_some() {
        return Err("extra text after the module".into());
    }
    Ok(Symbol {
        addr,
        kind,
        name: name.to_string(),
        module,
    })
}

/// The symbols of `/proc/kallsyms`, sorted by address.
pub struct Kallsyms {
    syms: Vec<Symbol>,
}

impl Kallsyms {
    /// Read the running kernel's symbols (root only: others see zero addresses).
    pub fn load(root: &SysRoot) -> Result<Kallsyms> {
        let path = root.kallsyms();
        let f = std::fs::File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Unsupported {
                path: path.clone(),
                what: "the kernel symbol table".into(),
                hint: "the kernel needs CONFIG_KALLSYMS=y".into(),
            },
            _ => Error::io(&path, e),
        })?;
        let restrict = std::fs::read_to_string(root.kptr_restrict())
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        Kallsyms::from_reader(BufReader::new(f), &path, restrict)
    }

    /// Parse kallsyms text; `path` names it in errors, `kptr_restrict` (if known) is said
    /// when every address reads 0.
    pub fn from_reader(
        r: impl BufRead,
        path: &Path,
        kptr_restrict: Option<u32>,
    ) -> Result<Kallsyms> {
        let mut syms = Vec::new();
        let mut nonzero = false;
        let mut line = String::new();
        let mut r = r.take(u64::MAX);
        for lineno in 1.. {
            line.clear();
            r.set_limit(MAX_LINE as u64 + 1);
            let n = r.read_line(&mut line).map_err(|e| Error::io(path, e))?;
            if n == 0 {
                break;
            }
            let parse = |msg: String| Error::Parse {
                path: path.to_path_buf(),
                line: lineno,
                msg,
            };
            if n > MAX_LINE {
                return Err(parse(format!("line longer than {MAX_LINE} bytes")));
            }
            if line.trim().is_empty() {
                continue;
            }
            if syms.len() >= MAX_SYMBOLS {
                return Err(parse(format!("more than {MAX_SYMBOLS} symbols")));
            }
            let s = parse_line(&line).map_err(parse)?;
            nonzero |= s.addr != 0;
            syms.push(s);
        }
        if syms.is_empty() {
            return Err(Error::Parse {
                path: path.to_path_buf(),
                line: 0,
                msg: "no symbols".into(),
            });
        }
        if !nonzero {
            let why = match kptr_restrict {
                Some(v) => format!("kernel.kptr_restrict is {v}"),
                None => "kernel.kptr_restrict".into(),
            };
            return Err(Error::Unsupported {
                path: path.to_path_buf(),
                what: "the address of each kernel symbol".into(),
                hint: format!(
                    "every address reads 0: run as root, with kernel.kptr_restrict 0 or 1 ({why})"
                ),
            });
        }
        syms.sort_by_key(|s| s.addr);
        Ok(Kallsyms { syms })
    }

    /// Every symbol, by address.
    pub fn symbols(&self) -> &[Symbol] {
        &self.syms
    }

    /// The address of the first symbol called `name` (kernel image before modules), or of
    /// `module:name`.
    pub fn address_of(&self, name: &str) -> Option<u64> {
        let (module, name) = match name.split_once(':') {
            Some((m, n)) => (Some(m), n),
            None => (None, name),
        };
        let mut found = None;
        for s in self.syms.iter().filter(|s| s.name == name) {
            match (module, &s.module) {
                (Some(m), Some(sm)) if m == sm => return Some(s.addr),
                (None, None) => return Some(s.addr),
                (None, Some(_)) => {
                    found.get_or_insert(s.addr);
                }
                _ => {}
            }
        }
        found
    }

    /// The symbol an address falls in: the highest symbol at or below it (a real one in
    /// preference to `__pfx_` padding or an absolute `a`), within its size. `None` below the
    /// first symbol, past the last one, or in a symbol whose size is unknown unless exact.
    pub fn lookup(&self, addr: u64) -> Option<Location<'_>> {
        let i = self.syms.partition_point(|s| s.addr <= addr);
        let at = self.syms[..i].last()?.addr;
        if at == 0 {
            return None;
        }
        let first = self.syms[..i].partition_point(|s| s.addr < at);
        let group = &self.syms[first..i];
        // Prefer a real name over linker markers (_text, _stext), __pfx_ padding and
        // absolute symbols that share the address.
        let real = |s: &&Symbol| !s.name.starts_with("__pfx_") && !matches!(s.kind, 'a' | 'A');
        let symbol = group
            .iter()
            .filter(real)
            .find(|s| !s.name.starts_with('_'))
            .or_else(|| group.iter().find(real))
            .unwrap_or(&group[0]);
        let size = self.syms.get(i).map(|n| n.addr - at);
        let offset = addr - at;
        match size {
            Some(sz) if offset < sz => {}
            None if offset == 0 => {}
            _ => return None,
        }
        Some(Location {
            symbol,
            offset,
            size,
        })
    }

    /// The kernel's base: the address of `_text` (else `_stext`).
    pub fn kernel_base(&self) -> Option<u64> {
        self.address_of("_text")
            .or_else(|| self.address_of("_stext"))
    }

    /// The KASLR offset on x86-64: `_text` minus [`X86_64_LINK_BASE`] (0 without
    /// randomisation); `None` on other architectures or without `_text`.
    pub fn kaslr_offset(&self) -> Option<u64> {
        if !cfg!(target_arch = "x86_64") {
            return None;
        }
        self.kernel_base()?.checked_sub(X86_64_LINK_BASE)
    }

    /// True when `addr` lies in the kernel image (`_text` up to `_end`).
    pub fn in_kernel_image(&self, addr: u64) -> bool {
        match (self.kernel_base(), self.address_of("_end")) {
            (Some(b), Some(e)) => addr >= b && addr < e,
            _ => false,
        }
    }
}
