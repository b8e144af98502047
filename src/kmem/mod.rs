//! The kernel's own memory allocators, read through [`crate::kernel`] (BTF, /proc/kcore,
//! /proc/kallsyms): SLUB's caches and slabs ([`slub`]), and what a cache is full of
//! ([`objects`]: `pgtool slab --objects`).

pub mod cache;
pub mod kfence;
pub mod objects;
pub mod page;
pub mod slub;

pub use slub::{Cache, Node, SlabHead, Slub};
