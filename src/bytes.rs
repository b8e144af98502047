//! The one view of a `u64` slice as bytes, for `pread` into word buffers (kpageflags,
//! kpagecount, kpagecgroup, pagemap, the idle bitmap) without a copy.

/// The bytes of `words`, in native byte order.
pub fn u64s_as_bytes(words: &[u64]) -> &[u8] {
    // SAFETY: u64 has no padding, u8 has alignment 1; same memory, same length in bytes, same
    // lifetime, shared borrow.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), std::mem::size_of_val(words)) }
}

/// The bytes of `words`, writable: every byte pattern written through it is a valid u64.
pub fn u64s_as_bytes_mut(words: &mut [u64]) -> &mut [u8] {
    let len = std::mem::size_of_val(words);
    // SAFETY: as above, with an exclusive borrow; any bytes form a valid u64.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_native_order() {
        let mut w = [0u64; 2];
        u64s_as_bytes_mut(&mut w)[..8].copy_from_slice(&0x1122_3344_5566_7788u64.to_ne_bytes());
        assert_eq!(w[0], 0x1122_3344_5566_7788);
        assert_eq!(u64s_as_bytes(&w).len(), 16);
    }
}
