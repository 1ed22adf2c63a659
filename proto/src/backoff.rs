//! The one backoff every Sapha part retries with: exponential, capped, with
//! jitter. The hub (reading NATS), the publisher (writing it), the Rust client
//! (reconnecting to hubs) and the sink and notifier (webhooks, push services)
//! all wait by it, so a fleet that lost the same server at the same moment does
//! not come back in lockstep.

use rand::Rng;
use std::time::Duration;

/// Delays that double from `initial` up to `max`, each drawn at random from
/// the upper half of its step ("equal jitter"): clients that lost the same hub
/// at the same moment do not all come back at the same moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay (before jitter).
    pub initial: Duration,
    /// The longest delay (before jitter).
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The step for `attempt` (1-based) without jitter: `initial * 2^(attempt-1)`, capped.
    pub fn step(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1u32 << shift)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// The delay before `attempt` (1-based): uniform in `[step/2, step]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let step = self.step(attempt);
        let low = step / 2;
        if step.is_zero() {
            return step;
        }
        let nanos = rand::rng().random_range(low.as_nanos() as u64..=step.as_nanos() as u64);
        Duration::from_nanos(nanos)
    }

    /// A running sequence of these delays (see [`Retrying`]).
    pub fn retrying(self) -> Retrying {
        Retrying {
            policy: self,
            attempt: 0,
        }
    }
}

/// Consecutive failures of one thing: each [`Retrying::next_delay`] is the
/// policy's delay for one more attempt; [`Retrying::reset`] after a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retrying {
    policy: Backoff,
    attempt: u32,
}

impl Retrying {
    /// The wait before the next attempt (and counts the attempt).
    pub fn next_delay(&mut self) -> Duration {
        self.attempt = self.attempt.saturating_add(1);
        self.policy.delay(self.attempt)
    }

    /// Starts over from the first delay (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_sequence_grows_and_starts_over() {
        let mut r = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(400),
        }
        .retrying();
        let waits: Vec<Duration> = (0..4).map(|_| r.next_delay()).collect();
        let bounds = [(50, 100), (100, 200), (200, 400), (200, 400)];
        for (w, (lo, hi)) in waits.iter().zip(bounds) {
            assert!(
                (Duration::from_millis(lo)..=Duration::from_millis(hi)).contains(w),
                "{w:?} not in [{lo}, {hi}] ms"
            );
        }
        r.reset();
        assert!(r.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let steps: Vec<u64> = (1..=6).map(|a| b.step(a).as_millis() as u64).collect();
        assert_eq!(steps, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.step(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        let b = Backoff::default();
        for attempt in 1..=20 {
            let d = b.delay(attempt);
            let step = b.step(attempt);
            assert!(d <= step && d >= step / 2, "{d:?} for step {step:?}");
        }
    }
}
