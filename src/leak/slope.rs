//! How fast a series grows, robustly: the Theil-Sen slope (the median of the slopes between
//! pairs of samples), so one outlier sample (a burst of page cache, a reclaim) does not make or
//! hide a trend the way last-minus-first does, and Kendall's tau (pairs rising minus pairs
//! falling, over all pairs) for how consistently it grows.

/// Above this many samples only the pairs half the series apart are used (O(n) instead of
/// O(n^2); still a median over n/2 slopes spanning half the window each).
pub const ALL_PAIRS_MAX: usize = 300;

/// The trend of one series.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Trend {
    /// Theil-Sen slope, units per second.
    pub slope: f64,
    /// Kendall's tau in [-1, 1]: 1 when every later sample is above every earlier one.
    pub tau: f64,
    /// Last value minus first.
    pub growth: i64,
    /// Intervals in which the value rose.
    pub rises: usize,
    /// Intervals (samples - 1).
    pub intervals: usize,
}

/// The trend of `y` sampled at times `t` (seconds, increasing; same length).
pub fn trend(t: &[f64], y: &[u64]) -> Trend {
    let n = t.len().min(y.len());
    if n < 2 {
        return Trend::default();
    }
    let pairs: Vec<(usize, usize)> = if n <= ALL_PAIRS_MAX {
        (0..n)
            .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
            .collect()
    } else {
        (0..n - n / 2).map(|i| (i, i + n / 2)).collect()
    };
    let mut slopes = Vec::with_capacity(pairs.len());
    let mut sign = 0i64;
    for &(i, j) in &pairs {
        let dy = y[j] as f64 - y[i] as f64;
        let dt = t[j] - t[i];
        if dt > 0.0 {
            slopes.push(dy / dt);
        }
        sign += match y[j].cmp(&y[i]) {
            std::cmp::Ordering::Greater => 1,
            std::cmp::Ordering::Less => -1,
            std::cmp::Ordering::Equal => 0,
        };
    }
    slopes.sort_by(f64::total_cmp);
    let slope = match slopes.len() {
        0 => 0.0,
        k if k % 2 == 1 => slopes[k / 2],
        k => (slopes[k / 2 - 1] + slopes[k / 2]) / 2.0,
    };
    let growth = i64::try_from(i128::from(y[n - 1]) - i128::from(y[0])).unwrap_or(0);
    Trend {
        slope,
        tau: sign as f64 / pairs.len() as f64,
        growth,
        rises: y[..n].windows(2).filter(|w| w[1] > w[0]).count(),
        intervals: n - 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_growth() {
        let t: Vec<f64> = (0..10).map(f64::from).collect();
        let y: Vec<u64> = (0..10).map(|i| 1000 + 50 * i).collect();
        let tr = trend(&t, &y);
        assert!((tr.slope - 50.0).abs() < 1e-9, "{tr:?}");
        assert_eq!(
            (tr.tau, tr.growth, tr.rises, tr.intervals),
            (1.0, 450, 9, 9)
        );
    }

    #[test]
    fn one_outlier_does_not_make_a_trend() {
        // flat, with a spike in the last sample: last-minus-first says +10000
        let t: Vec<f64> = (0..12).map(f64::from).collect();
        let mut y = vec![5000u64; 12];
        y[11] = 15000;
        let tr = trend(&t, &y);
        assert_eq!(tr.slope, 0.0, "{tr:?}");
        assert!(tr.tau < 0.2, "{tr:?}");
        assert_eq!(tr.growth, 10000);
    }

    #[test]
    fn shrinking_and_short() {
        let tr = trend(&[0.0, 1.0, 2.0], &[30, 20, 10]);
        assert_eq!((tr.slope, tr.tau), (-10.0, -1.0));
        assert_eq!(trend(&[0.0], &[1]), Trend::default());
    }

    #[test]
    fn long_series_use_half_window_pairs() {
        let n: u32 = 1000;
        let t: Vec<f64> = (0..n).map(|i| f64::from(i) * 0.5).collect();
        let y: Vec<u64> = (0..n).map(|i| u64::from(i) * 3).collect();
        let tr = trend(&t, &y);
        assert!((tr.slope - 6.0).abs() < 1e-9, "{tr:?}");
        assert_eq!(tr.tau, 1.0);
    }
}
