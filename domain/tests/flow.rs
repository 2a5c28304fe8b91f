//! The flow itself, in process: [`Flow`] over the memory store and the stand-in for Monzo (its
//! login decided in process, its API over loopback), on a clock the test moves by hand. No HTTP
//! to the service and no sleeping: expiry, leases, device pacing and guess windows are reached by
//! moving the clock.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use fake_monzo::{ClientRegistration, Failure, FakeMonzo, FakeMonzoConfig, RunningFakeMonzo};
use monzo_auth_domain::clock::{Clock as _, ManualClock};
use monzo_auth_domain::flow::{
    Callback, CallbackError, CallbackOutcome, ClientAddr, DeviceError, DevicePollError, Flow,
    FlowSettings, GuessLimits, Poll, PollError, RefreshError, TokenError,
};
use monzo_auth_domain::monzo::{MonzoClient, MonzoSettings};
use monzo_auth_domain::secret::PlainSecret;
use monzo_auth_domain::session::{
    AuthCode, ClientId, CodeChallenge, CodeVerifier, PollId, RefreshToken, State, UserCode,
    random_token,
};
use monzo_auth_domain::store::MemoryStore;
use monzo_auth_domain::urls::{PublicUrls, UrlResolver};
use url::Url;

const CLIENT_ID: &str = "oauth2client_00009test";
/// Two of the stand-in's default users.
const DEMO_USER: &str = "user_0000demo";
const OTHER_USER: &str = "user_0000other";

/// What the person does at Monzo's login page.
#[derive(Clone, Copy)]
enum Decision {
    Approve,
    Deny,
}

const TTL: Duration = Duration::from_secs(600);
const INTERVAL: Duration = Duration::from_secs(5);
const MONZO_TIMEOUT: Duration = Duration::from_secs(5);

struct World {
    flow: Arc<Flow>,
    clock: ManualClock,
    monzo: RunningFakeMonzo,
    urls: PublicUrls,
}

struct Options {
    allowed_user_ids: Option<BTreeSet<String>>,
    guess_limits: GuessLimits,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            allowed_user_ids: None,
            guess_limits: GuessLimits {
                per_address: 3,
                per_network: 1000,
                global: 1000,
                window: Duration::from_secs(600),
            },
        }
    }
}

async fn world() -> World {
    world_with(Options::default()).await
}

async fn world_with(options: Options) -> World {
    let monzo = FakeMonzo::start_on_loopback(FakeMonzoConfig::default())
        .await
        .unwrap();
    let callback: Url = "http://127.0.0.1:9/callback".parse().unwrap();
    let secret = format!("mnzconf.{}", random_token::<24>());
    monzo.monzo.register_client(ClientRegistration {
        client_id: CLIENT_ID.into(),
        client_secret: secret.clone(),
        redirect_uri: callback.to_string(),
        confidential: true,
    });
    let settings = MonzoSettings {
        client_id: CLIENT_ID.into(),
        auth_url: monzo.auth_url.clone(),
        api_url: monzo.api_url.clone(),
        connect_timeout: MONZO_TIMEOUT,
        total_timeout: MONZO_TIMEOUT,
    };
    let api = monzo_auth_monzo_http::open_api(&settings).unwrap();
    let resolver = UrlResolver::new(Some(callback), None);
    let urls = resolver.resolve(None).unwrap();
    let clock = ManualClock::new();
    let flow = Flow::new(
        Arc::new(MemoryStore::new()),
        MonzoClient::new(settings, api),
        Arc::new(PlainSecret::new(secret.into())),
        Arc::new(clock.clone()),
        FlowSettings {
            urls: resolver,
            guess_limits: options.guess_limits,
            session_ttl: TTL,
            poll_interval: INTERVAL,
            lease: FlowSettings::lease_for(MONZO_TIMEOUT),
            allowed_user_ids: options.allowed_user_ids,
        },
    );
    World {
        flow: Arc::new(flow),
        clock,
        monzo,
        urls,
    }
}

impl World {
    /// A simple session, and what Monzo handed back for it after `user` decided.
    async fn started(&self) -> (PollId, Url) {
        let started = self.flow.start(None, &self.urls).await.unwrap();
        (started.id, started.login_url)
    }

    /// What Monzo's redirect carries after `user` decided on `login_url`.
    async fn at_monzo(&self, login_url: &Url, user: &str, decision: Decision) -> Callback {
        let redirect = self
            .monzo
            .monzo
            .decide(login_url, user, matches!(decision, Decision::Approve))
            .expect("Monzo redirects back");
        let param = |name| {
            redirect
                .query_pairs()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        };
        let state = State::parse(&param("state").unwrap()).unwrap();
        match param("code") {
            Some(code) => Callback::Code {
                state,
                code: AuthCode::parse(code).unwrap(),
            },
            None => Callback::Refused { state },
        }
    }

    /// A session the user approved at Monzo as `user`.
    async fn authorized(&self, user: &str) -> PollId {
        let (id, login_url) = self.started().await;
        let callback = self.at_monzo(&login_url, user, Decision::Approve).await;
        assert_eq!(
            self.flow.callback(callback).await.unwrap(),
            CallbackOutcome::Authorized
        );
        id
    }

    async fn poll(&self, id: &PollId) -> Result<Poll, PollError> {
        self.flow.poll(id, None).await
    }

    fn stats(&self) -> fake_monzo::Stats {
        self.monzo.monzo.stats()
    }
}

fn is_pending(poll: &Result<Poll, PollError>) -> bool {
    matches!(poll, Ok(Poll::Pending { .. }))
}

fn token_of(poll: Result<Poll, PollError>) -> monzo_auth_domain::flow::IssuedToken {
    match poll {
        Ok(Poll::Token(token)) => token,
        other => panic!("expected a token, got {other:?}"),
    }
}

#[tokio::test]
async fn a_session_goes_pending_authorized_redeemed_and_then_is_gone() {
    let world = world().await;
    let (id, login_url) = world.started().await;
    assert!(is_pending(&world.poll(&id).await));
    let callback = world
        .at_monzo(&login_url, DEMO_USER, Decision::Approve)
        .await;
    assert_eq!(
        world.flow.callback(callback).await.unwrap(),
        CallbackOutcome::Authorized
    );
    let token = token_of(world.poll(&id).await);
    assert_eq!(token.user_id, DEMO_USER);
    assert_eq!(
        token.expires_at.unix_timestamp(),
        world.clock.now_ms() / 1000 + token.expires_in as i64,
        "the expiry is counted from the flow's clock"
    );
    assert!(matches!(
        world.poll(&id).await,
        Err(PollError::Token(TokenError::NotFound))
    ));
    assert_eq!(world.stats().successful_code_exchanges, 1);
}

#[tokio::test]
async fn a_second_callback_for_the_same_state_is_refused() {
    let world = world().await;
    let (_, login_url) = world.started().await;
    let first = world
        .at_monzo(&login_url, DEMO_USER, Decision::Approve)
        .await;
    let Callback::Code { state, code } = first else {
        panic!("no code")
    };
    let replay = Callback::Code {
        state: state.clone(),
        code: code.clone(),
    };
    world
        .flow
        .callback(Callback::Code { state, code })
        .await
        .unwrap();
    assert!(matches!(
        world.flow.callback(replay).await,
        Err(CallbackError::UnusableState)
    ));
}

#[tokio::test]
async fn a_denial_ends_the_session_for_its_poll() {
    let world = world().await;
    let (id, login_url) = world.started().await;
    let callback = world.at_monzo(&login_url, DEMO_USER, Decision::Deny).await;
    assert_eq!(
        world.flow.callback(callback).await.unwrap(),
        CallbackOutcome::Denied
    );
    assert!(matches!(
        world.poll(&id).await,
        Err(PollError::Token(TokenError::Denied))
    ));
}

#[tokio::test]
async fn a_session_expires_at_its_ttl_for_the_poll_and_the_callback() {
    let world = world().await;
    let (id, login_url) = world.started().await;
    world.clock.advance(TTL - Duration::from_millis(1));
    assert!(is_pending(&world.poll(&id).await), "alive until its TTL");
    world.clock.advance(Duration::from_millis(1));
    assert!(matches!(
        world.poll(&id).await,
        Err(PollError::Token(TokenError::Expired))
    ));
    let callback = world
        .at_monzo(&login_url, DEMO_USER, Decision::Approve)
        .await;
    assert!(matches!(
        world.flow.callback(callback).await,
        Err(CallbackError::UnusableState)
    ));
}

#[tokio::test]
async fn an_authorized_session_left_past_its_ttl_is_never_exchanged() {
    let world = world().await;
    let id = world.authorized(DEMO_USER).await;
    world.clock.advance(TTL);
    assert!(matches!(
        world.poll(&id).await,
        Err(PollError::Token(TokenError::Expired))
    ));
    assert_eq!(world.stats().code_exchanges, 0);
}

#[tokio::test]
async fn concurrent_polls_redeem_exactly_once() {
    let world = world().await;
    let id = world.authorized(DEMO_USER).await;
    let polls = (0..16).map(|_| {
        let flow = Arc::clone(&world.flow);
        let id = id.clone();
        tokio::spawn(async move { flow.poll(&id, None).await })
    });
    let mut tokens = 0;
    for poll in polls {
        match poll.await.unwrap() {
            Ok(Poll::Token(_)) => tokens += 1,
            // Lost the race: pending while the winner holds the claim, or gone after.
            Ok(Poll::Pending { .. }) | Err(PollError::Token(TokenError::NotFound)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(tokens, 1);
    assert_eq!(world.stats().code_exchanges, 1);
}

#[tokio::test]
async fn a_failure_where_monzo_certainly_did_not_act_is_retried_at_once() {
    let world = world().await;
    let id = world.authorized(DEMO_USER).await;
    world.monzo.monzo.fail_next(1, Failure::Status(503));
    assert!(matches!(
        world.poll(&id).await,
        Err(PollError::Token(TokenError::Upstream(_)))
    ));
    // No time passes: the claim was released.
    token_of(world.poll(&id).await);
}

#[tokio::test]
async fn after_an_unknown_outcome_the_claim_is_kept_until_its_lease_lapses() {
    let world = world().await;
    let id = world.authorized(DEMO_USER).await;
    // A 500 may mean Monzo acted: no second exchange until the first surely ended.
    world.monzo.monzo.fail_next(1, Failure::Status(500));
    assert!(matches!(
        world.poll(&id).await,
        Err(PollError::Token(TokenError::Upstream(_)))
    ));
    let lease = FlowSettings::lease_for(MONZO_TIMEOUT);
    assert!(is_pending(&world.poll(&id).await));
    world.clock.advance(lease - Duration::from_millis(1));
    assert!(is_pending(&world.poll(&id).await), "the lease still holds");
    assert_eq!(world.stats().token_calls, 1, "no exchange while it holds");
    world.clock.advance(Duration::from_millis(1));
    // The stand-in's 500 did not look at the code, so the retry succeeds.
    token_of(world.poll(&id).await);
    assert_eq!(world.stats().token_calls, 2);
}

#[tokio::test]
async fn monzo_rejecting_the_code_ends_the_session() {
    let world = world().await;
    let id = world.authorized(DEMO_USER).await;
    world.monzo.monzo.fail_next(1, Failure::Status(400));
    assert!(matches!(
        world.poll(&id).await,
        Err(PollError::Token(TokenError::CodeRejected))
    ));
    assert!(matches!(
        world.poll(&id).await,
        Err(PollError::Token(TokenError::NotFound))
    ));
}

#[tokio::test]
async fn a_code_challenge_needs_its_verifier() {
    let world = world().await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    let started = world.flow.start(challenge, &world.urls).await.unwrap();
    let callback = world
        .at_monzo(&started.login_url, DEMO_USER, Decision::Approve)
        .await;
    world.flow.callback(callback).await.unwrap();
    let wrong = CodeVerifier::parse("x".repeat(43)).unwrap();
    for attempt in [None, Some(&wrong)] {
        assert!(matches!(
            world.flow.poll(&started.id, attempt).await,
            Err(PollError::VerifierMismatch)
        ));
    }
    let right = CodeVerifier::parse(verifier).unwrap();
    match world.flow.poll(&started.id, Some(&right)).await {
        Ok(Poll::Token(_)) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_user_not_allowed_gets_no_token_and_it_is_logged_out_at_monzo() {
    let world = world_with(Options {
        allowed_user_ids: Some(BTreeSet::from([DEMO_USER.to_owned()])),
        ..Options::default()
    })
    .await;
    let id = world.authorized(OTHER_USER).await;
    assert!(matches!(
        world.poll(&id).await,
        Err(PollError::Token(TokenError::UserNotAllowed))
    ));
    assert_eq!(world.stats().logouts, vec![OTHER_USER.to_owned()]);
}

#[tokio::test]
async fn a_refresh_rotates_the_pair_and_the_old_refresh_token_is_refused() {
    let world = world().await;
    let id = world.authorized(DEMO_USER).await;
    let first = token_of(world.poll(&id).await);
    let old = RefreshToken::parse(secrecy::ExposeSecret::expose_secret(
        first
            .refresh_token
            .as_ref()
            .expect("a confidential client gets one"),
    ))
    .unwrap();
    world.clock.advance(Duration::from_secs(3600));
    let refreshed = world.flow.refresh(&old).await.unwrap();
    assert_eq!(refreshed.user_id, DEMO_USER);
    assert_eq!(
        refreshed.expires_at.unix_timestamp(),
        world.clock.now_ms() / 1000 + refreshed.expires_in as i64
    );
    assert!(matches!(
        world.flow.refresh(&old).await,
        Err(RefreshError::Rejected)
    ));
}

/// A device session and its user code.
async fn device(world: &World, client_id: &str) -> (PollId, UserCode) {
    let started = world
        .flow
        .start_device(ClientId::parse(client_id).unwrap(), &world.urls)
        .await
        .unwrap();
    assert_eq!(
        started.verification_uri.as_str(),
        "http://127.0.0.1:9/device"
    );
    (started.device_code, started.user_code)
}

fn device_pending(poll: &Result<Poll, DevicePollError>) -> bool {
    matches!(poll, Ok(Poll::Pending { .. }))
}

fn slowed_down(poll: &Result<Poll, DevicePollError>) -> bool {
    matches!(poll, Err(DevicePollError::SlowDown))
}

#[tokio::test]
async fn device_polls_are_paced_and_each_slow_down_adds_five_seconds_for_good() {
    let world = world().await;
    let (code, _) = device(&world, "my-app").await;
    let poll = || world.flow.poll_device(Some(&code), "my-app");
    assert!(device_pending(&poll().await), "the first poll is allowed");
    world.clock.advance(INTERVAL - Duration::from_millis(1));
    assert!(
        slowed_down(&poll().await),
        "too soon: the interval grows to 10 s"
    );
    // Each early poll starts the (grown) interval anew.
    world.clock.advance(INTERVAL);
    assert!(
        slowed_down(&poll().await),
        "5 s is no longer enough: now 15 s"
    );
    world.clock.advance(INTERVAL * 3 - Duration::from_millis(1));
    assert!(slowed_down(&poll().await), "just short of 15 s: now 20 s");
    world.clock.advance(INTERVAL * 4);
    assert!(device_pending(&poll().await), "a full 20 s later: allowed");
    world.clock.advance(INTERVAL * 4 - Duration::from_millis(1));
    assert!(
        slowed_down(&poll().await),
        "the interval stays where it grew to"
    );
}

#[tokio::test]
async fn a_device_poll_with_another_client_id_is_refused_and_does_not_count() {
    let world = world().await;
    let (code, _) = device(&world, "my-app").await;
    assert!(matches!(
        world.flow.poll_device(Some(&code), "another-app").await,
        Err(DevicePollError::InvalidClient)
    ));
    assert!(device_pending(
        &world.flow.poll_device(Some(&code), "my-app").await
    ));
    assert!(matches!(
        world.flow.poll_device(None, "my-app").await,
        Err(DevicePollError::Token(TokenError::NotFound))
    ));
}

#[tokio::test]
async fn a_device_login_goes_from_its_user_code_through_monzo_to_a_token() {
    let world = world().await;
    let (code, user_code) = device(&world, "my-app").await;
    let addr = Some(ClientAddr("192.0.2.1".parse().unwrap()));
    let login_url = world
        .flow
        .device_login_url(Some(user_code.clone()), addr)
        .await
        .unwrap();
    let callback = world
        .at_monzo(&login_url, DEMO_USER, Decision::Approve)
        .await;
    world.flow.callback(callback).await.unwrap();
    match world.flow.poll_device(Some(&code), "my-app").await {
        Ok(Poll::Token(token)) => assert_eq!(token.user_id, DEMO_USER),
        other => panic!("{other:?}"),
    }
    // The code has been through Monzo: it leads nowhere now.
    assert!(matches!(
        world.flow.find_device_session(Some(user_code), addr).await,
        Err(DeviceError::WrongCode | DeviceError::Expired)
    ));
}

#[tokio::test]
async fn a_device_session_expires_and_its_user_code_with_it() {
    let world = world().await;
    let (code, user_code) = device(&world, "my-app").await;
    world.clock.advance(TTL);
    assert!(matches!(
        world.flow.poll_device(Some(&code), "my-app").await,
        Err(DevicePollError::Token(TokenError::Expired))
    ));
    assert!(matches!(
        world.flow.find_device_session(Some(user_code), None).await,
        Err(DeviceError::WrongCode)
    ));
}

#[tokio::test]
async fn wrong_user_codes_are_limited_per_address_for_the_rest_of_the_window() {
    let world = world().await;
    let (_, user_code) = device(&world, "my-app").await;
    let guesser = Some(ClientAddr("198.51.100.7".parse().unwrap()));
    let other = Some(ClientAddr("203.0.113.9".parse().unwrap()));
    for typed in [
        UserCode::parse("BCDF-GHJK"),
        None,
        UserCode::parse("ZZZZ-ZZZZ"),
    ] {
        assert!(matches!(
            world.flow.find_device_session(typed, guesser).await,
            Err(DeviceError::WrongCode)
        ));
    }
    // The limit (3) is spent: even the right code is refused from there, until the window ends.
    let refused = world
        .flow
        .find_device_session(Some(user_code.clone()), guesser)
        .await;
    let Err(DeviceError::TooManyGuesses { retry_after_secs }) = refused else {
        panic!("{refused:?}")
    };
    assert!((1..=600).contains(&retry_after_secs), "{retry_after_secs}");
    // Another address is not held up.
    world
        .flow
        .find_device_session(Some(user_code.clone()), other)
        .await
        .unwrap();
    // The next window starts afresh (the session's TTL equals the window here, so start anew).
    world.clock.advance(Duration::from_secs(retry_after_secs));
    let (_, fresh) = device(&world, "my-app").await;
    world
        .flow
        .find_device_session(Some(fresh), guesser)
        .await
        .unwrap();
}

#[tokio::test]
async fn once_the_shared_budget_is_spent_each_fresh_network_gets_one_check() {
    let world = world_with(Options {
        guess_limits: GuessLimits {
            per_address: 10,
            per_network: 30,
            global: 2,
            window: Duration::from_secs(60),
        },
        ..Options::default()
    })
    .await;
    let (_, user_code) = device(&world, "my-app").await;
    let at = |text: &str| Some(ClientAddr(text.parse().unwrap()));
    for addr in ["192.0.2.1", "192.0.2.2"] {
        assert!(matches!(
            world.flow.find_device_session(None, at(addr)).await,
            Err(DeviceError::WrongCode)
        ));
    }
    // Spent: a network with failures this window is refused, right code or not ...
    assert!(matches!(
        world
            .flow
            .find_device_session(Some(user_code.clone()), at("192.0.2.3"))
            .await,
        Err(DeviceError::TooManyGuesses { .. })
    ));
    // ... a fresh one gets its check: a person with the right code gets through ...
    world
        .flow
        .find_device_session(Some(user_code.clone()), at("203.0.113.1"))
        .await
        .unwrap();
    // ... and the same person again (a right code takes its reservation back).
    world
        .flow
        .find_device_session(Some(user_code.clone()), at("203.0.113.1"))
        .await
        .unwrap();
    // An attacker gets one guess per fresh network, and no second from it.
    assert!(matches!(
        world.flow.find_device_session(None, at("198.18.0.1")).await,
        Err(DeviceError::WrongCode)
    ));
    for addr in ["198.18.0.1", "198.18.0.200"] {
        assert!(matches!(
            world.flow.find_device_session(None, at(addr)).await,
            Err(DeviceError::TooManyGuesses { .. })
        ));
    }
    world.clock.advance(Duration::from_secs(60));
    world
        .flow
        .find_device_session(Some(user_code), at("192.0.2.3"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_network_is_stopped_by_its_own_limit_across_its_addresses() {
    let world = world_with(Options {
        guess_limits: GuessLimits {
            per_address: 10,
            per_network: 30,
            global: 1000,
            window: Duration::from_secs(600),
        },
        ..Options::default()
    })
    .await;
    let (_, user_code) = device(&world, "my-app").await;
    // 30 /64s of one /48, one guess each.
    let in_48 = |n: u32| Some(ClientAddr(format!("2001:db8:7:{n:x}::1").parse().unwrap()));
    for n in 0..30 {
        assert!(matches!(
            world.flow.find_device_session(None, in_48(n)).await,
            Err(DeviceError::WrongCode)
        ));
    }
    assert!(matches!(
        world
            .flow
            .find_device_session(Some(user_code.clone()), in_48(99))
            .await,
        Err(DeviceError::TooManyGuesses { .. })
    ));
    let elsewhere = Some(ClientAddr("2001:db8:8::1".parse().unwrap()));
    world
        .flow
        .find_device_session(Some(user_code), elsewhere)
        .await
        .unwrap();
}

#[tokio::test]
async fn concurrent_wrong_codes_cannot_share_one_reading_of_the_limit() {
    let world = world().await;
    device(&world, "my-app").await;
    let addr = Some(ClientAddr("198.51.100.9".parse().unwrap()));
    let guesses = (0..200).map(|_| {
        let flow = Arc::clone(&world.flow);
        tokio::spawn(async move { flow.find_device_session(None, addr).await })
    });
    let mut checked = 0;
    for guess in guesses {
        match guess.await.unwrap() {
            Err(DeviceError::WrongCode) => checked += 1,
            Err(DeviceError::TooManyGuesses { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(checked, 3, "the per-address limit here");
}
