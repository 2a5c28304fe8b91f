//! The device flow (RFC 8628) on the same sessions as the simple API: `/device/code` starts a
//! session that also has a user code; a person types that code at `/device`, confirms it, and
//! logs in at Monzo; the device polls `/oauth/token` with its device code (a poll id).

use std::net::IpAddr;

use url::Url;

use super::{DeviceError, DevicePollError, Flow, Internal, NoPublicUrl, Poll, TokenError};
use crate::session::{
    ClientId, DeviceGrant, Pace, PollId, Session, State, Status, UserCode, UserCodeRecord,
};
use crate::store::StoreError;
use crate::urls::PublicUrls;

/// RFC 8628 3.5: each `slow_down` adds five seconds to the interval.
const SLOW_DOWN_STEP_MS: i64 = 5_000;
/// Attempts at drawing a user code that no live session has.
const USER_CODE_ATTEMPTS: usize = 5;

/// The address a request came from, as the host determined it (the TCP peer, or API Gateway's
/// source IP). Wrong user codes are counted per address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The network wrong guesses also count against: the IPv4 /24, the IPv6 /48 (a site's
    /// usual allocation), so many addresses of one network share one budget.
    pub(crate) fn network(&self) -> String {
        match self.0 {
            IpAddr::V4(v4) => net_of_v4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => net_of_v4(v4),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
                }
            },
        }
    }

    /// The bucket wrong guesses count against: the address, or its /64 for IPv6, where one
    /// subscriber usually holds a whole /64.
    pub fn bucket(&self) -> String {
        match self.0 {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        }
    }
}

fn net_of_v4(v4: std::net::Ipv4Addr) -> String {
    let [a, b, c, _] = v4.octets();
    format!("{a}.{b}.{c}.0/24")
}

/// The failures a `/device` attempt reserved before its code was checked, taken back when the
/// code turns out right (or the attempt is refused unchecked).
struct Reserved(Vec<String>);

/// A device session just created (RFC 8628 3.2).
#[derive(Debug)]
pub struct DeviceStarted {
    pub device_code: PollId,
    pub user_code: UserCode,
    pub verification_uri: Url,
    pub verification_uri_complete: Url,
    pub expires_in: u64,
    pub interval: u64,
}

impl Flow {
    /// `POST /device/code`: a device session for `client_id`, whose login returns to `urls`'
    /// callback.
    pub async fn start_device(
        &self,
        client_id: ClientId,
        urls: &PublicUrls,
    ) -> Result<DeviceStarted, Internal> {
        let now = self.now();
        let id = PollId::generate(now);
        let ttl = self.settings.session_ttl;
        let interval_ms = self.settings.poll_interval.as_millis() as i64;
        // The `/device` pages (another Lambda function) build the login URL from the recorded
        // callback, and the exchange must send the very same value.
        let session = Session::new_pending(&id, now, ttl)
            .with_return_url(Some(urls.callback().to_string()))
            .with_device(DeviceGrant {
                client_id: client_id.as_str().to_owned(),
                interval_ms,
                next_poll_ms: None,
            });
        let user_code = self.create_with_user_code(&session, now).await?;
        let verification_uri = urls.at("device");
        let mut verification_uri_complete = verification_uri.clone();
        verification_uri_complete
            .query_pairs_mut()
            .append_pair("user_code", &user_code.display());
        Ok(DeviceStarted {
            device_code: id,
            user_code,
            verification_uri,
            verification_uri_complete,
            expires_in: ttl.as_secs(),
            interval: self.settings.poll_interval.as_secs(),
        })
    }

    /// Stores the session with a user code, drawing codes until one is free (a clash needs two
    /// live sessions drawing the same 34.6-bit code, so a second draw is already rare). One
    /// write per draw: the session and its code together.
    async fn create_with_user_code(
        &self,
        session: &Session,
        now: i64,
    ) -> Result<UserCode, Internal> {
        for _ in 0..USER_CODE_ATTEMPTS {
            let code = UserCode::generate();
            let record = UserCodeRecord {
                key: code.store_key(),
                state: session.state.clone(),
                expires_at_ms: session.expires_at_ms,
                purge_at: session.purge_at,
            };
            if self
                .store
                .create_with_user_code(session, &record, now)
                .await?
            {
                return Ok(code);
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// `/device`: finds the pending session a typed (or linked) user code belongs to; `typed`
    /// is `None` for text that is not a user code at all, which counts as a wrong code.
    ///
    /// Every attempt first reserves a failure against its address, its network and the shared
    /// budget (atomic increments, so concurrent guesses cannot share one reading of a limit); a
    /// right code takes them back. An address or network over its limit is refused until the
    /// window ends, right or wrong. Once the shared budget is spent, an address whose address
    /// and network have no failure this window still gets its one check, so a person with the
    /// right code gets through while an attacker gets one guess per fresh network.
    pub async fn find_device_session(
        &self,
        typed: Option<UserCode>,
        addr: Option<ClientAddr>,
    ) -> Result<(UserCode, Session), DeviceError> {
        let now = self.now();
        let reserved = self.reserve_guess(addr, now).await?;
        let found = match typed {
            Some(code) => match self.store.find_user_code(&code.store_key()).await? {
                Some(record) if record.expires_at_ms > now => Some((code, record.state)),
                _ => None,
            },
            None => None,
        };
        let Some((code, state)) = found else {
            return Err(DeviceError::WrongCode);
        };
        self.refund(reserved).await?;
        let session = self.store.get(&state).await?.ok_or(DeviceError::Expired)?;
        if session.is_expired(now) {
            return Err(DeviceError::Expired);
        }
        match session.status {
            Status::Pending => Ok((code, session)),
            Status::Authorized { .. } | Status::Denied => Err(DeviceError::AlreadyUsed),
        }
    }

    /// After the person confirmed the code: Monzo's login URL for that session.
    pub async fn device_login_url(
        &self,
        typed: Option<UserCode>,
        addr: Option<ClientAddr>,
    ) -> Result<Url, DeviceError> {
        let (_, session) = self.find_device_session(typed, addr).await?;
        let redirect_uri = self
            .settings
            .urls
            .redirect_uri_of(session.return_url.as_deref())
            .ok_or(NoPublicUrl)?;
        Ok(self.monzo.login_url(&redirect_uri, &session.state))
    }

    /// Reserves this attempt's failures, or refuses it (taking them back) when the limits say
    /// so.
    async fn reserve_guess(
        &self,
        addr: Option<ClientAddr>,
        now: i64,
    ) -> Result<Reserved, DeviceError> {
        let limits = &self.settings.guess_limits;
        let window_ms = limits.window.as_millis().max(1) as i64;
        let window = now.div_euclid(window_ms);
        // Kept one window longer than they count, then purged.
        let purge_at = ((window + 2) * window_ms).div_euclid(1000);
        let (bucket, network) = match addr {
            Some(addr) => (addr.bucket(), addr.network()),
            None => ("unknown".to_owned(), "unknown".to_owned()),
        };
        let counters = [
            (format!("limit#addr#{bucket}#{window}"), limits.per_address),
            (format!("limit#net#{network}#{window}"), limits.per_network),
            (format!("limit#global#{window}"), limits.global),
        ];
        let mut reserved = Reserved(Vec::with_capacity(counters.len()));
        let mut counts = [0u64; 3];
        for (i, (key, limit)) in counters.into_iter().enumerate() {
            if limit > 0 {
                counts[i] = self.store.add_failure(&key, purge_at).await?;
                reserved.0.push(key);
            }
        }
        let over = |count: u64, limit: u64| limit > 0 && count > limit;
        let [at_address, at_network, shared] = counts;
        let fresh = at_address <= 1 && at_network <= 1;
        let refused = over(at_address, limits.per_address)
            || over(at_network, limits.per_network)
            || (over(shared, limits.global) && !fresh);
        if refused {
            self.refund(reserved).await?;
            return Err(DeviceError::TooManyGuesses {
                retry_after_secs: self.window_remaining_secs(now),
            });
        }
        Ok(reserved)
    }

    async fn refund(&self, reserved: Reserved) -> Result<(), DeviceError> {
        for key in reserved.0 {
            self.store.refund_failure(&key).await?;
        }
        Ok(())
    }

    fn window_remaining_secs(&self, now: i64) -> u64 {
        let window_ms = self.settings.guess_limits.window.as_millis().max(1) as i64;
        let remaining = window_ms - now.rem_euclid(window_ms);
        (remaining as u64).div_ceil(1000)
    }

    /// `POST /oauth/token` with a device code: RFC 8628 3.4/3.5. `device_code` is `None` for a
    /// value that is not one of ours (unknown, as RFC 8628 has it). A wrong `client_id` is
    /// refused before the poll counts, so it does not use up the session's interval.
    pub async fn poll_device(
        &self,
        device_code: Option<&PollId>,
        client_id: &str,
    ) -> Result<Poll, DevicePollError> {
        let id = device_code.ok_or(TokenError::NotFound)?;
        let state: State = id.state();
        let now = self.now();
        let session = self
            .store
            .get(&state)
            .await
            .map_err(TokenError::from)?
            .ok_or(TokenError::NotFound)?;
        let device = session.device.as_ref().ok_or(TokenError::NotFound)?;
        if session.is_expired(now) {
            return Err(TokenError::Expired.into());
        }
        if device.client_id != client_id {
            return Err(DevicePollError::InvalidClient);
        }
        match self
            .store
            .pace_poll(&state, now, SLOW_DOWN_STEP_MS)
            .await
            .map_err(TokenError::from)?
        {
            Pace::Allowed => {}
            Pace::SlowDown { .. } => return Err(DevicePollError::SlowDown),
            Pace::NotFound => return Err(TokenError::NotFound.into()),
        }
        Ok(self.redeem_if_ready(id, &session, now).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_the_ipv4_24_and_the_ipv6_48() {
        let net = |text: &str| ClientAddr(text.parse().unwrap()).network();
        assert_eq!(net("192.0.2.7"), "192.0.2.0/24");
        assert_eq!(net("::ffff:192.0.2.9"), "192.0.2.0/24");
        assert_eq!(net("2001:db8:1:2::1"), net("2001:db8:1:ffff::9"));
        assert_ne!(net("2001:db8:1::1"), net("2001:db8:2::1"));
        assert_eq!(net("2001:db8:1:2::1"), "2001:db8:1::/48");
    }

    #[test]
    fn ipv6_addresses_share_a_bucket_per_64() {
        let a = ClientAddr("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = ClientAddr("2001:db8:1:2:ffff::9".parse().unwrap());
        let c = ClientAddr("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a.bucket(), b.bucket());
        assert_ne!(a.bucket(), c.bucket());
        assert_eq!(
            ClientAddr("::ffff:192.0.2.7".parse().unwrap()).bucket(),
            "192.0.2.7"
        );
        assert_eq!(
            ClientAddr("192.0.2.7".parse().unwrap()).bucket(),
            "192.0.2.7"
        );
    }
}
