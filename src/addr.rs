//! Newtypes for the three kinds of numbers pgtool juggles, so a PFN is never passed where a
//! virtual address is expected.

use serde::Serialize;
use std::fmt;
use std::sync::OnceLock;

/// The system page size in bytes (4096 on x86-64), read once from `sysconf(_SC_PAGESIZE)`.
pub fn page_size() -> u64 {
    static PAGE_SIZE: OnceLock<u64> = OnceLock::new();
    *PAGE_SIZE.get_or_init(|| {
        nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|v| u64::try_from(v).ok())
            .filter(|v| v.is_power_of_two())
            .unwrap_or(4096)
    })
}

/// `log2(page_size())`.
pub fn page_shift() -> u32 {
    page_size().trailing_zeros()
}

/// Parse a number as everywhere in pgtool's arguments: hex with `0x`/`0X`, else decimal.
/// Only digits are accepted (no sign, no spaces inside, no empty `0x`); surrounding
/// whitespace is ignored. `None` for anything else, including overflow.
///
/// ```
/// use pgtool::addr::parse_number;
/// assert_eq!(parse_number("0x1c20b"), Some(0x1c20b));
/// assert_eq!(parse_number(" 42 "), Some(42));
/// assert_eq!(parse_number("+5"), None);
/// assert_eq!(parse_number("0x"), None);
/// ```
pub fn parse_number(s: &str) -> Option<u64> {
    let t = s.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => parse_hex(h),
        None if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => t.parse().ok(),
        None => None,
    }
}

/// Parse bare hex digits (no prefix, no sign).
pub fn parse_hex(h: &str) -> Option<u64> {
    if h.is_empty() || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(h, 16).ok()
}

macro_rules! newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }
        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }
        impl fmt::UpperHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::UpperHex::fmt(&self.0, f)
            }
        }
        impl From<u64> for $name {
            fn from(v: u64) -> Self {
                $name(v)
            }
        }
        impl From<$name> for u64 {
            fn from(v: $name) -> u64 {
                v.0
            }
        }
    };
}

newtype!(
    /// A physical page frame number: physical address >> page shift.
    Pfn
);
newtype!(
    /// A virtual address in some process.
    VirtAddr
);
newtype!(
    /// A physical address.
    PhysAddr
);

impl Pfn {
    /// The physical address of the first byte of this page frame; `None` when the PFN is too
    /// large for a 64-bit address (a shift would silently drop its high bits).
    pub fn phys_addr(self) -> Option<PhysAddr> {
        self.0.checked_mul(page_size()).map(PhysAddr)
    }
}

impl PhysAddr {
    /// The frame that holds this physical address.
    pub fn pfn(self) -> Pfn {
        Pfn(self.0 >> page_shift())
    }
}

impl VirtAddr {
    /// The virtual page number (address >> page shift): the index into `/proc/PID/pagemap`.
    pub fn vpn(self) -> u64 {
        self.0 >> page_shift()
    }
    /// The address rounded down to its page.
    pub fn page_base(self) -> VirtAddr {
        VirtAddr(self.0 & !(page_size() - 1))
    }
    /// The byte offset inside the page.
    pub fn page_offset(self) -> u64 {
        self.0 & (page_size() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip() {
        let ps = page_size();
        assert!(ps.is_power_of_two());
        let a = VirtAddr(5 * ps + 17);
        assert_eq!(a.vpn(), 5);
        assert_eq!(a.page_base(), VirtAddr(5 * ps));
        assert_eq!(a.page_offset(), 17);
        assert_eq!(Pfn(3).phys_addr(), Some(PhysAddr(3 * ps)));
        assert_eq!(Pfn(u64::MAX >> 1).phys_addr(), None);
        assert_eq!(PhysAddr(3 * ps + 1).pfn(), Pfn(3));
        assert_eq!(format!("{}", Pfn(0x1c20b)), "0x1c20b");
    }
}
