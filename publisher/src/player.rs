//! Pacing for the scenario player: waits between events as long as the events'
//! own `occurred_at` times say, divided by the speed-up.

use chrono::{DateTime, Utc};
use std::time::Duration;

/// How fast to replay.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// 1.0 is real time, 10.0 ten times faster; 0 (or less) means no waiting at all.
    pub speed: f64,
    /// The longest single wait, so that days between bill stages do not stall a replay.
    pub max_gap: Duration,
}

/// Remembers the previous event's time and sleeps until the next one is due.
#[derive(Debug)]
pub struct Pacer {
    pacing: Pacing,
    previous: Option<DateTime<Utc>>,
}

impl Pacer {
    pub fn new(pacing: Pacing) -> Self {
        Pacer {
            pacing,
            previous: None,
        }
    }

    /// How long to wait before an event that occurred at `at`.
    pub fn delay_before(&mut self, at: DateTime<Utc>) -> Duration {
        let previous = self.previous.replace(at);
        if self.pacing.speed <= 0.0 {
            return Duration::ZERO;
        }
        let Some(previous) = previous else {
            return Duration::ZERO;
        };
        let gap = (at - previous).to_std().unwrap_or(Duration::ZERO);
        gap.div_f64(self.pacing.speed).min(self.pacing.max_gap)
    }

    /// Sleeps until the event that occurred at `at` is due.
    pub async fn wait_for(&mut self, at: DateTime<Utc>) {
        let delay = self.delay_before(at);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn waits_scale_with_speed_and_are_capped() {
        let mut pacer = Pacer::new(Pacing {
            speed: 10.0,
            max_gap: Duration::from_secs(5),
        });
        assert_eq!(
            pacer.delay_before(t("2021-09-10T02:30:00Z")),
            Duration::ZERO
        );
        assert_eq!(
            pacer.delay_before(t("2021-09-10T02:30:20Z")),
            Duration::from_secs(2)
        );
        assert_eq!(
            pacer.delay_before(t("2021-09-10T03:30:20Z")),
            Duration::from_secs(5)
        );
        // Out-of-order times never produce a negative wait.
        assert_eq!(
            pacer.delay_before(t("2021-09-10T01:00:00Z")),
            Duration::ZERO
        );
    }

    #[test]
    fn speed_zero_never_waits() {
        let mut pacer = Pacer::new(Pacing {
            speed: 0.0,
            max_gap: Duration::from_secs(5),
        });
        pacer.delay_before(t("2021-09-10T02:30:00Z"));
        assert_eq!(
            pacer.delay_before(t("2021-09-10T02:31:00Z")),
            Duration::ZERO
        );
    }

    #[tokio::test(start_paused = true)]
    async fn wait_for_sleeps_the_scaled_gap() {
        let mut pacer = Pacer::new(Pacing {
            speed: 2.0,
            max_gap: Duration::from_secs(60),
        });
        pacer.wait_for(t("2021-09-10T02:30:00Z")).await;
        let start = tokio::time::Instant::now();
        pacer.wait_for(t("2021-09-10T02:30:30Z")).await;
        assert_eq!(start.elapsed(), Duration::from_secs(15));
    }
}
