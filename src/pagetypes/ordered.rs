//! Chunks of a walk done by persistent worker threads and merged in chunk order on the
//! calling thread, so a threaded walk prints and counts exactly what the single pass would.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard};

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

struct Shared<'c, T, C> {
    /// Says what the next chunk is (`None`: there is none), called in chunk order.
    chunks: &'c mut (dyn FnMut() -> Option<C> + Send),
    /// The next chunk's number.
    next: u64,
    /// Claims stop here: when `chunks` ran out, or one past a chunk that said it was the last.
    end: u64,
    /// Finished chunks: result, weight, last.
    done: BTreeMap<u64, (T, usize, bool)>,
    /// The weight of the finished chunks waiting.
    waiting: usize,
    /// The next chunk to merge.
    merged: u64,
    /// The walk is over (merged to its end, or a thread died): nobody claims more.
    stop: bool,
    /// The merging thread sleeps until chunk `merged` is done.
    merger_waits: bool,
    /// Workers sleeping until the window has room.
    room_waiters: usize,
}

impl<T, C> Shared<'_, T, C> {
    /// The next chunk and its number, if the walk goes on and the window has room.
    fn claim(&mut self, window: usize) -> Option<(u64, C)> {
        if self.stop || self.next >= self.end || self.waiting >= window {
            return None;
        }
        match (self.chunks)() {
            Some(c) => {
                self.next += 1;
                Some((self.next - 1, c))
            }
            None => {
                self.end = self.next;
                None
            }
        }
    }

    /// No chunk will be claimed any more.
    fn over(&self) -> bool {
        self.stop || self.next >= self.end
    }
}

struct Sync<'c, T, C> {
    state: Mutex<Shared<'c, T, C>>,
    /// Wakes the merging thread.
    merger: Condvar,
    /// Wakes workers waiting for room in the window.
    room: Condvar,
}

impl<'c, T, C> Sync<'c, T, C> {
    fn lock(&self) -> MutexGuard<'_, Shared<'c, T, C>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// File chunk `k`'s result. The merging thread is woken only when it sleeps waiting for
    /// this very chunk: a wake-up per chunk cost more than a sparse chunk's work (1,024 chunks
    /// of a 256 GiB mapping with 64 MiB touched: 1,700 context switches, twice the CPU).
    fn finish(&self, k: u64, (out, weight, last): (T, usize, bool)) {
        let mut sh = self.lock();
        if last {
            sh.end = sh.end.min(k + 1);
        }
        sh.waiting += weight;
        sh.done.insert(k, (out, weight, last));
        if sh.merger_waits && k == sh.merged {
            self.merger.notify_one();
        }
    }

    fn stop(&self) {
        self.lock().stop = true;
        self.merger.notify_all();
        self.room.notify_all();
    }
}

/// Ends the walk if a thread unwinds, so no other waits for it forever.
struct StopOnUnwind<'a, 'c, T, C>(&'a Sync<'c, T, C>);

impl<T, C> Drop for StopOnUnwind<'_, '_, T, C> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stop();
        }
    }
}

/// Run `work(state, chunk)` for the chunks `chunks` gives, one after the other, and give each
/// result to `merge` on this thread in chunk order (`chunks` is called in that order, so it
/// may size each chunk from what it knows so far). This thread works with the first state and
/// merges whenever the next chunk in order is done; a thread is started for each other state.
/// `work` returns its result, the result's weight (what it holds while it waits: 1, or its
/// size) and whether its chunk is the last one needed (an end of file, an error: nothing
/// after it is claimed or merged). No chunk is claimed while the finished ones waiting weigh
/// `window` or more, so memory is bounded by the window, not by the walk. `merge` returns false
/// to end the walk. A state whose thread cannot be started is left unused: this thread does
/// the work.
pub(crate) fn in_order<S: Send, C: Send, T: Send>(
    states: Vec<S>,
    mut chunks: impl FnMut() -> Option<C> + Send,
    window: usize,
    work: impl Fn(&mut S, C) -> (T, usize, bool) + std::marker::Sync,
    mut merge: impl FnMut(T) -> bool,
) {
    let mut states = states.into_iter();
    let Some(mut mine) = states.next() else {
        return;
    };
    let window = window.max(1);
    let sync = Sync {
        state: Mutex::new(Shared {
            chunks: &mut chunks,
            next: 0,
            end: u64::MAX,
            waiting: 0,
            done: BTreeMap::new(),
            merged: 0,
            stop: false,
            merger_waits: false,
            room_waiters: 0,
        }),
        merger: Condvar::new(),
        room: Condvar::new(),
    };
    std::thread::scope(|s| {
        for mut st in states {
            let (sync, work) = (&sync, &work);
            // a thread that cannot be started leaves its share to the others
            let _ = std::thread::Builder::new().spawn_scoped(s, move || {
                let _guard = StopOnUnwind(sync);
                loop {
                    let (k, c) = {
                        let mut sh = sync.lock();
                        loop {
                            if let Some(claimed) = sh.claim(window) {
                                break claimed;
                            }
                            if sh.over() {
                                return;
                            }
                            sh.room_waiters += 1;
                            sh = sync.room.wait(sh).unwrap_or_else(|e| e.into_inner());
                            sh.room_waiters -= 1;
                        }
                    };
                    sync.finish(k, work(&mut st, c));
                }
            });
        }
        let _guard = StopOnUnwind(&sync);
        let mut sh = sync.lock();
        loop {
            let k = sh.merged;
            if let Some((out, weight, last)) = sh.done.remove(&k) {
                sh.merged += 1;
                sh.waiting -= weight;
                if sh.room_waiters > 0 {
                    sync.room.notify_all();
                }
                drop(sh);
                if !merge(out) || last {
                    break;
                }
                sh = sync.lock();
                continue;
            }
            if sh.stop || k >= sh.end {
                drop(sh);
                break;
            }
            // the next chunk is not done: work on one rather than wait, while the window lets
            if let Some((k, c)) = sh.claim(window) {
                drop(sh);
                sync.finish(k, work(&mut mine, c));
                sh = sync.lock();
                continue;
            }
            if k >= sh.end {
                drop(sh);
                break;
            }
            sh.merger_waits = true;
            sh = sync.merger.wait(sh).unwrap_or_else(|e| e.into_inner());
            sh.merger_waits = false;
        }
        sync.stop();
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Chunks finish out of order (later ones sooner); the merge sees them in order.
    fn run(workers: usize, n: u64, last_at: Option<u64>, stop_at: Option<u64>) -> Vec<u64> {
        let mut got = Vec::new();
        let mut next = 0;
        in_order(
            (0..workers).collect(),
            || (next < n).then(|| (next, next += 1).0),
            3,
            |_: &mut usize, k| {
                std::thread::sleep(std::time::Duration::from_micros((n - k) * 50));
                (k, 1, Some(k) == last_at)
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
        let mut next = 0u64;
        in_order(
            vec![(); 4],
            || (next < 64).then(|| (next, next += 1).0),
            2,
            |_: &mut (), k| {
                // chunk 0 is slow: the others finish and must wait for it
                if k == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                let w = waiting.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(w, Ordering::SeqCst);
                (k, 1, false)
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
