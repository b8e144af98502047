//! Chunks of a walk done by persistent worker threads and merged in chunk order on the
//! calling thread, so a threaded walk prints and counts exactly what the single pass would.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};

/// Values in first-seen order with their page counts, and for each the place in the chunk's
/// output where its first page ended (so an error found on merging it can cut the output
/// where page-types would have stopped).
#[derive(Default)]
pub(crate) struct Tally {
    pub seen: Vec<(u64, u64, usize)>,
    last: usize,
}

impl Tally {
    /// Count `n` pages of `v`; `mark` is kept if `v` is new.
    pub fn add(&mut self, v: u64, n: u64, mark: usize) {
        if let Some(e) = self.seen.get_mut(self.last)
            && e.0 == v
        {
            e.1 += n;
            return;
        }
        match self.seen.iter().position(|e| e.0 == v) {
            Some(i) => {
                self.seen[i].1 += n;
                self.last = i;
            }
            None => {
                self.seen.push((v, n, mark));
                self.last = self.seen.len() - 1;
            }
        }
    }

    /// Forget everything, keeping the allocation.
    pub fn clear(&mut self) {
        self.seen.clear();
        self.last = 0;
    }
}

struct Shared<T> {
    next: u64,
    done: BTreeMap<u64, (T, bool)>,
    /// The walk is over (merged to its end, or a worker died): nobody claims more.
    stop: bool,
}

/// Ends the walk if a worker unwinds, so the merging thread does not wait for its chunk.
struct StopOnUnwind<'a, T> {
    state: &'a Mutex<Shared<T>>,
    cv: &'a Condvar,
}

impl<T> Drop for StopOnUnwind<'_, T> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.state.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
            self.cv.notify_all();
        }
    }
}

/// Run `work(state, k)` for chunks `k = 0..n`, one worker thread per state, and give each
/// result to `merge` on this thread in chunk order. `work` also says whether its chunk is the
/// last one needed (an end of file, an error): nothing after it is claimed or merged. At
/// most `window` finished chunks wait to be merged, so memory is bounded by the window, not
/// by the walk. `merge` returns false to end the walk. With one state, or when no thread can
/// be started, the chunks are done here, one after the other.
pub(crate) fn in_order<S: Send, T: Send>(
    states: Vec<S>,
    n: u64,
    window: usize,
    work: impl Fn(&mut S, u64) -> (T, bool) + Sync,
    mut merge: impl FnMut(T) -> bool,
) {
    let state = Mutex::new(Shared {
        next: 0,
        done: BTreeMap::new(),
        stop: false,
    });
    let cv = Condvar::new();
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    // each worker takes its state from its slot; a slot whose thread could not be started
    // keeps it, for this thread
    let slots: Vec<Mutex<Option<S>>> = states.into_iter().map(|s| Mutex::new(Some(s))).collect();
    let take = |i: usize| slots[i].lock().unwrap_or_else(|e| e.into_inner()).take();
    let mut spawned = 0;
    if slots.len() > 1 {
        std::thread::scope(|s| {
            for i in 0..slots.len() {
                let (work, cv, lock, take, state) = (&work, &cv, &lock, &take, &state);
                let r = std::thread::Builder::new().spawn_scoped(s, move || {
                    let _guard = StopOnUnwind { state, cv };
                    let Some(mut st) = take(i) else { return };
                    loop {
                        let k = {
                            let mut sh = lock();
                            while !sh.stop && sh.next < n && sh.done.len() >= window {
                                sh = cv.wait(sh).unwrap_or_else(|e| e.into_inner());
                            }
                            if sh.stop || sh.next >= n {
                                return;
                            }
                            sh.next += 1;
                            sh.next - 1
                        };
                        let (out, last) = work(&mut st, k);
                        let mut sh = lock();
                        if last {
                            sh.next = sh.next.max(n);
                        }
                        sh.done.insert(k, (out, last));
                        cv.notify_all();
                    }
                });
                if r.is_ok() {
                    spawned += 1;
                }
            }
            if spawned == 0 {
                return;
            }
            let mut merged = 0u64;
            let mut sh = lock();
            while merged < n && !sh.stop {
                let Some((out, last)) = sh.done.remove(&merged) else {
                    sh = cv.wait(sh).unwrap_or_else(|e| e.into_inner());
                    continue;
                };
                cv.notify_all();
                drop(sh);
                let more = merge(out);
                sh = lock();
                merged += 1;
                if !more || last {
                    break;
                }
            }
            sh.stop = true;
            cv.notify_all();
        });
    }
    if spawned > 0 {
        return;
    }
    let Some(mut st) = (0..slots.len()).find_map(take) else {
        return;
    };
    for k in 0..n {
        let (out, last) = work(&mut st, k);
        if !merge(out) || last {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Chunks finish out of order (later ones sooner); the merge sees them in order.
    fn run(workers: usize, n: u64, last_at: Option<u64>, stop_at: Option<u64>) -> Vec<u64> {
        let mut got = Vec::new();
        in_order(
            (0..workers).collect(),
            n,
            3,
            |_: &mut usize, k| {
                std::thread::sleep(std::time::Duration::from_micros((n - k) * 50));
                (k, Some(k) == last_at)
            },
            |k| {
                got.push(k);
                Some(k) != stop_at
            },
        );
        got
    }

    #[test]
    fn merges_in_chunk_order() {
        for w in [1, 2, 4] {
            assert_eq!(
                run(w, 40, None, None),
                (0..40).collect::<Vec<_>>(),
                "{w} workers"
            );
        }
    }

    #[test]
    fn a_last_chunk_or_a_refusal_ends_the_walk() {
        for w in [1, 3] {
            assert_eq!(run(w, 40, Some(7), None), (0..=7).collect::<Vec<_>>());
            assert_eq!(run(w, 40, None, Some(5)), (0..=5).collect::<Vec<_>>());
        }
    }

    #[test]
    fn no_more_than_the_window_waits() {
        let waiting = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        in_order(
            vec![(); 4],
            64,
            2,
            |_: &mut (), k| {
                // chunk 0 is slow: the others finish and must wait for it
                if k == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                let w = waiting.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(w, Ordering::SeqCst);
                (k, false)
            },
            |_| {
                waiting.fetch_sub(1, Ordering::SeqCst);
                true
            },
        );
        // finished and unmerged: at most the window, plus one per worker that claimed its
        // chunk before the window filled
        assert!(most.load(Ordering::SeqCst) <= 2 + 4, "{most:?}");
    }

    #[test]
    fn tally_keeps_first_seen_order_and_first_marks() {
        let mut t = Tally::default();
        for (v, mark) in [(5, 1), (7, 2), (5, 3), (9, 4), (7, 5)] {
            t.add(v, 1, mark);
        }
        assert_eq!(t.seen, vec![(5, 2, 1), (7, 2, 2), (9, 1, 4)]);
    }
}
