//! The human table: aligned columns, fitted to a width, streamed. Column widths are decided on
//! the first batch of rows ([`BATCH`]); later rows reuse them, so memory stays bounded by the
//! batch whatever the number of rows.

use super::flat::Leaf;
use super::{Record, stdout_error};
use crate::error::Result;
use std::io::Write;

/// Rows buffered to decide the column widths.
const BATCH: usize = 256;
/// Width used when stdout is not a terminal and `COLUMNS` is not set.
pub const DEFAULT_WIDTH: usize = 100;
/// Narrowest a text column is squeezed to before the row is allowed to overflow.
const MIN_TEXT: usize = 8;

/// The width of the terminal on stdout, `$COLUMNS`, or [`DEFAULT_WIDTH`].
pub fn terminal_width() -> usize {
    if let Some(c) = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        && c >= 20
    {
        return c;
    }
    // SAFETY: TIOCGWINSZ fills a winsize struct; ws is a valid, writable one.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    if r == 0 && ws.ws_col >= 20 {
        usize::from(ws.ws_col)
    } else {
        DEFAULT_WIDTH
    }
}

pub(super) struct Table {
    width: usize,
    /// Column keys shown, decided by the first row.
    keys: Option<Vec<String>>,
    group: Option<String>,
    numeric: Vec<bool>,
    widths: Option<Vec<usize>>,
    pending: Vec<(Option<String>, Vec<String>)>,
    last_group: Option<String>,
}

impl Table {
    /// The width rows and notes are fitted to.
    pub(super) fn width(&self) -> usize {
        self.width
    }

    pub(super) fn new(width: usize) -> Table {
        Table {
            width,
            keys: None,
            group: None,
            numeric: Vec::new(),
            widths: None,
            pending: Vec::new(),
            last_group: None,
        }
    }

    pub(super) fn push<R: Record, W: Write>(&mut self, rec: &R, out: &mut W) -> Result<()> {
        let in_group =
            |k: &str, g: &str| k == g || k.strip_prefix(g).is_some_and(|r| r.starts_with('_'));
        if self.keys.is_none() {
            let fields = super::fields(rec, true)?;
            let group = R::TABLE_GROUP.map(str::to_string);
            let keys: Vec<String> = if R::TABLE_COLUMNS.is_empty() {
                fields
                    .iter()
                    .map(|f| f.key.clone())
                    .filter(|k| group.as_deref().is_none_or(|g| !in_group(k, g)))
                    .collect()
            } else {
                R::TABLE_COLUMNS.iter().map(|s| s.to_string()).collect()
            };
            self.numeric = vec![true; keys.len()];
            self.keys = Some(keys);
            self.group = group;
        }
        // Render only the leaves the table shows (and the group's), straight into their cells.
        let keys = self.keys.take().unwrap_or_default();
        let group = self.group.take();
        let mut cells = vec![String::new(); keys.len()];
        let mut seen = vec![false; keys.len()];
        let mut group_text = group.as_ref().map(|_| String::new());
        let mut next = 0usize;
        let numeric = &mut self.numeric;
        super::flat::walk(rec, &mut |k, leaf| {
            if let (Some(g), Some(t)) = (group.as_deref(), group_text.as_mut())
                && in_group(k, g)
            {
                let mut one = String::new();
                super::render(&mut one, k, &leaf, true);
                if !one.is_empty() && one != "-" {
                    if !t.is_empty() {
                        t.push(' ');
                    }
                    t.push_str(&one);
                }
                return;
            }
            // Leaves usually come in the columns' order: look at the next column first.
            let i = match keys.get(next) {
                Some(c) if c == k => next,
                _ => match keys.iter().position(|c| c == k) {
                    Some(i) => i,
                    None => return,
                },
            };
            next = i + 1;
            super::render(&mut cells[i], k, &leaf, true);
            seen[i] = true;
            if !matches!(
                leaf,
                Leaf::Null | Leaf::U64(_) | Leaf::I64(_) | Leaf::F64(_)
            ) {
                numeric[i] = false;
            }
        })
        .map_err(|e| stdout_error(std::io::Error::other(e)))?;
        for (c, s) in cells.iter_mut().zip(&seen) {
            if !s {
                c.push('-');
            }
        }
        self.keys = Some(keys);
        self.group = group;
        self.pending.push((group_text, cells));
        if self.widths.is_some() || self.pending.len() >= BATCH {
            self.flush(out)?;
        }
        Ok(())
    }

    fn decide_widths(&mut self) {
        let keys = self.keys.as_deref().unwrap_or_default();
        let mut w: Vec<usize> = keys.iter().map(|k| k.chars().count()).collect();
        for (_, cells) in &self.pending {
            for (i, c) in cells.iter().enumerate() {
                w[i] = w[i].max(c.chars().count());
            }
        }
        // Squeeze the widest text columns until the row fits (numbers are never cut).
        let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
        while total(&w) > self.width {
            let widest = (0..w.len())
                .filter(|&i| !self.numeric[i] && w[i] > MIN_TEXT)
                .max_by_key(|&i| w[i]);
            let Some(i) = widest else { break };
            let over = total(&w) - self.width;
            w[i] = w[i].saturating_sub(over).max(MIN_TEXT);
        }
        self.widths = Some(w);
    }

    pub(super) fn flush<W: Write>(&mut self, out: &mut W) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let first = self.widths.is_none();
        if first {
            self.decide_widths();
        }
        let widths = self.widths.clone().unwrap_or_default();
        let keys = self.keys.clone().unwrap_or_default();
        let mut text = String::new();
        let header = self.line(&widths, keys.iter().map(String::as_str), true);
        if first && self.group.is_none() {
            text.push_str(&header);
        }
        for (g, cells) in std::mem::take(&mut self.pending) {
            if g.is_some() && g != self.last_group {
                if self.last_group.is_some() || !first {
                    text.push('\n');
                }
                let name = self.group.clone().unwrap_or_default();
                let line = format!("{name}: {}", g.clone().unwrap_or_default());
                text.push_str(&truncate(&line, self.width));
                text.push('\n');
                text.push_str(&header);
                self.last_group = g;
            }
            text.push_str(&self.line(&widths, cells.iter().map(String::as_str), false));
        }
        out.write_all(text.as_bytes()).map_err(stdout_error)
    }

    fn line<'a>(
        &self,
        widths: &[usize],
        cells: impl Iterator<Item = &'a str>,
        header: bool,
    ) -> String {
        let mut s = String::new();
        for (i, c) in cells.enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            let c = truncate(c, w);
            let pad = w.saturating_sub(c.chars().count());
            if i > 0 {
                s.push_str("  ");
            }
            if self.numeric.get(i).copied().unwrap_or(false) && !header {
                s.push_str(&" ".repeat(pad));
                s.push_str(&c);
            } else {
                s.push_str(&c);
                s.push_str(&" ".repeat(pad));
            }
        }
        let mut s = s.trim_end().to_string();
        s.push('\n');
        s
    }
}

/// `s` cut to `w` characters, the last one replaced by `…` when cut.
fn truncate(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_string();
    }
    let mut t: String = s.chars().take(w.saturating_sub(1)).collect();
    t.push('…');
    t
}
