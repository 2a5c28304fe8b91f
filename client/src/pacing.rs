//! When to poll `/token` next, and when to give up: pure arithmetic on what the last poll
//! answered and how long the session has run, so that the schedule is tested without a clock
//! or a network. The caller supplies the elapsed time and the jitter. The same goes for the
//! few retries of a refresh ([`refresh_pause`]).

use std::time::Duration;

use crate::{Error, Progress, RetryReason};

/// Never poll more often than this, whatever the service advises: an advised interval of 0
/// means "no minimum", not "spin". The service's own `Retry-After` floor is 1 s too.
pub(crate) const MIN_DELAY: Duration = Duration::from_secs(1);
/// What each `slow_down` adds to the interval, for the rest of the wait (RFC 8628 3.5).
pub(crate) const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// The first retry after a failure waits about this long; each further failure doubles it.
pub(crate) const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Backoff stops growing here, so that a recovered service is noticed within half a minute.
pub(crate) const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// What a poll answered, reduced to what decides the next step. Final answers (a token or a
/// contract error) never get here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// 202 `authorization_pending`, with the body's `interval` and the `Retry-After` header.
    Pending {
        interval: Option<Duration>,
        retry_after: Option<Duration>,
    },
    /// 429 `slow_down`.
    SlowDown { retry_after: Option<Duration> },
    /// A 5xx or no answer at all: worth retrying with backoff.
    Unavailable {
        reason: RetryReason,
        retry_after: Option<Duration>,
    },
}

/// What to do after an [`Answer`].
#[derive(Debug)]
pub(crate) enum Next {
    PollAfter { delay: Duration, progress: Progress },
    GiveUp(Error),
}

/// The polling schedule of one login session.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    /// The interval the service last advised.
    advised: Duration,
    /// Everything `slow_down` added; kept even when a later 202 advises the old interval again.
    penalty: Duration,
    /// Failed polls in a row.
    failures: u32,
    /// The session's lifetime (`expires_in`), measured from when it was requested.
    lifetime: Duration,
}

impl Pacer {
    pub(crate) fn new(advised: Duration, lifetime: Duration) -> Self {
        Self {
            advised,
            penalty: Duration::ZERO,
            failures: 0,
            lifetime,
        }
    }

    /// The pause between polls while all is well.
    pub(crate) fn interval(&self) -> Duration {
        self.advised.saturating_add(self.penalty).max(MIN_DELAY)
    }

    /// Decides the step after `answer`, `elapsed` into the session. `jitter` in `[0, 1)` spreads
    /// retries of many clients after a shared outage; it comes from the caller so that this
    /// stays deterministic under test.
    pub(crate) fn next(&mut self, answer: Answer, elapsed: Duration, jitter: f64) -> Next {
        let (wanted, reason, retry_after) = match answer {
            Answer::Pending {
                interval,
                retry_after,
            } => {
                self.failures = 0;
                if let Some(interval) = interval {
                    self.advised = interval;
                }
                (self.interval(), None, retry_after)
            }
            Answer::SlowDown { retry_after } => {
                self.failures = 0;
                self.penalty = self.penalty.saturating_add(SLOW_DOWN_STEP);
                (self.interval(), Some(RetryReason::SlowDown), retry_after)
            }
            Answer::Unavailable {
                reason,
                retry_after,
            } => {
                self.failures = self.failures.saturating_add(1);
                let wanted = backoff(self.failures, jitter).max(self.interval());
                (wanted, Some(reason), retry_after)
            }
        };
        let remaining = self.lifetime.saturating_sub(elapsed);
        if remaining.is_zero() {
            // The session is over on the service's side too. If the service was failing right
            // up to the end, that is the more useful thing to report.
            return Next::GiveUp(match reason {
                Some(RetryReason::SlowDown) | None => Error::Expired,
                Some(_) => Error::ServiceUnavailable,
            });
        }
        // Retry-After is the service's wish and wins over our own pace; but no pause runs past
        // the session's end: one last poll then lets the service say how it ended.
        let delay = wanted
            .max(retry_after.unwrap_or(Duration::ZERO))
            .min(remaining);
        let progress = match reason {
            None => Progress::Waiting { elapsed },
            Some(reason) => Progress::Retrying {
                reason,
                after: delay,
            },
        };
        Next::PollAfter { delay, progress }
    }
}

/// The pause after the `failures`-th failure in a row: 1, 2, 4, … s up to [`BACKOFF_CAP`], of
/// which a random half is dropped ("equal jitter": never less than half the step, so a
/// struggling service is not hammered, yet clients that failed together spread out).
pub(crate) fn backoff(failures: u32, jitter: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let step = BACKOFF_BASE
        .saturating_mul(1u32 << doublings)
        .min(BACKOFF_CAP);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.5
    };
    step / 2 + step.mul_f64(jitter) / 2
}

/// How many times a refresh is tried in all before an outage is reported.
pub(crate) const REFRESH_ATTEMPTS: u32 = 3;
/// The longest pause between two tries of a refresh. A service that asks for more (with
/// `Retry-After`) is taken at its word and not asked again: a person or a script waiting for
/// a token is better told to come back later.
pub(crate) const REFRESH_MAX_PAUSE: Duration = Duration::from_secs(30);

/// The pause after the `failures`-th failed try of a refresh, or `None` when it is time to
/// give up: after [`REFRESH_ATTEMPTS`] tries, or when `retry_after` asks for longer than
/// [`REFRESH_MAX_PAUSE`]. Backs off like polling does, and never retries sooner than the
/// service's `Retry-After`.
pub(crate) fn refresh_pause(
    failures: u32,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Option<Duration> {
    if failures >= REFRESH_ATTEMPTS {
        return None;
    }
    let pause = backoff(failures, jitter).max(retry_after.unwrap_or(Duration::ZERO));
    (pause <= REFRESH_MAX_PAUSE).then_some(pause)
}

/// A uniformly random fraction in `[0, 1)` from the OS, for [`backoff`]; 0.5 if the OS has
/// none to give (jitter only spreads load, it guards no secret).
pub(crate) fn random_jitter() -> f64 {
    let mut bytes = [0u8; 4];
    match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;
    const LONG: Duration = Duration::from_secs(600);

    fn pending(interval: Option<u64>, retry_after: Option<u64>) -> Answer {
        Answer::Pending {
            interval: interval.map(S),
            retry_after: retry_after.map(S),
        }
    }

    fn unavailable(retry_after: Option<u64>) -> Answer {
        Answer::Unavailable {
            reason: RetryReason::MonzoUnavailable,
            retry_after: retry_after.map(S),
        }
    }

    fn delay(next: Next) -> Duration {
        match next {
            Next::PollAfter { delay, .. } => delay,
            Next::GiveUp(error) => panic!("gave up: {error}"),
        }
    }

    #[test]
    fn pending_polls_at_the_advised_interval_and_follows_changes() {
        let mut pacer = Pacer::new(S(2), LONG);
        assert_eq!(delay(pacer.next(pending(None, None), S(0), 0.0)), S(2));
        assert_eq!(delay(pacer.next(pending(Some(3), None), S(2), 0.0)), S(3));
        // The new interval sticks even when a later answer does not repeat it.
        assert_eq!(delay(pacer.next(pending(None, None), S(5), 0.0)), S(3));
    }

    #[test]
    fn retry_after_wins_when_it_asks_for_longer() {
        let mut pacer = Pacer::new(S(2), LONG);
        assert_eq!(
            delay(pacer.next(pending(Some(2), Some(7)), S(0), 0.0)),
            S(7)
        );
        assert_eq!(
            delay(pacer.next(pending(Some(2), Some(1)), S(7), 0.0)),
            S(2)
        );
    }

    #[test]
    fn an_interval_of_zero_still_pauses() {
        let mut pacer = Pacer::new(S(0), LONG);
        assert_eq!(
            delay(pacer.next(pending(Some(0), None), S(0), 0.0)),
            MIN_DELAY
        );
    }

    #[test]
    fn each_slow_down_adds_five_seconds_for_good() {
        let mut pacer = Pacer::new(S(2), LONG);
        let next = pacer.next(Answer::SlowDown { retry_after: None }, S(0), 0.0);
        match next {
            Next::PollAfter { delay, progress } => {
                assert_eq!(delay, S(7));
                assert_eq!(
                    progress,
                    Progress::Retrying {
                        reason: RetryReason::SlowDown,
                        after: S(7)
                    }
                );
            }
            Next::GiveUp(e) => panic!("{e}"),
        }
        assert_eq!(
            delay(pacer.next(Answer::SlowDown { retry_after: None }, S(7), 0.0)),
            S(12)
        );
        // A 202 that advises the original interval does not undo the penalty.
        assert_eq!(delay(pacer.next(pending(Some(2), None), S(19), 0.0)), S(12));
    }

    #[test]
    fn failures_back_off_exponentially_up_to_the_cap() {
        // With the interval at its floor, the backoff steps show through.
        let mut pacer = Pacer::new(S(0), S(100_000));
        let steps: Vec<Duration> = (0..8)
            .map(|i| delay(pacer.next(unavailable(None), S(i), 0.999_999)))
            .collect();
        let secs: Vec<u64> = steps
            .iter()
            .map(|d| d.as_secs_f64().round() as u64)
            .collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn jitter_keeps_at_least_half_of_each_step() {
        assert_eq!(backoff(4, 0.0), S(4));
        assert_eq!(backoff(4, 0.5), S(6));
        assert!(backoff(4, 0.999) < S(8));
        // Nonsense jitter is tamed rather than trusted.
        assert_eq!(backoff(4, f64::NAN), S(6));
        assert_eq!(backoff(4, 7.0), S(8));
        assert_eq!(backoff(u32::MAX, 1.0), BACKOFF_CAP);
        for _ in 0..100 {
            let j = random_jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }

    #[test]
    fn backoff_never_polls_faster_than_the_interval_and_honours_retry_after() {
        let mut pacer = Pacer::new(S(3), LONG);
        // First failure: backoff 0.5-1 s, but the interval is 3 s.
        assert_eq!(delay(pacer.next(unavailable(None), S(0), 0.0)), S(3));
        // The service's 502 says Retry-After: 5.
        assert_eq!(delay(pacer.next(unavailable(Some(5)), S(3), 0.0)), S(5));
    }

    #[test]
    fn a_good_answer_resets_the_backoff() {
        let mut pacer = Pacer::new(S(1), LONG);
        for i in 0..5 {
            pacer.next(unavailable(None), S(i), 0.0);
        }
        assert_eq!(delay(pacer.next(pending(None, None), S(40), 0.0)), S(1));
        assert_eq!(delay(pacer.next(unavailable(None), S(41), 0.0)), S(1));
    }

    #[test]
    fn retrying_reports_the_reason_and_the_pause() {
        let mut pacer = Pacer::new(S(2), LONG);
        match pacer.next(unavailable(Some(5)), S(10), 0.0) {
            Next::PollAfter { progress, .. } => assert_eq!(
                progress,
                Progress::Retrying {
                    reason: RetryReason::MonzoUnavailable,
                    after: S(5)
                }
            ),
            Next::GiveUp(e) => panic!("{e}"),
        }
        match pacer.next(pending(None, None), S(15), 0.0) {
            Next::PollAfter { progress, .. } => {
                assert_eq!(progress, Progress::Waiting { elapsed: S(15) })
            }
            Next::GiveUp(e) => panic!("{e}"),
        }
    }

    #[test]
    fn no_pause_runs_past_the_session_end() {
        let mut pacer = Pacer::new(S(5), S(60));
        assert_eq!(delay(pacer.next(pending(None, None), S(58), 0.0)), S(2));
        assert_eq!(delay(pacer.next(unavailable(Some(3600)), S(59), 0.0)), S(1));
    }

    #[test]
    fn a_refresh_is_tried_three_times_with_growing_pauses() {
        assert_eq!(
            refresh_pause(1, None, 0.0),
            Some(Duration::from_millis(500))
        );
        assert_eq!(refresh_pause(2, None, 0.0), Some(S(1)));
        assert!(refresh_pause(2, None, 0.999).unwrap() < S(2));
        assert_eq!(refresh_pause(3, None, 0.0), None);
        assert_eq!(refresh_pause(u32::MAX, None, 0.0), None);
    }

    #[test]
    fn a_refresh_honours_retry_after_up_to_its_limit() {
        assert_eq!(refresh_pause(1, Some(S(5)), 0.0), Some(S(5)));
        // A shorter Retry-After does not shorten the backoff.
        assert_eq!(refresh_pause(2, Some(S(0)), 0.0), Some(S(1)));
        assert_eq!(
            refresh_pause(1, Some(REFRESH_MAX_PAUSE), 0.0),
            Some(REFRESH_MAX_PAUSE)
        );
        // Asked to wait longer than a person would: give up now rather than hang.
        assert_eq!(refresh_pause(1, Some(S(31)), 0.0), None);
    }

    #[test]
    fn at_the_session_end_it_gives_up_with_the_right_error() {
        let mut pacer = Pacer::new(S(2), S(60));
        assert!(matches!(
            pacer.next(pending(None, None), S(60), 0.0),
            Next::GiveUp(Error::Expired)
        ));
        assert!(matches!(
            pacer.next(Answer::SlowDown { retry_after: None }, S(61), 0.0),
            Next::GiveUp(Error::Expired)
        ));
        // Failing until the end is an outage, not a person who did not finish.
        assert!(matches!(
            pacer.next(unavailable(None), S(60), 0.0),
            Next::GiveUp(Error::ServiceUnavailable)
        ));
        assert!(matches!(
            pacer.next(
                Answer::Unavailable {
                    reason: RetryReason::ServiceUnreachable,
                    retry_after: None
                },
                S(90),
                0.0
            ),
            Next::GiveUp(Error::ServiceUnavailable)
        ));
    }
}
