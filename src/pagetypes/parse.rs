//! page-types' argument grammar: numbers (`strtoll(s, NULL, 0)` semantics), flag-name lists
//! with prefix matching, bits-specs (`-b`) and addr-specs (`-a`).

use crate::kpageflags::FLAG_NAMES;

/// compound_head | compound_tail: what any prefix of `compound` means.
pub const BITS_COMPOUND: u64 = (1 << 15) | (1 << 16);
/// The "any bit of the mask" sentinel of a bit filter.
pub const ALL_BITS: u64 = u64::MAX;

/// A fatal parse error: the exact text page-types prints on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub Vec<u8>);

fn invalid(s: &[u8]) -> ParseError {
    let mut m = b"invalid name or number: ".to_vec();
    m.extend_from_slice(s);
    m.push(b'\n');
    ParseError(m)
}

/// C `strtoll(s, NULL, 0)`: leading whitespace, a sign, `0x` hex / `0` octal / decimal,
/// stopping at the first invalid character, saturating on overflow.
pub fn strtoll(s: &[u8]) -> i64 {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let mut base = 10u32;
    if i < s.len() && s[i] == b'0' {
        if i + 2 < s.len() + 1
            && s.get(i + 1).is_some_and(|&c| c == b'x' || c == b'X')
            && s.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit())
        {
            base = 16;
            i += 2;
        } else {
            base = 8;
        }
    }
    let mut v: u128 = 0;
    let mut overflow = false;
    while let Some(&c) = s.get(i) {
        let d = match (c as char).to_digit(base) {
            Some(d) => d,
            None => break,
        };
        if !overflow {
            v = v * u128::from(base) + u128::from(d);
            if v > 1u128 << 64 {
                overflow = true;
            }
        }
        i += 1;
    }
    if neg {
        if overflow || v > 1u128 << 63 {
            i64::MIN
        } else {
            (v as i128).wrapping_neg() as i64
        }
    } else if overflow || v > i64::MAX as u128 {
        i64::MAX
    } else {
        v as i64
    }
}

/// page-types' `parse_number`: strtoll, then rejected only when 0 and the string does not
/// start with `0`.
pub fn parse_number(s: &[u8]) -> Result<u64, ParseError> {
    let n = strtoll(s) as u64;
    if n == 0 && s.first() != Some(&b'0') {
        return Err(invalid(s));
    }
    Ok(n)
}

/// One token of a flag list: `rest` runs from the token to the end of the whole argument,
/// `len` is the token's length.
fn parse_flag_name(rest: &[u8], len: usize) -> Result<u64, ParseError> {
    if rest.is_empty() || len == 0 {
        return Ok(0);
    }
    let tok = &rest[..len];
    if len <= 8 && b"compound".starts_with(tok) {
        return Ok(BITS_COMPOUND);
    }
    for n in FLAG_NAMES.iter() {
        if n.name.as_bytes().starts_with(tok) {
            return Ok(1u64 << n.bit);
        }
    }
    parse_number(rest)
}

/// page-types' `parse_flag_names`: a `,`-separated list ending at `=` or the end. `mask`
/// mode (`all`) counts `~name` tokens as `name`; otherwise they count for nothing.
pub fn parse_flag_names(s: &[u8], all: bool) -> Result<u64, ParseError> {
    let mut flags = 0u64;
    let mut start = 0usize;
    let mut p = 0usize;
    loop {
        let c = s.get(p).copied().unwrap_or(0);
        if c == b',' || c == b'=' || c == 0 {
            if s.get(start) != Some(&b'~') {
                flags |= parse_flag_name(&s[start.min(s.len())..], p - start)?;
            } else if all && start + 1 < s.len() && s[start + 1] != 0 {
                flags |= parse_flag_name(&s[start + 1..], p - start - 1)?;
            }
            if c != b',' {
                break;
            }
            start = p + 1;
        }
        p += 1;
    }
    Ok(flags)
}

/// A `-b` bits-spec as (mask, bits); bits == [`ALL_BITS`] means "any bit of mask".
pub fn parse_bits_mask(s: &[u8]) -> Result<(u64, u64), ParseError> {
    match s.iter().position(|&c| c == b'=') {
        Some(0) => Ok((ALL_BITS, parse_flag_names(&s[1..], false)?)),
        Some(i) => Ok((
            parse_flag_names(s, false)?,
            parse_flag_names(&s[i + 1..], false)?,
        )),
        None if s.contains(&b'~') => Ok((parse_flag_names(s, true)?, parse_flag_names(s, false)?)),
        None => Ok((parse_flag_names(s, false)?, ALL_BITS)),
    }
}

/// A `-a` addr-spec as (offset, size) before page-types clamps size to `ULONG_MAX - offset`.
pub fn parse_addr_range(s: &[u8]) -> Result<(u64, u64), ParseError> {
    let p = s
        .iter()
        .position(|&c| c == b',')
        .or_else(|| s.iter().position(|&c| c == b'+'));
    match p {
        Some(0) => Ok((0, parse_number(&s[1..])?)),
        Some(i) => {
            let offset = parse_number(s)?;
            if i + 1 == s.len() {
                return Ok((offset, u64::MAX));
            }
            let mut size = parse_number(&s[i + 1..])?;
            if s[i] == b',' {
                if size < offset {
                    return Err(ParseError(
                        format!("invalid range: {offset},{size}\n").into_bytes(),
                    ));
                }
                size -= offset;
            }
            Ok((offset, size))
        }
        None => Ok((parse_number(s)?, 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtoll_semantics() {
        assert_eq!(strtoll(b"08"), 0);
        assert_eq!(strtoll(b"010"), 8);
        assert_eq!(strtoll(b"0x"), 0);
        assert_eq!(strtoll(b"  -1"), -1);
        assert_eq!(strtoll(b"5abc"), 5);
        assert_eq!(strtoll(b"0x8000000000000000"), i64::MAX);
        assert_eq!(strtoll(b"-0x8000000000000001"), i64::MIN);
        assert_eq!(strtoll(b"-0x8000000000000000"), i64::MIN);
        assert_eq!(strtoll(b"99999999999999999999999"), i64::MAX);
        assert!(parse_number(b"").is_err());
        assert_eq!(parse_number(b"0x").ok(), Some(0));
    }

    #[test]
    fn flag_lists() {
        assert_eq!(parse_flag_names(b"a", false).ok(), Some(1 << 6));
        assert_eq!(parse_flag_names(b"swap", false).ok(), Some(1 << 13));
        assert_eq!(parse_flag_names(b"c", false).ok(), Some(BITS_COMPOUND));
        assert_eq!(parse_flag_names(b"~lru,active", false).ok(), Some(1 << 6));
        assert_eq!(
            parse_flag_names(b"~lru,active", true).ok(),
            Some(1 << 6 | 1 << 5)
        );
        assert_eq!(
            parse_flag_names(b"lru,bogus,active", false),
            Err(ParseError(
                b"invalid name or number: bogus,active\n".to_vec()
            ))
        );
        assert_eq!(parse_bits_mask(b"~lru").ok(), Some((1 << 5, 0)));
        assert_eq!(parse_addr_range(b"5,").ok(), Some((5, u64::MAX)));
        assert_eq!(parse_addr_range(b"5+3,7").ok(), Some((5, 2)));
    }
}
