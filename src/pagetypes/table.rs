//! page-types' summary table: an 8192-slot open-addressing hash of flag values whose slot order
//! is the row order page-types prints, plus the classic text formats of flags.

use crate::kpageflags::{FLAG_NAMES, flag_name};

/// Number of slots (page-types' `HASH_SIZE`, 1 << 13).
pub const HASH_SIZE: usize = 1 << 13;

/// The table: value and count per slot, and the total.
pub struct Table {
    flags: Vec<u64>,
    counts: Vec<u64>,
    /// Pages counted.
    pub total: u64,
    last: (u64, usize),
}

/// The fatal message when more than 8191 distinct non-zero values come.
pub const TABLE_FULL: &[u8] = b"hash table full: bump up HASH_SHIFT?\n";

impl Default for Table {
    fn default() -> Self {
        Table {
            flags: vec![0; HASH_SIZE],
            counts: vec![0; HASH_SIZE],
            total: 0,
            last: (0, 0),
        }
    }
}

impl Table {
    /// The slot of `v`, inserting it as page-types' `hash_slot` does.
    pub fn slot(&mut self, v: u64) -> Option<usize> {
        if v == 0 {
            return Some(0);
        }
        if self.last.0 == v {
            return Some(self.last.1);
        }
        let mut k = (v as usize) & (HASH_SIZE - 1);
        for _ in 1..HASH_SIZE {
            if k == 0 || k >= HASH_SIZE {
                k = 1;
            }
            if self.flags[k] == 0 {
                self.flags[k] = v;
                self.last = (v, k);
                return Some(k);
            }
            if self.flags[k] == v {
                self.last = (v, k);
                return Some(k);
            }
            k += 1;
        }
        None
    }

    /// Count `n` pages of value `v`; `None` when the table is full.
    pub fn add(&mut self, v: u64, n: u64) -> Option<()> {
        let s = self.slot(v)?;
        self.counts[s] += n;
        self.total += n;
        Some(())
    }

    /// The rows (value, pages) with a non-zero count, in slot order.
    pub fn rows(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        (0..HASH_SIZE)
            .filter(|&i| self.counts[i] != 0)
            .map(|i| (self.flags[i], self.counts[i]))
    }
}

/// The 45-character symbolic string, or page-types' `unknown flag bit N` error.
pub fn symbolic(v: u64) -> Result<String, Vec<u8>> {
    if let Some(b) = (0..64u32).find(|&b| v & (1 << b) != 0 && flag_name(b).is_none()) {
        return Err(format!("unknown flag bit {b}\n").into_bytes());
    }
    Ok(FLAG_NAMES
        .iter()
        .map(|n| if v & (1 << n.bit) != 0 { n.letter } else { '_' })
        .collect())
}

/// The long names of the named bits set in `v`, joined with `,`.
pub fn long_names(v: u64) -> String {
    let mut s = String::new();
    for n in FLAG_NAMES.iter().filter(|n| v & (1 << n.bit) != 0) {
        if !s.is_empty() {
            s.push(',');
        }
        s.push_str(n.name);
    }
    s
}

/// page-types' usage text (`-h`, and on stdout after a usage error).
pub fn usage() -> String {
    let mut s = String::from(USAGE_HEAD);
    let mut j = 0;
    for n in FLAG_NAMES.iter() {
        let tag = match n.bit {
            32..=47 => "(r)",
            48..=63 => "(o)",
            _ => "   ",
        };
        s.push_str(&format!("{:>16}{}", n.name, tag));
        j += 1;
        if j > 3 {
            j = 0;
            s.push('\n');
        }
    }
    s.push_str("\n                                   (r) raw mode bits  (o) overloaded bits\n");
    s
}

const USAGE_HEAD: &str = "page-types [options]
            -r|--raw                   Raw mode, for kernel developers
            -d|--describe flags        Describe flags
            -a|--addr    addr-spec     Walk a range of pages
            -b|--bits    bits-spec     Walk pages with specified bits
            -c|--cgroup  path|@inode   Walk pages within memory cgroup
            -p|--pid     pid           Walk process address space
            -f|--file    filename      Walk file address space
            -i|--mark-idle             Mark pages idle
            -l|--list                  Show page details in ranges
            -L|--list-each             Show page details one by one
            -C|--list-cgroup           Show cgroup inode for pages
            -M|--list-mapcnt           Show page map count
            -N|--no-summary            Don't show summary info
            -X|--hwpoison              hwpoison pages
            -x|--unpoison              unpoison pages
            -F|--kpageflags filename   kpageflags file to parse
            -h|--help                  Show this usage message
flags:
            0x10                       bitfield format, e.g.
            anon                       bit-name, e.g.
            0x10,anon                  comma-separated list, e.g.
addr-spec:
            N                          one page at offset N (unit: pages)
            N+M                        pages range from N to N+M-1
            N,M                        pages range from N to M-1
            N,                         pages range from N to end
            ,M                         pages range from 0 to M-1
bits-spec:
            bit1,bit2                  (flags & (bit1|bit2)) != 0
            bit1,bit2=bit1             (flags & (bit1|bit2)) == bit1
            bit1,~bit2                 (flags & (bit1|bit2)) == bit1
            =bit1,bit2                 flags == (bit1|bit2)
bit-names:
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collisions_probe_linearly() {
        let mut t = Table::default();
        assert_eq!(t.slot(0x2000), Some(1));
        assert_eq!(t.slot(0x1), Some(2));
        assert_eq!(t.slot(0x4000), Some(3));
        assert_eq!(t.slot(0x2000), Some(1));
        assert_eq!(t.slot(0x1fff), Some(0x1fff));
        assert_eq!(t.slot(0x3fff), Some(4));
    }
}
