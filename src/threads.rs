//! The one answer to "how many worker threads": the CPUs this process may run on.

/// The CPUs this process may run on: `std::thread::available_parallelism`, which on Linux
/// honours `sched_getaffinity` (taskset, cpusets) and a cgroup v2 `cpu.max` quota, so a
/// pinned or throttled pgtool does not start more readers than it can run. 1 when unknown.
/// Asked once per run: each call reads `/proc/self/cgroup` and the cgroup's CPU quota files.
pub fn available() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Threads for a walk: `requested` when it is not 0, else [`available`] capped at `cap`
/// (readers of kernel files gain little past a few threads).
pub fn pick(requested: usize, cap: usize) -> usize {
    match requested {
        0 => available().min(cap.max(1)),
        n => n,
    }
}

/// `f` over `items` cut into contiguous parts of at least `min` items, one part per thread
/// (at most [`available`] capped at `cap`), run at once; the results in the parts' order. Few
/// items run here, in this thread: a spawn costs more than it saves. A part whose thread
/// cannot be started (a thread or pid limit) runs here too.
pub fn split_map<T: Sync, R: Send>(
    items: &[T],
    min: usize,
    cap: usize,
    f: impl Fn(&[T]) -> R + Sync,
) -> Vec<R> {
    let parts = pick(0, cap).min(items.len() / min.max(1)).max(1);
    if parts == 1 {
        return vec![f(items)];
    }
    let size = items.len().div_ceil(parts);
    std::thread::scope(|s| {
        let f = &f;
        let mut chunks = items.chunks(size);
        let first = chunks.next().unwrap_or_default();
        let rest: Vec<_> = chunks
            .map(|c| {
                let spawned = std::thread::Builder::new().spawn_scoped(s, move || f(c));
                (c, spawned.ok())
            })
            .collect();
        let mut out = vec![f(first)];
        out.extend(rest.into_iter().map(|(c, h)| match h {
            // A worker that panicked re-raises here, in the caller's thread.
            Some(h) => h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
            None => f(c),
        }));
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_map_keeps_order_and_covers_every_item() {
        let items: Vec<u32> = (0..1000).collect();
        for min in [1, 7, 300, 2000] {
            let parts = split_map(&items, min, 8, |c| c.to_vec());
            assert!(parts.len() <= available().clamp(1, 8), "min {min}");
            assert!(min > 1000 || parts.len() == available().min(8).min(1000 / min).max(1));
            assert_eq!(parts.concat(), items, "min {min}");
        }
        assert_eq!(split_map(&[] as &[u32], 10, 8, |c| c.len()), vec![0]);
    }

    #[test]
    fn explicit_wins_and_auto_is_capped() {
        assert_eq!(pick(3, 8), 3);
        assert!((1..=2).contains(&pick(0, 2)));
        assert!(available() >= 1);
    }
}
