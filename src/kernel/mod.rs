//! Kernel memory from user space without debuginfo: the running kernel's types (BTF), its
//! memory (`/proc/kcore`) and its symbols (`/proc/kallsyms`), each read through [`SysRoot`](crate::SysRoot).
//!
//! # API
//! ```no_run
//! use pgtool::kernel::{Btf, Kallsyms, Kcore};
//! use pgtool::SysRoot;
//! let root = SysRoot::live();
//! // Types: /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF).
//! let btf = Btf::load(&root)?;
//! let rows = btf.struct_layout("page")?;          // Vec<Field>: path, bit_offset, size, ...
//! let f = btf.field("task_struct", "mm")?;        // Field { bit_offset, size, type_name, ty }
//! let off = btf.field("mm_struct", "pgd")?.offset(); // bytes
//! // Memory: /proc/kcore (CONFIG_PROC_KCORE, root).
//! let kcore = Kcore::open(&root)?;
//! let mut buf = [0u8; 16];
//! // kcore.read_virt(addr, &mut buf)?; kcore.read_u64(addr)?; kcore.read_phys(phys, &mut buf)?;
//! // kcore.phys_to_virt(phys) -> Option<u64> (direct map); kcore.virt_to_phys(addr)
//! // Symbols: /proc/kallsyms (root; zero addresses are an error naming kptr_restrict).
//! let syms = Kallsyms::load(&root)?;
//! let init = syms.address_of("init_task");        // Option<u64>; "module:name" also works
//! if let Some(loc) = syms.lookup(0xffffffff81000000) {
//!     let _ = loc.to_string();                    // "startup_64+0x0/0x100", with " [module]"
//! }
//! let _ = (syms.kernel_base(), syms.kaslr_offset()); // _text, _text - 0xffffffff81000000
//! # let _ = (rows, f, off, kcore, buf, init);
//! # Ok::<(), pgtool::Error>(())
//! ```
//!
//! - [`Btf`]: [`Btf::find_struct`]/[`Btf::struct_id`] (a struct or union by name, typedefs
//!   followed), [`Btf::layout`] (pahole's view, anonymous members expanded, named ones too
//!   with `expand`), [`Btf::field_of`] (a dotted path from a type id), [`Btf::kind`],
//!   [`Btf::size_of`], [`Btf::type_name`], [`Btf::resolve`] (typedefs/qualifiers looked
//!   through).
//! - [`Kcore`]: reads are bounded ([`kcore::MAX_READ`]) `pread`s; an unmapped address is
//!   [`Error::NotFound`](crate::Error::NotFound) (exit 1) naming it.
//! - [`Kallsyms`]: [`Kallsyms::lookup`] gives a [`Location`] printed as the kernel's `%pS`
//!   (`name+0xoff/0xsize [module]`); [`Kallsyms::in_kernel_image`] (`_text`..`_end`).
//! - Missing files are [`Error::Unsupported`](crate::Error::Unsupported) naming the config
//!   (CONFIG_PROC_KCORE, CONFIG_DEBUG_INFO_BTF, CONFIG_KALLSYMS); permission errors say
//!   "needs root".
//! - [`read_struct`]: one struct's bytes at a kernel address, and [`find_task`]: a PID's
//!   task_struct by walking `init_task.tasks` (leaders, then each leader's threads).
//! - [`view`]: the records of `kstruct` ([`view::layout`], [`view::values`]: one bounded read
//!   of the type's span, each field decoded: integers, bitfields, pointers with their symbol,
//!   char arrays), `ksym` ([`view::ksym`], [`view::base`]) and `ktask` ([`view::task`]).

pub mod btf;
pub mod kallsyms;
pub mod kcore;
mod task;
pub mod view;

pub use btf::{Btf, Field, Kind, TypeId};
pub use kallsyms::{Kallsyms, Location, Symbol};
pub use kcore::Kcore;
pub use task::{MAX_TASKS, TaskRef, find_task, read_struct};
