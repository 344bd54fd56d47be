//! Every verification with real cryptography: our own App Store chain and Google keys sign real
//! JWS and JWT; what is forged, tampered, expired, for another app, or signed another way is
//! refused. The Play API, Google's token and key endpoints and the App Store Server API are the
//! test kit's local fakes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coins_stores::StoreError;
use coins_stores::app_store_api::{ApiKey, AppStoreApi, ConsumptionRequest};
use coins_stores::apple::{AppleEnvironment, AppleVerifier};
use coins_stores::google_play::{GooglePlay, ServiceAccount};
use coins_stores::push::PushVerifier;
use coins_testkit::stores::{
    APP_ID, AppleSigner, FakeStores, GoogleKey, Leaf, PLAY_ACCOUNT, PUSH_ACCOUNT, PUSH_AUDIENCE,
    app_store_api_key, apple_transaction, play_purchase,
};
use jiff::Timestamp;
use serde_json::json;

fn now() -> Timestamp {
    "2026-03-02T03:00:00Z".parse().unwrap()
}

fn verifier(signer: &AppleSigner) -> AppleVerifier {
    AppleVerifier::new(APP_ID, AppleEnvironment::Sandbox).with_root(signer.root_der())
}

fn transaction() -> serde_json::Value {
    apple_transaction(
        "2000000812345678",
        "com.example.coins.pack700",
        "JPN",
        now().as_millisecond(),
    )
}

#[test]
fn a_transaction_signed_by_the_trusted_chain_is_read() {
    let signer = AppleSigner::new(Leaf::Good);
    let read = verifier(&signer)
        .transaction(&signer.sign(&transaction()), now())
        .unwrap();
    assert_eq!(read.transaction_id, "2000000812345678");
    assert_eq!(read.product_id, "com.example.coins.pack700");
    assert_eq!(read.storefront, "JPN");
}

#[test]
fn forged_tampered_expired_or_foreign_transactions_are_refused() {
    let signer = AppleSigner::new(Leaf::Good);
    let good = signer.sign(&transaction());
    let invalid = |jws: &str, why: &str| {
        let result = verifier(&signer).transaction(jws, now());
        assert!(
            matches!(result, Err(StoreError::Invalid(_))),
            "{why}: {result:?}"
        );
    };
    // Another root: a chain that is not the trusted one.
    invalid(
        &AppleSigner::new(Leaf::Good).sign(&transaction()),
        "another root",
    );
    // A payload changed after signing.
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut payload = transaction();
    payload["productId"] = json!("com.example.coins.pack17500");
    parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
    invalid(&parts.join("."), "tampered");
    // Certificates outside their validity, or without Apple's marker.
    for leaf in [Leaf::Expired, Leaf::NotYetValid, Leaf::Unmarked] {
        let other = AppleSigner::new(leaf);
        let result = verifier(&other).transaction(&other.sign(&transaction()), now());
        assert!(
            matches!(result, Err(StoreError::Invalid(_))),
            "{leaf:?}: {result:?}"
        );
    }
    // alg none, with the chain kept.
    let header: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(good.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let mut none = header.clone();
    none["alg"] = json!("none");
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(none.to_string()),
        good.split('.').nth(1).unwrap()
    );
    invalid(&unsigned, "alg none");
    invalid("not.a.jws.at.all", "not a JWS");
    // Genuine, but for another app, environment, or not a consumable.
    for (field, value) in [
        ("bundleId", json!("com.other.app")),
        ("environment", json!("Production")),
    ] {
        let mut foreign = transaction();
        foreign[field] = value;
        let result = verifier(&signer).transaction(&signer.sign(&foreign), now());
        assert!(
            matches!(result, Err(StoreError::WrongApp(_))),
            "{field}: {result:?}"
        );
    }
    let mut subscription = transaction();
    subscription["type"] = json!("Auto-Renewable Subscription");
    assert!(
        verifier(&signer)
            .transaction(&signer.sign(&subscription), now())
            .is_err()
    );
}

fn push_verifier(stores: &FakeStores) -> PushVerifier {
    PushVerifier::new(stores.jwks_url(), PUSH_AUDIENCE, PUSH_ACCOUNT).unwrap()
}

#[test]
fn a_push_verifier_without_its_service_account_is_refused() {
    for empty in ["", "  "] {
        assert!(matches!(
            PushVerifier::new("http://127.0.0.1:9/certs", PUSH_AUDIENCE, empty),
            Err(StoreError::NotConfigured(_))
        ));
    }
}

#[tokio::test]
async fn an_unknown_key_id_fetches_googles_keys_at_most_once_a_minute() {
    let (stores, google, _, _) = fakes();
    let verifier = push_verifier(&stores);
    let at = now().as_second();
    let bearer = |key: &GoogleKey, at: i64| {
        format!("Bearer {}", key.push_token(PUSH_AUDIENCE, PUSH_ACCOUNT, at))
    };
    verifier
        .verify(Some(&bearer(&google, at)), now())
        .await
        .unwrap();
    assert_eq!(stores.lock().jwks_fetches, 1);
    // Made-up key ids within the minute of a fetch do not send us to Google.
    let stranger = GoogleKey::new("made-up");
    for _ in 0..5 {
        let result = verifier.verify(Some(&bearer(&stranger, at)), now()).await;
        assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
    }
    assert_eq!(stores.lock().jwks_fetches, 1);
    // A known key is still read from the cache.
    verifier
        .verify(Some(&bearer(&google, at)), now())
        .await
        .unwrap();
    assert_eq!(stores.lock().jwks_fetches, 1);
    // A minute on, an unknown key id asks Google once (its keys rotate), then not again.
    let later = now() + jiff::SignedDuration::from_secs(61);
    for _ in 0..5 {
        let result = verifier
            .verify(Some(&bearer(&stranger, later.as_second())), later)
            .await;
        assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
    }
    assert_eq!(stores.lock().jwks_fetches, 2);
}

fn fakes() -> (FakeStores, GoogleKey, GoogleKey, (String, String)) {
    let google = GoogleKey::new("google-1");
    let account = GoogleKey::new("play-api");
    let apple_api = app_store_api_key();
    let stores = FakeStores::start(&google, &account, &apple_api.1);
    (stores, google, account, apple_api)
}

#[tokio::test]
async fn a_push_token_signed_by_google_for_us_is_believed_and_nothing_else() {
    let (stores, google, _, _) = fakes();
    let verifier = push_verifier(&stores);
    let at = now().as_second();
    let good = google.push_token(PUSH_AUDIENCE, PUSH_ACCOUNT, at);
    let claims = verifier
        .verify(Some(&format!("Bearer {good}")), now())
        .await
        .unwrap();
    assert_eq!(claims.email.as_deref(), Some(PUSH_ACCOUNT));

    let refused = |token: String, why: &'static str| {
        let verifier = verifier.clone();
        async move {
            let result = verifier
                .verify(Some(&format!("Bearer {token}")), now())
                .await;
            assert!(
                matches!(result, Err(StoreError::Invalid(_))),
                "{why}: {result:?}"
            );
        }
    };
    refused(
        google.push_token("someone-else", PUSH_ACCOUNT, at),
        "another audience",
    )
    .await;
    refused(
        google.push_token(
            PUSH_AUDIENCE,
            "intruder@example.iam.gserviceaccount.com",
            at,
        ),
        "another account",
    )
    .await;
    refused(
        google.push_token(PUSH_AUDIENCE, PUSH_ACCOUNT, at - 7200),
        "expired",
    )
    .await;
    refused(
        GoogleKey::new("google-1").push_token(PUSH_AUDIENCE, PUSH_ACCOUNT, at),
        "another key, same id",
    )
    .await;
    // HS256 keyed with Google's public key (the algorithm-confusion forgery).
    let jwk = google.jwk();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("google-1".into());
    let claims = json!({"aud": PUSH_AUDIENCE, "email": PUSH_ACCOUNT, "email_verified": true,
        "iss": "https://accounts.google.com", "iat": at, "exp": at + 3600});
    let confused = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(jwk["n"].as_str().unwrap().as_bytes()),
    )
    .unwrap();
    refused(confused, "HS256 with the public key").await;
    let none_header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": "google-1"}).to_string());
    let none_claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    refused(format!("{none_header}.{none_claims}."), "alg none").await;
    assert!(verifier.verify(None, now()).await.is_err());
}

fn play_api(stores: &FakeStores, account: &GoogleKey) -> GooglePlay {
    let service_account =
        ServiceAccount::from_json(&account.service_account_json(PLAY_ACCOUNT)).unwrap();
    GooglePlay::new(
        &stores.base_url,
        stores.token_url(),
        APP_ID,
        Some(service_account),
    )
}

#[tokio::test]
async fn the_play_api_is_read_and_consumed_with_a_service_account_grant() {
    let (stores, _, account, _) = fakes();
    stores.add_play_purchase(
        "token-1",
        play_purchase("GPA.1234-5678", "pack_700", "JP", 1),
    );
    let play = play_api(&stores, &account);
    let purchase = play
        .product_purchase("pack_700", "token-1", now())
        .await
        .unwrap();
    assert_eq!(
        (purchase.purchase_state, purchase.order_id.as_str()),
        (0, "GPA.1234-5678")
    );
    play.consume("pack_700", "token-1", now()).await.unwrap();
    assert_eq!(stores.lock().consumed, ["token-1"]);
    // One grant served both calls.
    assert_eq!(stores.lock().access_tokens.len(), 1);
    assert!(matches!(
        play.product_purchase("pack_700", "no-such-token", now())
            .await,
        Err(StoreError::Unknown(_))
    ));
    stores.lock().play_down = Some(503);
    assert!(matches!(
        play.product_purchase("pack_700", "token-1", now()).await,
        Err(StoreError::Unavailable(_))
    ));
    // A grant signed with another key is refused by the token endpoint.
    let stranger = play_api(&stores, &GoogleKey::new("not-registered"));
    stores.lock().play_down = None;
    assert!(matches!(
        stranger
            .product_purchase("pack_700", "token-1", now())
            .await,
        Err(StoreError::Unavailable(_))
    ));
    let unconfigured = GooglePlay::new(&stores.base_url, stores.token_url(), APP_ID, None);
    assert!(matches!(
        unconfigured
            .product_purchase("pack_700", "token-1", now())
            .await,
        Err(StoreError::NotConfigured(_))
    ));
}

#[tokio::test]
async fn consumption_information_reaches_the_app_store_with_a_signed_token() {
    let (stores, _, _, (private_pem, _)) = fakes();
    let key = ApiKey {
        key_id: "ABC123DEFG".into(),
        issuer_id: "57246542-96fe-1a63-e053-0824d011072a".into(),
        private_key: private_pem,
    };
    let api = AppStoreApi::new(
        Some(stores.base_url.clone()),
        AppleEnvironment::Sandbox,
        APP_ID,
        Some(key),
    );
    api.send_consumption(
        "2000000812345678",
        &ConsumptionRequest::for_coins(300, 700, "7e3fb20b-4cdb-47cc-936d-99d65f608138".into()),
        now(),
    )
    .await
    .unwrap();
    let sent = stores.lock().consumption.clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "2000000812345678");
    assert_eq!(sent[0].1["consumptionStatus"], 2, "partly spent");
    assert_eq!(sent[0].1["customerConsented"], true);
    assert_eq!(
        sent[0].1["appAccountToken"],
        "7e3fb20b-4cdb-47cc-936d-99d65f608138"
    );
    // Another key is refused by Apple.
    let (other, _) = app_store_api_key();
    let forged = AppStoreApi::new(
        Some(stores.base_url.clone()),
        AppleEnvironment::Sandbox,
        APP_ID,
        Some(ApiKey {
            key_id: "X".into(),
            issuer_id: "Y".into(),
            private_key: other,
        }),
    );
    assert!(
        forged
            .send_consumption(
                "2000000812345678",
                &ConsumptionRequest::for_coins(0, 700, String::new()),
                now()
            )
            .await
            .is_err()
    );
}
