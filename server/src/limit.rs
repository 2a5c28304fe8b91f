//! The local server's limit on refresh grants per client address: `/oauth/token` forwards a
//! refresh with the operator's client secret to Monzo, so nobody may make it do so without bound.
//! (On AWS, API Gateway's route throttle is the cap.)

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use monzo_auth_domain::flow::ClientAddr;
use shared::http::RefreshLimiter;

/// Above this many addresses remembered, the ones whose budget is full again are forgotten.
const REMEMBERED: usize = 10_000;

pub struct RefreshLimit {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl RefreshLimit {
    /// `per_second` refreshes a second per address (IPv6: per /64), in bursts of as many; `None`
    /// for 0 (no limit).
    pub fn per_second(per_second: u32) -> Option<Self> {
        NonZeroU32::new(per_second).map(|rate| Self {
            limiter: RateLimiter::keyed(Quota::per_second(rate)),
        })
    }
}

/// The adapter the composition root takes (`app::Adapters::refresh_limit`): the limit
/// `REFRESH_LIMIT_PER_ADDRESS` sets, `None` for 0.
pub fn open(per_second: u32) -> Option<Arc<dyn RefreshLimiter>> {
    RefreshLimit::per_second(per_second).map(|limit| Arc::new(limit) as _)
}

impl RefreshLimiter for RefreshLimit {
    fn check(&self, addr: &ClientAddr) -> Result<(), u64> {
        if self.limiter.len() > REMEMBERED {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&addr.bucket()).map_err(|_| 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_budget() {
        let limit = RefreshLimit::per_second(3).unwrap();
        let one = ClientAddr("192.0.2.1".parse().unwrap());
        let other = ClientAddr("2001:db8:1:2::9".parse().unwrap());
        let same_64 = ClientAddr("2001:db8:1:2::7".parse().unwrap());
        for _ in 0..3 {
            assert!(limit.check(&one).is_ok());
        }
        assert_eq!(limit.check(&one), Err(1));
        for _ in 0..3 {
            assert!(limit.check(&other).is_ok());
        }
        assert!(limit.check(&same_64).is_err(), "one /64 is one address");
        assert!(RefreshLimit::per_second(0).is_none());
    }
}
