//! Unsigned integers as ASCII digits without `core::fmt`: the listing and CSV writers print
//! hundreds of thousands of numbers a run, and the formatting machinery was a large share of
//! their time.

/// The decimal digits of `x`, at the end of `buf`.
pub fn decimal(x: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut x = x;
    loop {
        i -= 1;
        buf[i] = b'0' + (x % 10) as u8;
        x /= 10;
        if x == 0 {
            break;
        }
    }
    &buf[i..]
}

/// The lowercase hex digits of `x` (no `0x`), at the end of `buf`.
pub fn hex(x: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut x = x;
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[(x & 15) as usize];
        x >>= 4;
        if x == 0 {
            break;
        }
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_match_rusts_formatting() {
        for x in [0u64, 1, 9, 10, 15, 16, 99, 255, 0x1c20b, 1 << 63, u64::MAX] {
            let mut b = [0; 20];
            assert_eq!(decimal(x, &mut b), format!("{x}").as_bytes());
            assert_eq!(hex(x, &mut b), format!("{x:x}").as_bytes());
        }
    }
}
