//! Properties of the kmem decoders that do not need kernel memory: the hexdump of any bytes,
//! SLUB's hardened free pointer decoding (mm/slub.c 6.1 `freelist_ptr()`), and which words are
//! masked as per-object pointers when objects are grouped.

use pgtool::kmem::objects::{hexdump, is_object_pointer};
use pgtool::kmem::{Cache, Slub};
use proptest::prelude::*;

fn cache(random: Option<u64>) -> Cache {
    Cache {
        addr: 0xffff_8880_0300_0000,
        name: "t".into(),
        size: 256,
        object_size: 256,
        offset: 128,
        flags: 0,
        order: 0,
        objects_per_slab: 16,
        random,
        red_left_pad: 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn hexdump_of_any_bytes(b in proptest::collection::vec(any::<u8>(), 0..600)) {
        let d = hexdump(&b);
        prop_assert_eq!(d.len(), b.len().div_ceil(16));
        let bar = d.first().and_then(|l| l.find('|'));
        for (i, line) in d.iter().enumerate() {
            let off = format!("{:04x}:", i * 16);
            prop_assert!(line.starts_with(&off), "{line}");
            prop_assert_eq!(line.find('|'), bar, "ASCII column moves: {}", line);
            prop_assert!(line.ends_with('|'));
            prop_assert!(line.is_ascii());
            // the hex column reads back as the bytes
            let hex: Vec<u8> = line[6..bar.unwrap_or(6)]
                .split_ascii_whitespace()
                .map(|h| u8::from_str_radix(h, 16).unwrap_or(0))
                .collect();
            let end = (i * 16 + 16).min(b.len());
            prop_assert_eq!(&hex[..], &b[i * 16..end]);
        }
    }

    #[test]
    fn hardened_pointer_decodes_what_the_kernel_encodes(ptr: u64, random: u64, at: u64) {
        // set_freepointer() stores freelist_ptr(s, fp, addr): the same XOR both ways
        let stored = ptr ^ random ^ at.swap_bytes();
        prop_assert_eq!(Slub::decode(&cache(Some(random)), stored, at), ptr);
        prop_assert_eq!(Slub::decode(&cache(None), ptr, at), ptr);
    }

    #[test]
    fn user_words_and_kernel_image_are_kept(v: u64) {
        let masked = is_object_pointer(v);
        prop_assert_eq!(masked, (0xff00_0000_0000_0000..0xffff_ffff_8000_0000).contains(&v));
    }
}

#[test]
fn masked_ranges_on_x86_64() {
    // direct map, vmalloc, vmemmap (4-level), 5-level direct map: masked
    for v in [
        0xffff_8880_0000_1000u64,
        0xffff_c900_0000_0000,
        0xffff_ea00_0000_0040,
        0xff11_0000_0000_0000,
    ] {
        assert!(is_object_pointer(v), "{v:#x}");
    }
    // kernel text/data, modules, error pointers, user addresses, small numbers: kept
    for v in [
        0xffff_ffff_8100_0000u64,
        0xffff_ffff_c000_0000,
        u64::MAX - 11,
        0x7fff_ffff_f000,
        42,
    ] {
        assert!(!is_object_pointer(v), "{v:#x}");
    }
}
