//! App Store notifications are recorded under ids of their own namespace, `appstore-<uuid>`, as
//! Google's pushes are under `gpubsub-<messageId>` (#18), so no provider's id can stand for
//! another's; one recorded under its bare UUID before that is still a replay.

use std::sync::Arc;

use coins_ids::EventId;
use coins_ledger::{Ledger, MemoryStore};
use coins_runtime::{Deps, SdkConfig, TestClock};
use coins_testkit::stores::{AppleSigner, Leaf, apple_notification};
use jiff::Timestamp;
use lambda_http::{Body, Request};
use serde_json::{Value, json};

const NOW: &str = "2026-03-02T03:00:00Z";

async fn function(signer: &AppleSigner) -> (Deps<MemoryStore>, stores::Stores) {
    let root = std::env::temp_dir().join(format!("stores-root-{}.pem", std::process::id()));
    std::fs::write(&root, signer.root_pem()).unwrap();
    let root = root.display().to_string();
    let settings = move |name: &str| match name {
        "APPLE_ROOT_CA_FILE" => Some(root.clone()),
        "APPLE_ENVIRONMENT" => Some("Sandbox".to_owned()),
        "GOOGLE_PUSH_SERVICE_ACCOUNT" => Some("push@coins.iam.gserviceaccount.com".to_owned()),
        _ => None,
    };
    let stores = stores::load_with(&SdkConfig::builder().build(), &settings)
        .await
        .unwrap();
    let clock = TestClock::new(NOW.parse().unwrap()).unwrap();
    (
        Deps::new(Ledger::new(MemoryStore::new()), Arc::new(clock)),
        stores,
    )
}

fn notification(signer: &AppleSigner, uuid: &str) -> Request {
    let now: Timestamp = NOW.parse().unwrap();
    let payload = apple_notification("TEST", uuid, None, now.as_millisecond());
    let body = json!({ "signedPayload": signer.sign(&payload) }).to_string();
    lambda_http::http::Request::builder()
        .method("POST")
        .uri("/v1/webhooks/app-store")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

fn outcome(response: &lambda_http::Response<Body>) -> Value {
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    body["outcome"].clone()
}

#[tokio::test]
async fn apple_notification_ids_are_namespaced_and_old_bare_ids_still_replay() {
    let signer = AppleSigner::new(Leaf::Good);
    let (deps, stores) = function(&signer).await;
    let uuid = "6f0a1b2c-0bc6-42e0-af24-0123456789ab";
    let answer = stores::handle(&deps, &stores, notification(&signer, uuid)).await;
    assert_eq!(outcome(&answer), "ignored");
    let namespaced = EventId::new(format!("appstore-{uuid}")).unwrap();
    assert!(deps.ledger.event_seen(&namespaced).await.unwrap());
    assert!(
        !deps
            .ledger
            .event_seen(&EventId::new(uuid).unwrap())
            .await
            .unwrap()
    );
    let again = stores::handle(&deps, &stores, notification(&signer, uuid)).await;
    assert_eq!(outcome(&again), "replayed");
    // Recorded bare before ids were namespaced: a redelivery is still a replay.
    let legacy = "7e1b2c3d-0bc6-42e0-af24-0123456789ab";
    let bare = EventId::new(legacy).unwrap();
    let at = NOW.parse().unwrap();
    deps.ledger
        .record_event(&bare, "TEST", "ignored", at)
        .await
        .unwrap();
    let redelivered = stores::handle(&deps, &stores, notification(&signer, legacy)).await;
    assert_eq!(outcome(&redelivered), "replayed");
}
