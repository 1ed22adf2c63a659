//! Accounting for one client (which events it got, how many twice, how late)
//! and the percentiles of a run.

use hdrhistogram::Histogram;

/// What one client received.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Bit `i` is set once event `i` arrived.
    seen: Vec<u64>,
    /// Events in the run.
    events: u64,
    /// Events received (first copies only).
    pub unique: u64,
    /// Copies of events already received.
    pub duplicates: u64,
    /// Events whose index is outside the run (should never happen).
    pub unknown: u64,
    /// Latencies of first copies, in microseconds.
    pub latencies_us: Vec<u32>,
    /// When the last event arrived (ns since the epoch); 0 if none did.
    pub last_ns: u64,
    /// Why the connection ended before the run did, if it did.
    pub closed: Option<String>,
}

impl Tally {
    /// A tally for a run of `events` events.
    pub fn new(events: u64) -> Tally {
        Tally {
            seen: vec![0; events.div_ceil(64) as usize],
            events,
            unique: 0,
            duplicates: 0,
            unknown: 0,
            latencies_us: Vec::new(),
            last_ns: 0,
            closed: None,
        }
    }

    /// Records event `index`, sent at `sent_ns`, received at `now_ns`.
    pub fn record(&mut self, index: u64, sent_ns: u64, now_ns: u64) {
        let (word, bit) = ((index / 64) as usize, index % 64);
        let Some(w) = self.seen.get_mut(word).filter(|_| index < self.events) else {
            self.unknown += 1;
            return;
        };
        if *w & (1 << bit) != 0 {
            self.duplicates += 1;
            return;
        }
        *w |= 1 << bit;
        self.unique += 1;
        let us = now_ns.saturating_sub(sent_ns) / 1_000;
        self.latencies_us.push(us.min(u64::from(u32::MAX)) as u32);
        self.last_ns = self.last_ns.max(now_ns);
    }

    /// Whether event `index` arrived.
    pub fn has(&self, index: u64) -> bool {
        self.seen
            .get((index / 64) as usize)
            .is_some_and(|w| w & (1 << (index % 64)) != 0)
    }

    /// Expected events that did not arrive.
    pub fn lost(&self, expected: u64) -> u64 {
        expected.saturating_sub(self.unique)
    }
}

/// A latency histogram in microseconds, 1 µs to 10 min, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Adds a client's latencies to `h` (values beyond the bounds are clamped).
pub fn add_latencies(h: &mut Histogram<u64>, latencies_us: &[u32]) {
    for &us in latencies_us {
        h.saturating_record(u64::from(us.max(1)));
    }
}

/// p50, p99, p99.9 and max, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |v: u64| v as f64 / 1_000.0;
        Percentiles {
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// The median of some figures (the mean of the middle two for an even count).
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_and_duplicates() {
        let mut t = Tally::new(100);
        t.record(0, 0, 1_000_000);
        t.record(63, 0, 1_000_000);
        t.record(64, 0, 1_000_000);
        t.record(64, 0, 2_000_000);
        t.record(99, 0, 1_000_000);
        t.record(100, 0, 1_000_000);
        assert_eq!(t.unique, 4);
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.unknown, 1);
        assert_eq!(t.lost(10), 6);
        assert!(t.has(63) && t.has(64) && !t.has(1));
        assert_eq!(t.latencies_us, [1_000; 4]);
        assert_eq!(t.last_ns, 1_000_000);
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let mut h = histogram();
        let values: Vec<u32> = (1..=10_000).collect();
        add_latencies(&mut h, &values);
        let p = Percentiles::of(&h);
        // 3 significant digits: within 0.1 % of the exact rank.
        assert!((p.p50_ms - 5.0).abs() < 0.01, "{p:?}");
        assert!((p.p99_ms - 9.9).abs() < 0.01, "{p:?}");
        assert!((p.p999_ms - 9.99).abs() < 0.01, "{p:?}");
        assert!((p.max_ms - 10.0).abs() < 0.01, "{p:?}");
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }
}
