//! `pgtool ktask`: a process's task_struct in kernel memory.

use crate::Global;
use crate::output::FormatArgs;
use pgtool::Error;
use pgtool::kernel::{Btf, Kallsyms, Kcore, view};
use pgtool::output::Sink;

/// Find a PID's task_struct by walking init_task's task list through /proc/kcore.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Needs root, /proc/kcore (CONFIG_PROC_KCORE), BTF (CONFIG_DEBUG_INFO_BTF) and kernel data symbols
in /proc/kallsyms (init_task). PIDs are the kernel's global ones (as in /proc of the initial PID
namespace); threads are found through their leader's thread list.

Fields (JSON/CSV, the same): pid, comm, task_addr, mm_addr (null for kernel threads), pgd_addr
(mm->pgd), fields (the --field values by name; fields_NAME in CSV and tables).

Exit status: 0 found; 1 no such task; 2 usage or system error.")]
pub struct Args {
    /// The PID (`self` for pgtool itself; 0 for init_task, CPU 0's idle task).
    #[arg(value_name = "PID")]
    pub pid: String,
    /// Also read this task_struct field (a path such as se.vruntime); repeatable.
    #[arg(long = "field", value_name = "NAME")]
    pub fields: Vec<String>,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// Run `pgtool ktask`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    let root = g.sysroot();
    let pid = if args.pid.trim() == "0" {
        0
    } else {
        pgtool::input::parse_pid(&args.pid, &root)?
    };
    let btf = Btf::load(&root)?;
    for f in &args.fields {
        btf.field("task_struct", f)?;
    }
    let kcore = Kcore::open(&root)?;
    let syms = Kallsyms::load(&root)?;
    let row = view::task(&btf, &kcore, &syms, pid, &args.fields)?;
    let mut sink = Sink::stdout(args.format.format());
    sink.write(&row)?;
    sink.finish()?;
    Ok(0)
}
