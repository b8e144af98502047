//! The `pgtool` command. Thin: parse arguments, call the library, print.
//!
//! Also a multi-call binary: invoked as `page-types` it is a drop-in for the kernel's
//! tools/mm/page-types, and as `page_owner_sort` for tools/mm/page_owner_sort.

// println!/print! panic on a closed pipe or a full disk: write through the output layer or
// writeln! with an error instead.
#![deny(clippy::print_stdout)]

mod cgroup;
mod generate;
mod heatmap;
mod hwpoison;
mod idle;
mod kcache;
mod kfence;
mod kstruct;
mod ksym;
mod ktask;
mod leak;
mod map;
mod mem;
mod output;
mod page;
mod page_owner;
mod peek;
mod slab;
mod snapshot;
mod types;
mod v2p;
mod who;

use clap::{Parser, Subcommand};
use pgtool::{Error, SysRoot};
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Show Linux memory page by page: virtual-to-physical translation, page flags, owners,
/// working sets, memcgs.
#[derive(Parser, Debug)]
#[command(
    name = "pgtool",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Exit status: 0 success; 1 something asked for was not found or not mapped; \
2 usage or system error."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand takes.
#[derive(clap::Args, Debug, Clone)]
pub struct Global {
    /// Read a snapshot directory (holding proc/, sys/, debugfs/, as `pgtool snapshot` saves)
    /// instead of the live system.
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

impl Global {
    /// The SysRoot these options select.
    pub fn sysroot(&self) -> SysRoot {
        SysRoot::from_option(self.root.as_deref())
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Translate virtual addresses of a process to physical pages, with every fact about each page.
    V2p(v2p::Args),
    /// page-types reimagined: summarise, list and filter pages by flags (same options and output).
    Types(types::Args),
    /// Reverse lookup: which processes map these PFNs.
    Who(who::Args),
    /// memcg inode <-> cgroup path, and resident pages per memcg.
    Cgroup(cgroup::Args),
    /// Idle page tracking: mark pages idle, read them back, sample a process's working set.
    Idle(idle::Args),
    /// Inject or undo memory errors (hwpoison) on pages: guarded, needs --yes.
    Hwpoison(hwpoison::Args),
    /// Save what the readers need from this host into a directory, for `--root` elsewhere.
    Snapshot(snapshot::Args),
    /// page_owner reports: top allocation stacks, joined with what the pages are now.
    PageOwner(page_owner::Args),
    /// Sample /proc/slabinfo: caches by size and growth, leak suspects.
    Slab(slab::Args),
    /// KFENCE objects grouped by allocation stack.
    Kfence(kfence::Args),
    /// Is memory leaking: where it is, what grows, and (--trace) which call site allocates it.
    Leak(leak::Args),
    /// Read a process's memory at an address, as a hexdump, raw bytes or JSON.
    Peek(peek::Args),
    /// Physical memory as a picture: one cell per pageblock, by page class or memcg.
    Map(map::Args),
    /// Who uses the memory: RSS, PSS, USS, swap per process, mapping, library, memcg, user.
    Mem(mem::Args),
    /// A kernel struct's layout from BTF (like pahole), or its values at a kernel address.
    Kstruct(kstruct::Args),
    /// Kernel symbols: address to symbol+offset, name to address, kernel base and KASLR offset.
    Ksym(ksym::Args),
    /// A process's task_struct in kernel memory: its address, mm, pgd, comm and any field.
    Ktask(ktask::Args),
    /// A slab cache's kmem_cache, CPU and node slab lists and walked free lists.
    Kcache(kcache::Args),
    /// The kernel's struct page of each PFN: flags, zone, counts, mapping, memcg, slab cache.
    Page(page::Args),
    /// Write man pages or shell completions.
    #[command(hide = true)]
    Generate(generate::Args),
}

fn run(cli: Cli) -> Result<i32, Error> {
    let g = &cli.global;
    match cli.command {
        Command::V2p(a) => v2p::run(a, g),
        Command::Types(a) => types::run(a, g),
        Command::Who(a) => who::run(a, g),
        Command::Cgroup(a) => cgroup::run(a, g),
        Command::Idle(a) => idle::run(a, g),
        Command::Hwpoison(a) => hwpoison::run(a, g),
        Command::Snapshot(a) => snapshot::run(a, g),
        Command::PageOwner(a) => page_owner::run(a, g),
        Command::Slab(a) => slab::run(a, g),
        Command::Kfence(a) => kfence::run(a, g),
        Command::Leak(a) => leak::run(a, g),
        Command::Peek(a) => peek::run(a, g),
        Command::Map(a) => map::run(a, g),
        Command::Mem(a) => mem::run(a, g),
        Command::Kstruct(a) => kstruct::run(a, g),
        Command::Ksym(a) => ksym::run(a, g),
        Command::Ktask(a) => ktask::run(a, g),
        Command::Kcache(a) => kcache::run(a, g),
        Command::Page(a) => page::run(a, g),
        Command::Generate(a) => generate::run(a),
    }
}

/// A write to a closed pipe (`pgtool ... | head`) ends the program quietly with success.
fn is_broken_pipe(e: &Error) -> bool {
    e.is_broken_pipe()
}

fn main() -> ExitCode {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let code = match name.as_str() {
        "page-types" => types::page_types_main(std::env::args_os().collect()),
        "page_owner_sort" => page_owner::page_owner_sort_main(std::env::args_os().collect()),
        _ => match run(Cli::parse()) {
            Ok(code) => code,
            Err(e) if is_broken_pipe(&e) => 0,
            Err(e) => {
                let _ = io::stdout().flush();
                eprintln!("pgtool: {e}");
                e.exit_code()
            }
        },
    };
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}
