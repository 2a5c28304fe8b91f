//! The SDK's retries against the service's writes: DynamoDB applies a write, its answer is lost
//! (held back past the SDK's attempt timeout, or the connection closed) and the SDK sends the
//! request again. Each write finds its own first attempt's effect and succeeds; a write whose
//! condition fails for another writer's reason still fails. The three functions run in process
//! with the AWS configuration and timeouts they have on Lambda, all reaching moto through one
//! proxy that loses the chosen answer.

use e2e_tests::aws::{self, Lost, ProxyMode, RecordingProxy};
use e2e_tests::*;
use lambda_common::Function;

use crate::lambda::{World, in_process, token_adapters};

/// The three functions, in process, their AWS calls through `proxy`.
struct Functions {
    driver: Driver,
    /// The new function, where the device flow starts.
    new: url::Url,
}

async fn functions(world: &World, proxy: &RecordingProxy) -> Functions {
    let sdk = aws::service_sdk_config(&proxy.url);
    let pages = shared::app::Adapters {
        pages: Some(&monzo_auth_pages::PAGES),
        ..Default::default()
    };
    let callback = in_process(world, Function::Callback, &[], &sdk, pages).await;
    let return_url = callback.join("callback").unwrap();
    register_client(&world.fake.monzo, &world.client_secret, &return_url, true);
    let common = [
        ("RETURN_URL", return_url.to_string()),
        ("PUBLIC_BASE_URL", callback.to_string()),
        ("POLL_INTERVAL_SECS", "1".to_owned()),
    ];
    let new = in_process(world, Function::New, &common, &sdk, Default::default()).await;
    let mut token_env = common.to_vec();
    token_env.push(("MONZO_CLIENT_SECRET_KMS", world.ciphertext.clone()));
    let kms = monzo_auth_kms::opener(&sdk);
    let token = in_process(
        world,
        Function::Token,
        &token_env,
        &sdk,
        token_adapters(&kms),
    )
    .await;
    Functions {
        driver: Driver {
            base: new.clone(),
            new_url: new.join("new").unwrap(),
            token_url: token.join("token").unwrap(),
            http: http_client(),
        },
        new,
    }
}

/// Arms `proxy` to lose the next answer to `action`; after `step`, checks the fault fired and
/// the SDK sent the request again.
async fn losing<T>(
    proxy: &RecordingProxy,
    action: &'static str,
    how: Lost,
    step: impl std::future::Future<Output = T>,
) -> T {
    let before = proxy.count(action);
    proxy.set_mode(ProxyMode::LoseAnswer(action, how));
    let out = step.await;
    assert_eq!(proxy.mode(), ProxyMode::Forward, "{action} was never sent");
    assert!(
        proxy.count(action) >= before + 2,
        "{action} ({how:?}) was not sent again: {} then {}",
        before,
        proxy.count(action)
    );
    out
}

/// `/new`'s PutItem, the callback's authorizing UpdateItem and the redeem's claim each lose
/// their answer once: the person still gets `/new`'s 200, the success page and the token, from
/// one exchange.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_whose_write_answers_are_lost_still_succeeds_once() {
    for how in [Lost::Withheld, Lost::Reset] {
        let world = World::new().await;
        let proxy = RecordingProxy::start(&world.moto).await;
        let Functions { driver, .. } = functions(&world, &proxy).await;

        let started = losing(&proxy, "dynamodb:PutItem", how, driver.start()).await;
        let redirect = driver
            .at_monzo(&started.login_url, DEMO_USER, Decision::Approve)
            .await;
        let page = losing(
            &proxy,
            "dynamodb:UpdateItem",
            how,
            driver.callback(&redirect.callback_url),
        )
        .await;
        assert_eq!(page.status(), 303, "{how:?}: the callback's success page");
        assert!(
            page.headers()["location"]
                .to_str()
                .unwrap()
                .ends_with("callback/done")
        );

        // A second callback with another code is another writer: it still fails.
        let mut other = redirect.callback_url.clone();
        other.set_query(Some(&format!(
            "code=another-code&state={}",
            started.state()
        )));
        assert_eq!(driver.callback(&other).await.status(), 400);

        let answer = losing(&proxy, "dynamodb:UpdateItem", how, driver.poll(&started.id)).await;
        assert_eq!(answer.status, 200, "{how:?}: {}", answer.body);
        assert_eq!(answer.body["user_id"], DEMO_USER);
        let stats = world.fake.monzo.stats();
        assert_eq!(
            (stats.token_calls, stats.code_exchanges),
            (1, 1),
            "{stats:?}"
        );
    }
}

/// A denial whose answer is lost still shows the denial page and ends the login; the same
/// denial link replayed is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_whose_answer_is_lost_is_recorded_once() {
    let world = World::new().await;
    let proxy = RecordingProxy::start(&world.moto).await;
    let Functions { driver, .. } = functions(&world, &proxy).await;
    let started = driver.start().await;
    let redirect = driver
        .at_monzo(&started.login_url, DEMO_USER, Decision::Deny)
        .await;
    let page = losing(
        &proxy,
        "dynamodb:UpdateItem",
        Lost::Withheld,
        driver.callback(&redirect.callback_url),
    )
    .await;
    assert_eq!(page.status(), 303);
    assert!(
        page.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("callback/denied")
    );
    driver
        .poll(&started.id)
        .await
        .assert_error(403, "access_denied");
    assert_eq!(
        driver.callback(&redirect.callback_url).await.status(),
        400,
        "a replayed denial"
    );
}

/// A device poll on time whose pacing write loses its answer is still on time: pending, not
/// `slow_down`, and the interval does not grow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_on_time_device_poll_is_not_slowed_down() {
    let world = World::new().await;
    let proxy = RecordingProxy::start(&world.moto).await;
    let Functions { driver, new, .. } = functions(&world, &proxy).await;
    let started = driver
        .start_device_at(new.join("device/code").unwrap(), "my-cli")
        .await;
    assert_eq!(started.status, 200, "{}", started.body);
    let device_code = started.body["device_code"].as_str().unwrap().to_owned();
    let token_url = driver.token_url.join("oauth/token").unwrap();
    let poll = || driver.poll_device_at(&token_url, &device_code, "my-cli");
    for how in [Lost::Withheld, Lost::Reset] {
        losing(&proxy, "dynamodb:UpdateItem", how, poll())
            .await
            .assert_error(400, "authorization_pending");
        // The next poll waits out the interval the first one started (1 s, not grown).
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    poll().await.assert_error(400, "authorization_pending");
}
