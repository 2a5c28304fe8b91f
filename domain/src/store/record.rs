//! A session as the table-shaped stores (SQLite, DynamoDB) keep it: flat fields of plain types,
//! one per column or attribute (named alike), and the checks that a stored one is whole. Each
//! store only moves these fields in and out of its own row or item.

use crate::session::{CodeChallenge, DeviceGrant, Lease, SealPublicKey, Session, State, Status};

use super::StoreError;

/// The stored names of a session's statuses. They are stored data (SQLite's schema pins them in
/// a `CHECK`), so they never change.
pub mod status {
    pub const PENDING: &str = "pending";
    pub const AUTHORIZED: &str = "authorized";
    pub const DENIED: &str = "denied";
}

/// The name `status` is stored under.
pub fn status_name(status: &Status) -> &'static str {
    match status {
        Status::Pending => status::PENDING,
        Status::Authorized { .. } => status::AUTHORIZED,
        Status::Denied => status::DENIED,
    }
}

/// A [`Session`]'s fields as stored; `Session::try_from` checks them on the way back. It has no
/// `Debug`: it holds the state as plain text.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// [`State::as_text`].
    pub state: String,
    /// [`status_name`].
    pub status: String,
    pub seal_public_key: Vec<u8>,
    /// Present exactly when the status is authorized.
    pub sealed_code: Option<Vec<u8>>,
    pub code_challenge: Option<String>,
    pub return_url: Option<String>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub purge_at: i64,
    /// Both or neither of the lease's fields.
    pub lease_id: Option<String>,
    pub lease_until_ms: Option<i64>,
    /// Both or neither: a device session's client id and interval.
    pub device_client_id: Option<String>,
    pub interval_ms: Option<i64>,
    pub next_poll_ms: Option<i64>,
}

impl From<&Session> for SessionRecord {
    fn from(session: &Session) -> Self {
        Self {
            state: session.state.as_text(),
            status: status_name(&session.status).to_owned(),
            seal_public_key: session.seal_public_key.0.to_vec(),
            sealed_code: match &session.status {
                Status::Authorized { sealed_code } => Some(sealed_code.clone()),
                Status::Pending | Status::Denied => None,
            },
            code_challenge: session
                .code_challenge
                .as_ref()
                .map(|c| c.as_str().to_owned()),
            return_url: session.return_url.clone(),
            created_at_ms: session.created_at_ms,
            expires_at_ms: session.expires_at_ms,
            purge_at: session.purge_at,
            lease_id: session.lease.as_ref().map(|l| l.id.clone()),
            lease_until_ms: session.lease.as_ref().map(|l| l.until_ms),
            device_client_id: session.device.as_ref().map(|d| d.client_id.clone()),
            interval_ms: session.device.as_ref().map(|d| d.interval_ms),
            next_poll_ms: session.device.as_ref().and_then(|d| d.next_poll_ms),
        }
    }
}

/// A stored field that does not hold: [`StoreError::Corrupt`] naming it.
fn corrupt(field: &str) -> StoreError {
    StoreError::Corrupt(format!("session field {field}"))
}

impl TryFrom<SessionRecord> for Session {
    type Error = StoreError;

    fn try_from(r: SessionRecord) -> Result<Self, StoreError> {
        let status = match (r.status.as_str(), r.sealed_code) {
            (status::PENDING, None) => Status::Pending,
            (status::AUTHORIZED, Some(sealed_code)) => Status::Authorized { sealed_code },
            (status::DENIED, None) => Status::Denied,
            _ => return Err(corrupt("status")),
        };
        Ok(Session {
            state: State::parse(&r.state).ok_or_else(|| corrupt("state"))?,
            status,
            seal_public_key: SealPublicKey(
                r.seal_public_key
                    .try_into()
                    .map_err(|_| corrupt("seal_public_key"))?,
            ),
            code_challenge: r
                .code_challenge
                .map(|text| CodeChallenge::parse(&text).ok_or_else(|| corrupt("code_challenge")))
                .transpose()?,
            return_url: r.return_url,
            device: match (r.device_client_id, r.interval_ms) {
                (Some(client_id), Some(interval_ms)) => Some(DeviceGrant {
                    client_id,
                    interval_ms,
                    next_poll_ms: r.next_poll_ms,
                }),
                (None, None) => None,
                _ => return Err(corrupt("device_client_id")),
            },
            created_at_ms: r.created_at_ms,
            expires_at_ms: r.expires_at_ms,
            purge_at: r.purge_at,
            lease: match (r.lease_id, r.lease_until_ms) {
                (Some(id), Some(until_ms)) => Some(Lease { id, until_ms }),
                (None, None) => None,
                _ => return Err(corrupt("lease_id")),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::PollId;

    fn session() -> Session {
        Session::new_pending(
            &PollId::generate(0),
            1_800_000_000_000,
            std::time::Duration::from_secs(600),
        )
    }

    fn shapes() -> Vec<Session> {
        let pending = session();
        let mut authorized = session()
            .with_code_challenge(CodeChallenge::parse(
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ))
            .with_return_url(Some(
                "https://abc.execute-api.eu-west-2.amazonaws.com/callback".into(),
            ));
        authorized.status = Status::Authorized {
            sealed_code: vec![1, 2, 3],
        };
        authorized.lease = Some(Lease {
            id: "lease".into(),
            until_ms: 1_800_000_030_000,
        });
        let mut denied = session();
        denied.status = Status::Denied;
        let device = session().with_device(DeviceGrant {
            client_id: "my-app".into(),
            interval_ms: 5000,
            next_poll_ms: Some(1_800_000_005_000),
        });
        let fresh_device = session().with_device(DeviceGrant {
            client_id: "my-app".into(),
            interval_ms: 5000,
            next_poll_ms: None,
        });
        vec![pending, authorized, denied, device, fresh_device]
    }

    #[test]
    fn every_shape_of_session_round_trips() {
        for original in shapes() {
            let record = SessionRecord::from(&original);
            assert_eq!(Session::try_from(record).unwrap(), original);
        }
    }

    #[test]
    fn the_record_keeps_the_stored_names_and_units() {
        let [pending, authorized, denied, ..] = &shapes()[..] else {
            unreachable!("five shapes")
        };
        let record = SessionRecord::from(authorized);
        assert_eq!(record.status, "authorized");
        assert_eq!(record.sealed_code.as_deref(), Some(&[1, 2, 3][..]));
        assert_eq!(record.state, authorized.state.as_text());
        assert_eq!(record.lease_id.as_deref(), Some("lease"));
        assert_eq!(SessionRecord::from(pending).status, "pending");
        assert_eq!(SessionRecord::from(pending).sealed_code, None);
        assert_eq!(SessionRecord::from(denied).status, "denied");
        // purge_at is in seconds (DynamoDB's TTL attribute), the rest in milliseconds.
        assert!(record.purge_at < 10_000_000_000);
        assert!(record.purge_at * 1000 > record.expires_at_ms);
    }

    #[test]
    fn malformed_records_are_corrupt_naming_the_field() {
        let good = SessionRecord::from(&session());
        let authorized = SessionRecord::from(&shapes()[1]);
        let device = SessionRecord::from(&shapes()[3]);
        let cases: Vec<(&str, SessionRecord)> = vec![
            (
                "status",
                SessionRecord {
                    status: "redeemed".into(),
                    ..good.clone()
                },
            ),
            (
                "status",
                SessionRecord {
                    status: "authorized".into(),
                    ..good.clone()
                },
            ),
            (
                "status",
                SessionRecord {
                    sealed_code: Some(vec![1]),
                    ..good.clone()
                },
            ),
            (
                "status",
                SessionRecord {
                    status: "denied".into(),
                    ..authorized.clone()
                },
            ),
            (
                "status",
                SessionRecord {
                    status: "pending".into(),
                    ..authorized
                },
            ),
            (
                "state",
                SessionRecord {
                    state: "not-a-state".into(),
                    ..good.clone()
                },
            ),
            (
                "seal_public_key",
                SessionRecord {
                    seal_public_key: vec![0; 5],
                    ..good.clone()
                },
            ),
            (
                "code_challenge",
                SessionRecord {
                    code_challenge: Some("plain".into()),
                    ..good.clone()
                },
            ),
            (
                "lease_id",
                SessionRecord {
                    lease_id: Some("x".into()),
                    ..good.clone()
                },
            ),
            (
                "lease_id",
                SessionRecord {
                    lease_until_ms: Some(1),
                    ..good.clone()
                },
            ),
            (
                "device_client_id",
                SessionRecord {
                    interval_ms: None,
                    ..device.clone()
                },
            ),
            (
                "device_client_id",
                SessionRecord {
                    device_client_id: None,
                    ..device
                },
            ),
            (
                "device_client_id",
                SessionRecord {
                    interval_ms: Some(5000),
                    ..good
                },
            ),
        ];
        for (field, record) in cases {
            match Session::try_from(record) {
                Err(StoreError::Corrupt(what)) => {
                    assert_eq!(what, format!("session field {field}"))
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
