//! The PFN walk in one thread, page-types' way: 64Ki-page batches of kpageflags (with
//! kpagecgroup and kpagecount beside it), every page through the pipeline; a summary without
//! listing or actions counts runs of equal words at once.

use super::config::Stop;
use super::pipe::Pipe;
use super::read::Sides;

/// page-types' batch: PFNs per read, and the unit its voffsets are counted in.
pub const BATCH: u64 = 64 << 10;
/// PFNs per unit of work in the threaded walk (a multiple of [`BATCH`]).
pub const CHUNK: u64 = 4 * BATCH;

/// Walk PFNs `from..to` of the range that starts at `origin` (its 64Ki batches, and so the
/// voffsets page-types passes along, are counted from `origin`). Returns false at the end of
/// the file.
pub(crate) fn walk(
    sides: &Sides,
    pipe: &mut Pipe<'_>,
    origin: u64,
    from: u64,
    to: u64,
) -> Result<bool, Stop> {
    let mut buf = vec![0u64; BATCH as usize];
    let mut cgi = vec![
        0u64;
        if sides.cgroup.is_some() {
            BATCH as usize
        } else {
            1
        }
    ];
    let mut cnt = vec![
        0u64;
        if sides.count.is_some() {
            BATCH as usize
        } else {
            1
        }
    ];
    let mut index = from;
    let fast = pipe.o.list == 0 && !pipe.actions.any();
    while index < to {
        let bstart = origin.wrapping_add((index.wrapping_sub(origin) / BATCH) * BATCH);
        let bend = bstart.wrapping_add(BATCH);
        let batch = (to - index).min(bend.wrapping_sub(index)).min(BATCH) as usize;
        let pages = sides.flags.read(&mut buf[..batch], index)?;
        if pages == 0 {
            return Ok(false);
        }
        if let Some(cg) = &sides.cgroup
            && cg.read(&mut cgi[..pages], index)? != pages
        {
            return Err(Stop::Fatal(
                b"kpagecgroup returned fewer pages than expected".to_vec(),
            ));
        }
        if let Some(ct) = &sides.count
            && ct.read(&mut cnt[..pages], index)? != pages
        {
            return Err(Stop::Fatal(
                b"kpagecount returned fewer pages than expected".to_vec(),
            ));
        }
        let voff = origin.wrapping_add(index - bstart);
        if fast {
            let cg = sides.cgroup.is_some().then(|| &cgi[..pages]);
            tally(pipe, &buf[..pages], cg)?;
        } else {
            for i in 0..pages {
                let cg = if sides.cgroup.is_some() { cgi[i] } else { 0 };
                let ct = if sides.count.is_some() { cnt[i] } else { 0 };
                pipe.add_page(
                    voff.wrapping_add(i as u64),
                    index + i as u64,
                    buf[i],
                    cg,
                    ct,
                    0,
                )?;
            }
        }
        index += pages as u64;
        pipe.tick(index - origin);
        if pages < batch {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Count runs of equal words at once (summary only: no listing, no actions).
fn tally(pipe: &mut Pipe<'_>, words: &[u64], cgroups: Option<&[u64]>) -> Result<(), Stop> {
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let cg = cgroups.map_or(0, |c| c[i]);
        let mut j = i + 1;
        while j < words.len() && words[j] == w && cgroups.is_none_or(|c| c[j] == cg) {
            j += 1;
        }
        let f = pipe.o.transform(w, 0);
        if pipe.o.bits_ok(f) && (pipe.o.cgroup == 0 || cg == pipe.o.cgroup) {
            pipe.count(f, (j - i) as u64)?;
        }
        i = j;
    }
    Ok(())
}
