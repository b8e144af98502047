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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_wins_and_auto_is_capped() {
        assert_eq!(pick(3, 8), 3);
        assert!((1..=2).contains(&pick(0, 2)));
        assert!(available() >= 1);
    }
}
