//! The app stores, faked for tests with real cryptography: an App Store signing chain of our
//! own (root, intermediate and leaf with Apple's marker extensions) signing ES256 JWS exactly as
//! Apple does, Google-style RSA keys signing Pub/Sub push tokens and service-account grants, and
//! the stores' HTTP APIs (Play purchases, OAuth token endpoint, JWKS, App Store Server API
//! consumption) served on 127.0.0.1 speaking their documented JSON.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::Full;
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, date_time_ymd,
};
use serde_json::{Value, json};

use crate::http::{form_fields, json_response};

/// The bundle id and package name the tests' app has.
pub const APP_ID: &str = "com.example.coins";
/// The audience of the tests' push subscription.
pub const PUSH_AUDIENCE: &str = "coins-google-play";
/// The service account the push subscription signs as.
pub const PUSH_ACCOUNT: &str = "pubsub-push@coins-test.iam.gserviceaccount.com";
/// The service account the functions call the Play API as.
pub const PLAY_ACCOUNT: &str = "play-api@coins-test.iam.gserviceaccount.com";

const LEAF_MARKER: &[u64] = &[1, 2, 840, 113635, 100, 6, 11, 1];
const INTERMEDIATE_MARKER: &[u64] = &[1, 2, 840, 113635, 100, 6, 2, 1];

/// How the leaf of a test chain is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaf {
    /// As Apple's: valid 2000-2199, with the marker extension.
    Good,
    /// Expired before 2001.
    Expired,
    /// Valid only from 2199 on.
    NotYetValid,
    /// Without Apple's marker extension.
    Unmarked,
}

/// An App Store-like signing chain.
pub struct AppleSigner {
    root: Vec<u8>,
    intermediate: Vec<u8>,
    leaf: Vec<u8>,
    leaf_key: Vec<u8>,
}

impl AppleSigner {
    /// A fresh chain whose leaf is `leaf`.
    pub fn new(leaf: Leaf) -> AppleSigner {
        let ca = |name: &str, markers: &[&[u64]]| {
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, name);
            params.distinguished_name = dn;
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            params.not_before = date_time_ymd(2000, 1, 1);
            params.not_after = date_time_ymd(2199, 12, 31);
            for marker in markers {
                params
                    .custom_extensions
                    .push(CustomExtension::from_oid_content(marker, vec![0x05, 0x00]));
            }
            params
        };
        let root_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).expect("a P-384 key");
        let root_params = ca("Test Root CA - G3", &[]);
        let root = root_params.self_signed(&root_key).expect("the root");
        let root_issuer = Issuer::from_params(&root_params, &root_key);
        let intermediate_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).expect("a key");
        let intermediate_params = ca("Test WWDR", &[INTERMEDIATE_MARKER]);
        let intermediate = intermediate_params
            .signed_by(&intermediate_key, &root_issuer)
            .expect("the intermediate");
        let intermediate_issuer = Issuer::from_params(&intermediate_params, &intermediate_key);

        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("a P-256 key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "Test App Store Receipt Signing");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        (params.not_before, params.not_after) = match leaf {
            Leaf::Expired => (date_time_ymd(1999, 1, 1), date_time_ymd(2000, 12, 31)),
            Leaf::NotYetValid => (date_time_ymd(2199, 1, 1), date_time_ymd(2199, 12, 31)),
            Leaf::Good | Leaf::Unmarked => (date_time_ymd(2000, 1, 1), date_time_ymd(2199, 12, 31)),
        };
        if leaf != Leaf::Unmarked {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    LEAF_MARKER,
                    vec![0x05, 0x00],
                ));
        }
        let leaf_cert = params
            .signed_by(&leaf_key, &intermediate_issuer)
            .expect("the leaf");
        AppleSigner {
            root: root.der().to_vec(),
            intermediate: intermediate.der().to_vec(),
            leaf: leaf_cert.der().to_vec(),
            leaf_key: leaf_key.serialize_der(),
        }
    }

    /// The root to trust (DER).
    pub fn root_der(&self) -> Vec<u8> {
        self.root.clone()
    }

    /// The root to trust, as a PEM file (the local server's `--apple-root-ca`).
    pub fn root_pem(&self) -> String {
        pem("CERTIFICATE", &self.root)
    }

    /// `payload` as the App Store signs it: ES256, `x5c` = leaf, intermediate, root.
    pub fn sign(&self, payload: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.x5c = Some(
            [&self.leaf, &self.intermediate, &self.root]
                .iter()
                .map(|der| STANDARD.encode(der))
                .collect(),
        );
        let key = EncodingKey::from_ec_der(&self.leaf_key);
        jsonwebtoken::encode(&header, payload, &key).expect("signing")
    }
}

/// A StoreKit 2 transaction of a consumable, as Apple signs it.
pub fn apple_transaction(
    transaction_id: &str,
    product_id: &str,
    storefront: &str,
    signed_at_ms: i64,
) -> Value {
    json!({
        "transactionId": transaction_id,
        "originalTransactionId": transaction_id,
        "webOrderLineItemId": null,
        "bundleId": APP_ID,
        "productId": product_id,
        "purchaseDate": signed_at_ms - 1000,
        "originalPurchaseDate": signed_at_ms - 1000,
        "quantity": 1,
        "type": "Consumable",
        "inAppOwnershipType": "PURCHASED",
        "signedDate": signed_at_ms,
        "environment": "Sandbox",
        "transactionReason": "PURCHASE",
        "storefront": storefront,
        "storefrontId": "143462",
        "price": 1600000,
        "currency": "JPY",
    })
}

/// An App Store Server Notification V2 about `signed_transaction`.
pub fn apple_notification(
    kind: &str,
    uuid: &str,
    signed_transaction: Option<&str>,
    signed_at_ms: i64,
) -> Value {
    let mut data = json!({"bundleId": APP_ID, "environment": "Sandbox", "appAppleId": 1234});
    if let Some(signed) = signed_transaction {
        data["signedTransactionInfo"] = json!(signed);
    }
    json!({
        "notificationType": kind,
        "notificationUUID": uuid,
        "data": data,
        "version": "2.0",
        "signedDate": signed_at_ms,
    })
}

/// An RSA key as Google uses them: for push tokens (published in a JWKS) and for a service
/// account's grants.
pub struct GoogleKey {
    kid: String,
    pkcs8: Vec<u8>,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl GoogleKey {
    pub fn new(kid: &str) -> GoogleKey {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("an RSA key");
        let components = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        GoogleKey {
            kid: kid.to_owned(),
            pkcs8: pair.as_der().expect("PKCS#8").as_ref().to_vec(),
            n: components.n,
            e: components.e,
        }
    }

    /// The JWKS entry of the key.
    pub fn jwk(&self) -> Value {
        json!({
            "kid": self.kid, "kty": "RSA", "alg": "RS256", "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(&self.n), "e": URL_SAFE_NO_PAD.encode(&self.e),
        })
    }

    /// The public key, for verifying what it signed.
    pub fn decoding_key(&self) -> DecodingKey {
        DecodingKey::from_rsa_raw_components(&self.n, &self.e)
    }

    /// A push token as Google signs it for a Pub/Sub push subscription.
    pub fn push_token(&self, audience: &str, email: &str, issued_at: i64) -> String {
        let claims = json!({
            "aud": audience, "azp": "1234567890", "email": email, "email_verified": true,
            "exp": issued_at + 3600, "iat": issued_at, "iss": "https://accounts.google.com",
            "sub": "1234567890",
        });
        self.sign(&claims)
    }

    /// `claims` signed RS256 with this key's id.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        let key =
            EncodingKey::from_rsa_pem(pem("PRIVATE KEY", &self.pkcs8).as_bytes()).expect("our key");
        jsonwebtoken::encode(&header, claims, &key).expect("signing")
    }

    /// A service account JSON key file for this key.
    pub fn service_account_json(&self, email: &str) -> String {
        json!({
            "type": "service_account",
            "project_id": "coins-test",
            "private_key_id": self.kid,
            "private_key": pem("PRIVATE KEY", &self.pkcs8),
            "client_email": email,
            "token_uri": "https://oauth2.googleapis.com/token",
        })
        .to_string()
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// What the fake stores were asked and hold.
#[derive(Default)]
pub struct StoresState {
    /// Play purchases by purchase token: the `ProductPurchase` JSON.
    pub play_purchases: HashMap<String, Value>,
    /// Tokens consumed.
    pub consumed: Vec<String>,
    /// Access tokens granted.
    pub access_tokens: Vec<String>,
    /// Consumption information sent to the App Store: (transaction id, body).
    pub consumption: Vec<(String, Value)>,
    /// Answer every Play API call with this status (a Google outage).
    pub play_down: Option<u16>,
    /// Times Google's keys (JWKS) were fetched.
    pub jwks_fetches: usize,
}

/// The stores' HTTP APIs on a port of 127.0.0.1, served from a thread of their own.
pub struct FakeStores {
    pub base_url: String,
    pub state: Arc<Mutex<StoresState>>,
}

/// What the fake trusts: Google's signing key (published as its JWKS), the service account's
/// key (grants must be signed with it) and the App Store API key's public half.
struct Trust {
    jwks: Value,
    service_account: DecodingKey,
    app_store_api: DecodingKey,
}

impl FakeStores {
    /// Serves the fakes: `google` publishes the JWKS, `service_account` signs grants,
    /// `app_store_api_public_pem` verifies App Store Server API tokens.
    pub fn start(
        google: &GoogleKey,
        service_account: &GoogleKey,
        app_store_api_public_pem: &str,
    ) -> FakeStores {
        let trust = Arc::new(Trust {
            jwks: json!({"keys": [google.jwk()]}),
            service_account: service_account.decoding_key(),
            app_store_api: DecodingKey::from_ec_pem(app_store_api_public_pem.as_bytes())
                .expect("a P-256 public key"),
        });
        let state = Arc::new(Mutex::new(StoresState::default()));
        let served = state.clone();
        let base_url = crate::http::serve(move |parts, body| {
            let (trust, state) = (trust.clone(), served.clone());
            async move { answer(&trust, &state, parts, body).await }
        });
        FakeStores { base_url, state }
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/oauth2/v3/certs", self.base_url)
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url)
    }

    /// Google Play holds this purchase (`ProductPurchase` JSON) under `token`.
    pub fn add_play_purchase(&self, token: &str, purchase: Value) {
        self.lock()
            .play_purchases
            .insert(token.to_owned(), purchase);
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, StoresState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A `ProductPurchase` as the Play Developer API returns it for a real (paid) purchase: no
/// `purchaseType`, and no obfuscated account id until a test names one.
pub fn play_purchase(order_id: &str, product_id: &str, region: &str, quantity: u32) -> Value {
    json!({
        "kind": "androidpublisher#productPurchase",
        "purchaseTimeMillis": "1772420400000",
        "purchaseState": 0,
        "consumptionState": 0,
        "developerPayload": "",
        "orderId": order_id,
        "acknowledgementState": 0,
        "productId": product_id,
        "quantity": quantity,
        "refundableQuantity": quantity,
        "regionCode": region,
    })
}

async fn answer(
    trust: &Trust,
    state: &Mutex<StoresState>,
    parts: Parts,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let path = parts.uri.path().to_owned();
    let bearer = parts
        .headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_owned);
    let lock = || state.lock().unwrap_or_else(PoisonError::into_inner);
    let reply = |status: StatusCode, body: Value| json_response(status.as_u16(), &body);
    let google_error = |status: StatusCode, message: &str| {
        reply(
            status,
            json!({"error": {"code": status.as_u16(), "message": message, "status": "NOT_FOUND"}}),
        )
    };
    match (&parts.method, path.as_str()) {
        (&Method::GET, "/oauth2/v3/certs") => {
            lock().jwks_fetches += 1;
            reply(StatusCode::OK, trust.jwks.clone())
        }
        (&Method::POST, "/token") => {
            let form = form_fields(&body);
            let assertion = form.get("assertion").cloned().unwrap_or_default();
            let mut validation = Validation::new(Algorithm::RS256);
            // Tokens are made on the test clock, not the machine's.
            validation.validate_exp = false;
            validation.set_audience(&[format!(
                "http://{}/token",
                parts
                    .headers
                    .get("host")
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("")
            )]);
            let granted = form.get("grant_type").map(String::as_str)
                == Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
                && jsonwebtoken::decode::<Value>(&assertion, &trust.service_account, &validation)
                    .is_ok_and(|data| {
                        data.claims["iss"] == PLAY_ACCOUNT
                            && data.claims["scope"]
                                == "https://www.googleapis.com/auth/androidpublisher"
                    });
            if !granted {
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}),
                );
            }
            let token = format!("ya29.fake-{}", lock().access_tokens.len() + 1);
            lock().access_tokens.push(token.clone());
            reply(
                StatusCode::OK,
                json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}),
            )
        }
        (method, path) if path.starts_with("/androidpublisher/v3/applications/") => {
            if let Some(status) = lock().play_down {
                return google_error(StatusCode::from_u16(status).expect("a status"), "outage");
            }
            let authorized = bearer.is_some_and(|token| lock().access_tokens.contains(&token));
            if !authorized {
                return google_error(
                    StatusCode::UNAUTHORIZED,
                    "Request had invalid authentication credentials.",
                );
            }
            let rest = &path["/androidpublisher/v3/applications/".len()..];
            let segments: Vec<&str> = rest.split('/').collect();
            let [package, "purchases", "products", product, "tokens", token] = segments[..] else {
                return google_error(StatusCode::NOT_FOUND, "Not found");
            };
            let (token, consume) = match token.strip_suffix(":consume") {
                Some(token) => (token, true),
                None => (token, false),
            };
            let mut state = lock();
            let Some(purchase) = state.play_purchases.get_mut(token) else {
                return google_error(StatusCode::BAD_REQUEST, "Invalid Value");
            };
            if package != APP_ID || purchase["productId"] != product {
                return google_error(
                    StatusCode::NOT_FOUND,
                    "The purchase token does not match the product ID.",
                );
            }
            match (method, consume) {
                (&Method::GET, false) => reply(StatusCode::OK, purchase.clone()),
                (&Method::POST, true) => {
                    purchase["consumptionState"] = json!(1);
                    state.consumed.push(token.to_owned());
                    Response::builder()
                        .status(StatusCode::NO_CONTENT)
                        .body(Full::new(Bytes::new()))
                        .expect("a response")
                }
                _ => google_error(StatusCode::METHOD_NOT_ALLOWED, "method"),
            }
        }
        (&Method::PUT, path) if path.starts_with("/inApps/v1/transactions/consumption/") => {
            let transaction = path.rsplit('/').next().unwrap_or_default().to_owned();
            let mut validation = Validation::new(Algorithm::ES256);
            validation.validate_exp = false;
            validation.set_audience(&["appstoreconnect-v1"]);
            let valid = bearer.is_some_and(|token| {
                jsonwebtoken::decode::<Value>(&token, &trust.app_store_api, &validation)
                    .is_ok_and(|data| data.claims["bid"] == APP_ID)
            });
            if !valid {
                return reply(
                    StatusCode::UNAUTHORIZED,
                    json!({"errorCode": 4010000, "errorMessage": "Unauthenticated"}),
                );
            }
            let Ok(request) = serde_json::from_slice::<Value>(&body) else {
                return reply(StatusCode::BAD_REQUEST, json!({"errorCode": 4000000}));
            };
            lock().consumption.push((transaction, request));
            Response::builder()
                .status(StatusCode::ACCEPTED)
                .body(Full::new(Bytes::new()))
                .expect("a response")
        }
        _ => google_error(StatusCode::NOT_FOUND, "no such route"),
    }
}

/// A P-256 key pair in the App Store Connect `.p8` form: (private PKCS#8 PEM, public PEM).
pub fn app_store_api_key() -> (String, String) {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("a P-256 key");
    (
        pem("PRIVATE KEY", &key.serialize_der()),
        key.public_key_pem(),
    )
}
