//! Sessions in DynamoDB: the AWS shape's store, with the same semantics as SQLite.
//!
//! Every write is a conditional expression, so DynamoDB itself decides races between Lambda
//! instances. Reads are strongly consistent (a poll right after the callback must see the code).
//! `purge_at` is the table's TTL attribute; DynamoDB deletes lazily (up to days later), so expiry
//! is always checked on read and TTL is only cleanup.
//!
//! The SDK resends a request whose attempt timed out or lost its connection, and the first
//! attempt may have been applied. So every condition also accepts what its own earlier attempt
//! left: the session's sealing key on create, the same sealed code on authorize, the same lease
//! id on claim, release and finish, the session on a user code, and elsewhere an attempt value
//! drawn per call and written with the change (`attempt`: a denial, a paced poll, a counter). A
//! condition that fails for another writer's reason still fails.

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use monzo_auth_domain::session::{Lease, Pace, Session, State, UserCodeRecord};
use monzo_auth_domain::store::record::status;
use monzo_auth_domain::store::{
    Claimed, CounterStore, SessionRecord, SessionStore, StoreError, UserCodeStore,
};

/// An item as DynamoDB returns it.
pub type Item = HashMap<String, AttributeValue>;

/// Attribute names, in one place for the conversions and the expressions.
mod attr {
    /// The table's partition key: a session's state, `user#…` for a user code, `limit#…` for a
    /// failure counter.
    pub const KEY: &str = "pk";
    /// A user code item's session.
    pub const STATE: &str = "state";
    pub const STATUS: &str = "status";
    pub const SEAL_PUBLIC_KEY: &str = "seal_public_key";
    pub const SEALED_CODE: &str = "sealed_code";
    pub const CODE_CHALLENGE: &str = "code_challenge";
    pub const RETURN_URL: &str = "return_url";
    pub const CREATED_AT_MS: &str = "created_at_ms";
    pub const EXPIRES_AT_MS: &str = "expires_at_ms";
    /// The table's TTL attribute (epoch seconds).
    pub const PURGE_AT: &str = "purge_at";
    pub const LEASE_ID: &str = "lease_id";
    pub const LEASE_UNTIL_MS: &str = "lease_until_ms";
    pub const DEVICE_CLIENT_ID: &str = "device_client_id";
    pub const INTERVAL_MS: &str = "interval_ms";
    pub const NEXT_POLL_MS: &str = "next_poll_ms";
    pub const COUNT: &str = "count";
    /// The attempt value of the last write that carries one (denials, pacing, counters).
    pub const ATTEMPT: &str = "attempt";
}

/// A value that names one call's write, the same in every attempt the SDK sends of it.
fn attempt() -> AttributeValue {
    s(monzo_auth_domain::session::random_token::<12>())
}

#[derive(Clone)]
pub struct DynamoDbStore {
    client: Client,
    table: String,
}

impl DynamoDbStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// One item by its key, strongly consistent (a poll right after a callback must see it).
    async fn get_item(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| failure("GetItem", &err))?;
        Ok(output.item)
    }
}

/// A DynamoDB call failed for a reason other than its condition. Carries the operation and
/// AWS's error code only: messages can quote the request.
#[derive(Debug)]
pub struct DynamoDbError {
    operation: &'static str,
    code: String,
}

impl fmt::Display for DynamoDbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DynamoDB {} failed: {}", self.operation, self.code)
    }
}

impl std::error::Error for DynamoDbError {}

fn failure<E: ProvideErrorMetadata, R>(
    operation: &'static str,
    err: &SdkError<E, R>,
) -> StoreError {
    let code = match err {
        SdkError::ServiceError(service) => service
            .err()
            .code()
            .unwrap_or("unknown service error")
            .to_owned(),
        SdkError::TimeoutError(_) => "timeout".to_owned(),
        SdkError::DispatchFailure(_) => "could not reach DynamoDB".to_owned(),
        SdkError::ResponseError(_) => "unreadable response".to_owned(),
        SdkError::ConstructionFailure(_) => "request could not be built".to_owned(),
        _ => "unknown error".to_owned(),
    };
    StoreError::unavailable(DynamoDbError { operation, code })
}

/// `true` when the call failed only because its condition did not hold.
fn condition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn b(value: Vec<u8>) -> AttributeValue {
    AttributeValue::B(Blob::new(value))
}

fn key(state: &State) -> Item {
    key_of(state.as_text())
}

fn key_of(pk: impl Into<String>) -> Item {
    HashMap::from([(attr::KEY.to_owned(), s(pk))])
}

/// The item that stores `session`.
pub fn to_item(session: &Session) -> Item {
    let r = SessionRecord::from(session);
    let mut item = key_of(r.state);
    let mut put = |name: &str, value| {
        item.insert(name.to_owned(), value);
    };
    put(attr::STATUS, s(r.status));
    put(attr::SEAL_PUBLIC_KEY, b(r.seal_public_key));
    if let Some(code) = r.sealed_code {
        put(attr::SEALED_CODE, b(code));
    }
    if let Some(challenge) = r.code_challenge {
        put(attr::CODE_CHALLENGE, s(challenge));
    }
    if let Some(url) = r.return_url {
        put(attr::RETURN_URL, s(url));
    }
    put(attr::CREATED_AT_MS, n(r.created_at_ms));
    put(attr::EXPIRES_AT_MS, n(r.expires_at_ms));
    put(attr::PURGE_AT, n(r.purge_at));
    if let Some(id) = r.lease_id {
        put(attr::LEASE_ID, s(id));
    }
    if let Some(until) = r.lease_until_ms {
        put(attr::LEASE_UNTIL_MS, n(until));
    }
    if let Some(client_id) = r.device_client_id {
        put(attr::DEVICE_CLIENT_ID, s(client_id));
    }
    if let Some(interval) = r.interval_ms {
        put(attr::INTERVAL_MS, n(interval));
    }
    if let Some(next) = r.next_poll_ms {
        put(attr::NEXT_POLL_MS, n(next));
    }
    item
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("item attribute {what}"))
}

fn get_s<'a>(item: &'a Item, name: &str) -> Result<Option<&'a str>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::S(text)) => Ok(Some(text)),
        Some(_) => Err(corrupt(name)),
    }
}

fn get_n(item: &Item, name: &str) -> Result<Option<i64>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(text)) => text.parse().map(Some).map_err(|_| corrupt(name)),
        Some(_) => Err(corrupt(name)),
    }
}

fn get_b<'a>(item: &'a Item, name: &str) -> Result<Option<&'a [u8]>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::B(blob)) => Ok(Some(blob.as_ref())),
        Some(_) => Err(corrupt(name)),
    }
}

fn required<T>(value: Option<T>, name: &str) -> Result<T, StoreError> {
    value.ok_or_else(|| corrupt(name))
}

/// A session item read back (the other half of `to_item`).
pub fn session_from_item(item: &Item) -> Result<Session, StoreError> {
    let text = |name| get_s(item, name).map(|v| v.map(str::to_owned));
    let bytes = |name| get_b(item, name).map(|v| v.map(<[u8]>::to_vec));
    let number = |name| get_n(item, name);
    Session::try_from(SessionRecord {
        state: required(text(attr::KEY)?, attr::KEY)?,
        status: required(text(attr::STATUS)?, attr::STATUS)?,
        seal_public_key: required(bytes(attr::SEAL_PUBLIC_KEY)?, attr::SEAL_PUBLIC_KEY)?,
        sealed_code: bytes(attr::SEALED_CODE)?,
        code_challenge: text(attr::CODE_CHALLENGE)?,
        return_url: text(attr::RETURN_URL)?,
        created_at_ms: required(number(attr::CREATED_AT_MS)?, attr::CREATED_AT_MS)?,
        expires_at_ms: required(number(attr::EXPIRES_AT_MS)?, attr::EXPIRES_AT_MS)?,
        purge_at: required(number(attr::PURGE_AT)?, attr::PURGE_AT)?,
        lease_id: text(attr::LEASE_ID)?,
        lease_until_ms: number(attr::LEASE_UNTIL_MS)?,
        device_client_id: text(attr::DEVICE_CLIENT_ID)?,
        interval_ms: number(attr::INTERVAL_MS)?,
        next_poll_ms: number(attr::NEXT_POLL_MS)?,
    })
}

#[async_trait]
impl SessionStore for DynamoDbStore {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(session)))
            // Or this very session, put by an earlier attempt (sealing keys never repeat).
            .condition_expression("attribute_not_exists(#pk) OR #seal = :seal")
            .expression_attribute_names("#pk", attr::KEY)
            .expression_attribute_names("#seal", attr::SEAL_PUBLIC_KEY)
            .expression_attribute_values(":seal", b(session.seal_public_key.0.to_vec()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if condition_failed(&err) => Err(StoreError::Conflict),
            Err(err) => Err(failure("PutItem", &err)),
        }
    }

    async fn health(&self) -> Result<(), StoreError> {
        // A strongly consistent read of a key no item has: the table answers, or it does not.
        self.get_item(key_of("health#probe")).await.map(|_| ())
    }

    async fn get(&self, state: &State) -> Result<Option<Session>, StoreError> {
        let item = self.get_item(key(state)).await?;
        item.as_ref().map(session_from_item).transpose()
    }

    async fn authorize(
        &self,
        state: &State,
        sealed_code: &[u8],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(state)))
            .update_expression("SET #status = :authorized, #code = :code")
            .condition_expression(
                "(#status = :pending AND #expires > :now) \
                 OR (#status = :authorized AND #code = :code)",
            )
            .expression_attribute_names("#status", attr::STATUS)
            .expression_attribute_names("#code", attr::SEALED_CODE)
            .expression_attribute_names("#expires", attr::EXPIRES_AT_MS)
            .expression_attribute_values(":authorized", s(status::AUTHORIZED))
            .expression_attribute_values(":pending", s(status::PENDING))
            .expression_attribute_values(":code", b(sealed_code.to_vec()))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        applied("UpdateItem", result)
    }

    async fn deny(&self, state: &State, now_ms: i64) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(state)))
            .update_expression("SET #status = :denied, #attempt = :attempt")
            .condition_expression(
                "(#status = :pending AND #expires > :now) \
                 OR (#status = :denied AND #attempt = :attempt)",
            )
            .expression_attribute_names("#status", attr::STATUS)
            .expression_attribute_names("#expires", attr::EXPIRES_AT_MS)
            .expression_attribute_names("#attempt", attr::ATTEMPT)
            .expression_attribute_values(":attempt", attempt())
            .expression_attribute_values(":denied", s(status::DENIED))
            .expression_attribute_values(":pending", s(status::PENDING))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        applied("UpdateItem", result)
    }

    async fn claim(
        &self,
        state: &State,
        lease: &Lease,
        now_ms: i64,
    ) -> Result<Option<Claimed>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(state)))
            .update_expression("SET #lease = :lease, #until = :until")
            .condition_expression(
                "#status = :authorized AND (#lease = :lease OR (#expires > :now \
                 AND (attribute_not_exists(#until) OR #until <= :now)))",
            )
            .expression_attribute_names("#status", attr::STATUS)
            .expression_attribute_names("#expires", attr::EXPIRES_AT_MS)
            .expression_attribute_names("#lease", attr::LEASE_ID)
            .expression_attribute_names("#until", attr::LEASE_UNTIL_MS)
            .expression_attribute_values(":authorized", s(status::AUTHORIZED))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":lease", s(lease.id.clone()))
            .expression_attribute_values(":until", n(lease.until_ms))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                let session = output
                    .attributes()
                    .map(session_from_item)
                    .transpose()?
                    .ok_or_else(|| corrupt("(claim returned no attributes)"))?;
                Claimed::try_from(session).map(Some)
            }
            Err(err) if condition_failed(&err) => Ok(None),
            Err(err) => Err(failure("UpdateItem", &err)),
        }
    }

    async fn release(&self, state: &State, lease_id: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(state)))
            .update_expression("REMOVE #lease, #until")
            // Released already counts; an update must never bring a finished session back.
            .condition_expression(
                "attribute_exists(#pk) AND (attribute_not_exists(#lease) OR #lease = :lease)",
            )
            .expression_attribute_names("#pk", attr::KEY)
            .expression_attribute_names("#lease", attr::LEASE_ID)
            .expression_attribute_names("#until", attr::LEASE_UNTIL_MS)
            .expression_attribute_values(":lease", s(lease_id))
            .send()
            .await;
        applied("UpdateItem", result)
    }

    async fn finish(&self, state: &State, lease_id: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(state)))
            .condition_expression("attribute_not_exists(#pk) OR #lease = :lease")
            .expression_attribute_names("#pk", attr::KEY)
            .expression_attribute_names("#lease", attr::LEASE_ID)
            .expression_attribute_values(":lease", s(lease_id))
            .send()
            .await;
        applied("DeleteItem", result)
    }

    async fn pace_poll(
        &self,
        state: &State,
        now_ms: i64,
        step_ms: i64,
    ) -> Result<Pace, StoreError> {
        let attempt = attempt();
        // On time: the next interval starts now. (Right-hand sides read the item as it was.)
        let on_time = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(state)))
            .update_expression("SET #next = #interval + :now, #attempt = :attempt")
            .condition_expression(
                "attribute_exists(#interval) \
                 AND (attribute_not_exists(#next) OR #next <= :now OR #attempt = :attempt)",
            )
            .expression_attribute_names("#next", attr::NEXT_POLL_MS)
            .expression_attribute_names("#interval", attr::INTERVAL_MS)
            .expression_attribute_names("#attempt", attr::ATTEMPT)
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":attempt", attempt.clone())
            .send()
            .await;
        match on_time {
            Ok(_) => return Ok(Pace::Allowed),
            Err(err) if condition_failed(&err) => {}
            Err(err) => return Err(failure("UpdateItem", &err)),
        }
        // Too soon: the interval grows for good and starts anew.
        let slowed = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(state)))
            .update_expression(
                "SET #interval = #interval + :step, #next = #interval + :later, \
                 #attempt = :attempt",
            )
            .condition_expression(
                "attribute_exists(#interval) \
                 AND (attribute_not_exists(#attempt) OR #attempt <> :attempt)",
            )
            .expression_attribute_names("#next", attr::NEXT_POLL_MS)
            .expression_attribute_names("#interval", attr::INTERVAL_MS)
            .expression_attribute_names("#attempt", attr::ATTEMPT)
            .expression_attribute_values(":step", n(step_ms))
            .expression_attribute_values(":later", n(now_ms + step_ms))
            .expression_attribute_values(":attempt", attempt.clone())
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match slowed {
            Ok(output) => {
                let interval_ms = output
                    .attributes()
                    .map(|item| get_n(item, attr::INTERVAL_MS))
                    .transpose()?
                    .flatten()
                    .ok_or_else(|| corrupt(attr::INTERVAL_MS))?;
                Ok(Pace::SlowDown { interval_ms })
            }
            Err(err) if condition_failed(&err) => match own_attempt(&err, &attempt) {
                // An earlier attempt of this very call grew the interval already.
                Some(item) => Ok(Pace::SlowDown {
                    interval_ms: required(get_n(item, attr::INTERVAL_MS)?, attr::INTERVAL_MS)?,
                }),
                None => Ok(Pace::NotFound),
            },
            Err(err) => Err(failure("UpdateItem", &err)),
        }
    }
}

#[async_trait]
impl UserCodeStore for DynamoDbStore {
    async fn create_user_code(
        &self,
        record: &UserCodeRecord,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut item = key_of(record.key.clone());
        item.insert(attr::STATE.into(), s(record.state.as_text()));
        item.insert(attr::EXPIRES_AT_MS.into(), n(record.expires_at_ms));
        item.insert(attr::PURGE_AT.into(), n(record.purge_at));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            // A live code keeps its key; an expired one (not yet purged by TTL) gives it up; one
            // already mapping to this session is an earlier attempt's.
            .condition_expression(
                "attribute_not_exists(#pk) OR #expires <= :now OR #state = :state",
            )
            .expression_attribute_names("#pk", attr::KEY)
            .expression_attribute_names("#expires", attr::EXPIRES_AT_MS)
            .expression_attribute_names("#state", attr::STATE)
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":state", s(record.state.as_text()))
            .send()
            .await;
        applied("PutItem", result)
    }

    async fn find_user_code(&self, key: &str) -> Result<Option<UserCodeRecord>, StoreError> {
        let Some(item) = self.get_item(key_of(key)).await? else {
            return Ok(None);
        };
        let item = &item;
        let state = required(get_s(item, attr::STATE)?, attr::STATE)?;
        Ok(Some(UserCodeRecord {
            key: key.to_owned(),
            state: State::parse(state).ok_or_else(|| corrupt(attr::STATE))?,
            expires_at_ms: required(get_n(item, attr::EXPIRES_AT_MS)?, attr::EXPIRES_AT_MS)?,
            purge_at: required(get_n(item, attr::PURGE_AT)?, attr::PURGE_AT)?,
        }))
    }

    /// Two conditional writes, not a transaction (the functions' role has no TransactWriteItems
    /// and a device login needs none): a code that is taken deletes the session again, and a
    /// crash in between leaves only a pending session without a code, which expires.
    async fn create_with_user_code(
        &self,
        session: &Session,
        record: &UserCodeRecord,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.create(session).await?;
        if self.create_user_code(record, now_ms).await? {
            return Ok(true);
        }
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(&session.state)))
            .send()
            .await
            .map_err(|err| failure("DeleteItem", &err))?;
        Ok(false)
    }
}

#[async_trait]
impl CounterStore for DynamoDbStore {
    async fn failures(&self, key: &str) -> Result<u64, StoreError> {
        let item = self.get_item(key_of(key)).await?;
        let count = item
            .as_ref()
            .map(|item| get_n(item, attr::COUNT))
            .transpose()?
            .flatten();
        Ok(count.unwrap_or(0).max(0) as u64)
    }

    async fn add_failure(&self, key: &str, purge_at: i64) -> Result<u64, StoreError> {
        let attempt = attempt();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .update_expression("ADD #count :one SET #purge = :purge, #attempt = :attempt")
            // Counted once per call, unless another request's count lands between an attempt
            // and its resend (one attempt value is kept, not all of them).
            .condition_expression("attribute_not_exists(#attempt) OR #attempt <> :attempt")
            .expression_attribute_names("#count", attr::COUNT)
            .expression_attribute_names("#purge", attr::PURGE_AT)
            .expression_attribute_names("#attempt", attr::ATTEMPT)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":purge", n(purge_at))
            .expression_attribute_values(":attempt", attempt.clone())
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let count = match &result {
            Ok(output) => output.attributes(),
            Err(err) if condition_failed(err) => own_attempt(err, &attempt),
            Err(err) => return Err(failure("UpdateItem", err)),
        }
        .map(|item| get_n(item, attr::COUNT))
        .transpose()?
        .flatten()
        .ok_or_else(|| corrupt(attr::COUNT))?;
        Ok(count.max(0) as u64)
    }

    async fn refund_failure(&self, key: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .update_expression("ADD #count :minus_one SET #attempt = :attempt")
            .condition_expression(
                "#count > :zero AND (attribute_not_exists(#attempt) OR #attempt <> :attempt)",
            )
            .expression_attribute_names("#count", attr::COUNT)
            .expression_attribute_names("#attempt", attr::ATTEMPT)
            .expression_attribute_values(":attempt", attempt())
            .expression_attribute_values(":minus_one", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        // Nothing to take back (no counter, or at zero) is not a failure.
        applied("UpdateItem", result).map(|_| ())
    }
}

/// The item as it was when an update's condition failed (asked for with
/// `ReturnValuesOnConditionCheckFailure::AllOld`), if `attempt` wrote it: this call's own
/// earlier attempt was applied.
fn own_attempt<'a, R>(
    err: &'a SdkError<UpdateItemError, R>,
    attempt: &AttributeValue,
) -> Option<&'a Item> {
    match err.as_service_error()? {
        UpdateItemError::ConditionalCheckFailedException(failed) => failed
            .item()
            .filter(|item| item.get(attr::ATTEMPT) == Some(attempt)),
        _ => None,
    }
}

/// A conditional write's outcome: applied, or its condition did not hold.
fn applied<T, E: ProvideErrorMetadata, R>(
    operation: &'static str,
    result: Result<T, SdkError<E, R>>,
) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(err) if condition_failed(&err) => Ok(false),
        Err(err) => Err(failure(operation, &err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monzo_auth_domain::session::{CodeChallenge, DeviceGrant, PollId, Status};

    fn session() -> Session {
        Session::new_pending(
            &PollId::generate(0),
            1_800_000_000_000,
            std::time::Duration::from_secs(600),
        )
    }

    #[test]
    fn every_shape_of_session_round_trips() {
        let pending = session();
        let mut authorized = session();
        authorized.status = Status::Authorized {
            sealed_code: vec![1, 2, 3],
        };
        authorized.lease = Some(Lease {
            id: "lease".into(),
            until_ms: 1_800_000_030_000,
        });
        authorized.code_challenge =
            CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        authorized.return_url =
            Some("https://abc.execute-api.eu-west-2.amazonaws.com/callback".into());
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
        for original in [pending, authorized, denied, device, fresh_device] {
            let item = to_item(&original);
            assert_eq!(session_from_item(&item).unwrap(), original);
        }
    }

    #[test]
    fn the_item_uses_the_ttl_attribute_in_epoch_seconds() {
        let original = session();
        let item = to_item(&original);
        assert_eq!(
            item[attr::PURGE_AT],
            AttributeValue::N(original.purge_at.to_string())
        );
        assert!(
            original.purge_at < 10_000_000_000,
            "seconds, not milliseconds"
        );
        assert!(original.purge_at * 1000 > original.expires_at_ms);
    }

    #[test]
    fn malformed_items_are_corrupt_not_panics() {
        let good = to_item(&session());
        let mut cases = Vec::new();
        for missing in [
            attr::KEY,
            attr::STATUS,
            attr::SEAL_PUBLIC_KEY,
            attr::EXPIRES_AT_MS,
            attr::PURGE_AT,
        ] {
            let mut item = good.clone();
            item.remove(missing);
            cases.push(item);
        }
        let mut wrong_type = good.clone();
        wrong_type.insert(attr::EXPIRES_AT_MS.into(), s("soon"));
        cases.push(wrong_type);
        let mut bad_status = good.clone();
        bad_status.insert(attr::STATUS.into(), s(status::AUTHORIZED));
        cases.push(bad_status);
        let mut short_key = good.clone();
        short_key.insert(
            attr::SEAL_PUBLIC_KEY.into(),
            AttributeValue::B(Blob::new(vec![0; 5])),
        );
        cases.push(short_key);
        let mut half_lease = good;
        half_lease.insert(attr::LEASE_ID.into(), s("x"));
        cases.push(half_lease);
        for item in cases {
            assert!(
                matches!(session_from_item(&item), Err(StoreError::Corrupt(_))),
                "{item:?}"
            );
        }
    }
}
