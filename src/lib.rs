//! pgtool: Linux memory, page by page, from user space.
//!
//! Typed, batched readers for the kernel's page interfaces (`/proc/PID/maps`,
//! `/proc/PID/pagemap`, `/proc/kpageflags`, `/proc/kpagecount`, `/proc/kpagecgroup`,
//! `/proc/iomem`, the page_idle bitmap, hwpoison debugfs files), and the analyses built on them:
//! virtual-to-physical translation, page-types' summaries, PFN-to-process reverse lookup, idle
//! page tracking, hwpoison injection, page_owner reports.
//!
//! Every reader takes its paths from a [`SysRoot`]: the live system, or a snapshot directory
//! saved on another host with `pgtool snapshot`.
//!
//! Data flows one way: interfaces -> readers -> analyses -> the `pgtool` binary. Each reader
//! is a snapshot of racy kernel state: a page can change between two reads.

// println!/print! panic on a closed pipe or a full disk: write through the output layer or
// writeln! with an error instead.
#![deny(clippy::print_stdout)]

pub mod addr;
pub mod bytes;
pub mod cgroup;
pub mod digits;
pub mod error;
pub mod folio;
pub mod getopt;
pub mod heatmap;
pub mod hwpoison;
pub mod idle;
pub mod input;
pub mod iomem;
pub mod kernel;
pub mod kfence;
pub mod kmem;
pub mod kpage;
pub mod kpageflags;
pub mod leak;
pub mod map;
pub mod maps;
pub mod mem;
pub mod output;
pub mod page_owner;
pub mod pagemap;
pub mod pagetypes;
pub mod peek;
pub mod process;
pub mod rmap;
pub mod root;
pub mod safe_file;
pub mod slab;
pub mod snapshot;
pub mod text_input;
pub mod threads;
pub mod tracefs;
pub mod v2p;

pub use addr::{Pfn, PhysAddr, VirtAddr, page_size};
pub use error::{Error, Result};
pub use kpageflags::PageFlags;
pub use pagemap::PagemapEntry;
pub use root::SysRoot;
