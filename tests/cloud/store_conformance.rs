//! The DynamoDB store on moto: the conformance suite every store passes (the memory and SQLite
//! stores run it in their own crates), and the table's TTL attribute.

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use monzo_auth_domain::session::{UserCode, UserCodeRecord};
use monzo_auth_domain::store::{CounterStore as _, SessionStore as _, UserCodeStore as _};
use monzo_auth_store_conformance::{NOW, conformance_suite, pending};

conformance_suite!(dynamodb, Ttl, {
    let aws = e2e_tests::aws::sdk_config(&e2e_tests::aws::moto_endpoint());
    let table = e2e_tests::aws::create_sessions_table(&aws).await;
    Arc::new(monzo_auth_dynamodb::DynamoDbStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        table,
    ))
});

#[tokio::test]
async fn dynamodb_purge_at_is_the_tables_ttl_attribute() {
    // The deployed table deletes items by purge_at...
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let template: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ttl = &template["Resources"]["SessionsTable"]["Properties"]["TimeToLiveSpecification"];
    assert_eq!(ttl["AttributeName"].as_str(), Some("purge_at"));
    assert_eq!(ttl["Enabled"].as_bool(), Some(true));

    // ...and each item the store writes has it, in Unix seconds, as it was given.
    let aws = e2e_tests::aws::sdk_config(&e2e_tests::aws::moto_endpoint());
    let table = e2e_tests::aws::create_sessions_table(&aws).await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let store = monzo_auth_dynamodb::DynamoDbStore::new(client.clone(), table.clone());
    let (id, session) = pending(NOW);
    store.create(&session).await.unwrap();
    let code = UserCodeRecord {
        key: UserCode::generate().store_key(),
        state: id.state(),
        expires_at_ms: session.expires_at_ms,
        purge_at: session.purge_at,
    };
    assert!(store.create_user_code(&code, NOW).await.unwrap());
    let counter = format!(
        "limit#test#{}",
        monzo_auth_domain::session::random_token::<6>()
    );
    store.add_failure(&counter, NOW / 1000 + 900).await.unwrap();
    assert_eq!(session.purge_at, session.expires_at_ms / 1000 + 1 + 600);
    for (pk, purge_at) in [
        (id.state().as_text(), session.purge_at),
        (code.key, session.purge_at),
        (counter, NOW / 1000 + 900),
    ] {
        let item = client
            .get_item()
            .table_name(&table)
            .key("pk", AttributeValue::S(pk.clone()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap();
        assert_eq!(
            item.get("purge_at"),
            Some(&AttributeValue::N(purge_at.to_string())),
            "{pk}"
        );
    }
}
