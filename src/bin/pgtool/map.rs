//! `pgtool map`: physical memory as a picture, one cell per pageblock.

use crate::Global;
use crate::output::FormatArgs;
use pgtool::Error;
use pgtool::map::render::{self, Totals};
use pgtool::map::{Layout, ScanOptions, scan};
use pgtool::output::picture::{Colors, Grid, Painter, Png, Svg, Terminal};
use pgtool::output::{Format, Sink};
use std::path::{Path, PathBuf};

/// Arguments of `pgtool map`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
One cell per pageblock (2 MiB on x86-64; the order comes from /proc/pagetypeinfo), rows in \
physical-address order, one section per System RAM range; holes (reserved, ACPI, PCI) are \
skipped and named. A block shows its worst page for compaction, from least to most in the way: \
free, noflags (count 0, no flags, outside a buddy run: a per-CPU free list or memory the \
kernel never initialised), file, anon, thp, hugetlb, pgtable, slab, kernel, reserved, hwpoison. \
The totals count, per zone, the blocks that are entirely free and those free but for unmovable \
pages (no movable page, at least one free and one unmovable page): compaction cannot turn those \
into free 2 MiB blocks.

Output: a picture on the terminal (Unicode half blocks; 24-bit colour with COLORTERM=truecolor, \
else 256 colours; one letter per block with NO_COLOR or --color never), -o FILE.svg (labels, \
legend, a hover title per block) or -o FILE.png; --json/--csv list the blocks (start_pfn, \
phys_addr, node, zone, class, pages, <class>_pages..., memcg_ino) and --totals the per-zone \
totals instead. Files are written atomically and never through a symbolic link.

Needs root (/proc/kpageflags, /proc/iomem addresses). Exit status: 0 ok; 2 usage or system error.")]
pub struct Args {
    /// Write the picture to FILE.svg or FILE.png instead of the terminal.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// What the colours show.
    #[arg(long, value_enum, default_value_t = By::Class)]
    pub by: By,
    /// Terminal colours.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,
    /// Blocks per row (default: fit the terminal; 64 in files).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub cols: Option<u64>,
    /// With --json/--csv: the per-zone totals instead of one record per block.
    #[arg(long)]
    pub totals: bool,
    /// Also write the per-zone totals to FILE as a Prometheus textfile (node_exporter's
    /// textfile collector): pgtool_map_blocks{node,zone,class}, pgtool_map_free_blocks,
    /// pgtool_map_unmovable_blocked_blocks, pgtool_map_free_pages{node,zone}.
    #[arg(long, value_name = "FILE")]
    pub prometheus: Option<PathBuf>,
    /// Worker threads (0: the CPUs available).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// What the colours show.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    /// The block's worst page class.
    Class,
    /// The memcg most of the block's charged pages belong to (kpagecgroup).
    Memcg,
}

/// Terminal colours.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorArg {
    /// Colour on a terminal unless NO_COLOR is set; letters otherwise.
    Auto,
    /// Letters only.
    Never,
    /// xterm 256 colours.
    #[value(name = "256")]
    Ansi256,
    /// 24-bit colour.
    Truecolor,
}

fn colors(arg: ColorArg) -> Colors {
    use std::io::IsTerminal;
    match arg {
        ColorArg::Never => Colors::None,
        ColorArg::Ansi256 => Colors::Ansi256,
        ColorArg::Truecolor => Colors::TrueColor,
        ColorArg::Auto if std::io::stdout().is_terminal() => Colors::from_env(),
        ColorArg::Auto => Colors::None,
    }
}

enum Target {
    Terminal,
    Svg(PathBuf),
    Png(PathBuf),
}

fn target(output: Option<&Path>) -> Result<Target, Error> {
    let Some(p) = output else {
        return Ok(Target::Terminal);
    };
    match p
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("svg") => Ok(Target::Svg(p.to_path_buf())),
        Some("png") => Ok(Target::Png(p.to_path_buf())),
        _ => Err(Error::Usage(format!(
            "-o {}: the file name must end in .svg or .png",
            pgtool::input::quote(&p.to_string_lossy())
        ))),
    }
}

fn write_file(path: PathBuf) -> impl FnOnce(&[u8]) -> Result<(), Error> {
    move |bytes| pgtool::safe_file::write_atomic(&path, bytes, pgtool::safe_file::PUBLIC_FILE)
}

fn painter(target: &Target, grid: Grid, color: ColorArg) -> Result<Box<dyn Painter>, Error> {
    Ok(match target {
        Target::Terminal => Box::new(Terminal::new(
            std::io::BufWriter::new(std::io::stdout().lock()),
            grid,
            colors(color),
        )?),
        Target::Svg(p) => Box::new(Svg::new(grid, write_file(p.clone()))),
        Target::Png(p) => Box::new(Png::new(grid, write_file(p.clone()))),
    })
}

fn write_metrics(args: &Args, totals: &Totals, layout: &Layout) -> Result<(), Error> {
    match &args.prometheus {
        Some(p) => render::metrics(totals, layout.block_bytes())?.write_textfile(p),
        None => Ok(()),
    }
}

/// Run `pgtool map`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    let root = g.sysroot();
    let format = args.format.format();
    let target = target(args.output.as_deref())?;
    if format != Format::Table && !matches!(target, Target::Terminal) {
        return Err(Error::Usage(
            "give either -o FILE or --json/--csv, not both".into(),
        ));
    }
    if args.totals && format == Format::Table {
        return Err(Error::Usage(
            "--totals lists the totals with --json or --csv".into(),
        ));
    }
    let layout = Layout::read(&root)?;
    let opts = ScanOptions {
        memcg: args.by == By::Memcg,
        threads: args.threads,
    };
    if format != Format::Table {
        let mut sink = Sink::stdout(format);
        let mut totals = Totals::default();
        scan(&root, &layout, opts, |b| {
            totals.add(b);
            if args.totals { Ok(()) } else { sink.write(b) }
        })?;
        if args.totals {
            for z in totals.zones.iter().chain(std::iter::once(&totals.all)) {
                sink.write(z)?;
            }
        }
        sink.finish()?;
        write_metrics(&args, &totals, &layout)?;
        return Ok(0);
    }
    let cols = args.cols.unwrap_or(match target {
        Target::Terminal => {
            let w = pgtool::output::terminal_width() as u64;
            // 14 for the address, then a power of two of blocks.
            let room = w.saturating_sub(16).max(8);
            1 << (63 - room.leading_zeros())
        }
        _ => 64,
    });
    let title = format!(
        "Physical memory, one cell per {} block{}",
        pgtool::output::human_bytes(layout.block_bytes()),
        if args.by == By::Memcg {
            ", coloured by memcg"
        } else {
            ""
        }
    );
    let (totals, painter) = match args.by {
        By::Class => {
            let grid = render::grid(&root, &layout, cols, render::class_keys(), title);
            let mut p = painter(&target, grid, args.color)?;
            let t = render::draw_by_class(&root, &layout, opts, p.as_mut())?;
            (t, p)
        }
        By::Memcg => render::draw_by_memcg(&root, &layout, opts, |keys| {
            painter(
                &target,
                render::grid(&root, &layout, cols, keys, title),
                args.color,
            )
        })?,
    };
    painter.finish(&totals.lines(layout.block_bytes()))?;
    write_metrics(&args, &totals, &layout)?;
    if let Target::Svg(p) | Target::Png(p) = &target {
        eprintln!("pgtool: wrote {}", p.display());
    }
    Ok(0)
}
