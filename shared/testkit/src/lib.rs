//! Test support, used only as a dev-dependency: the one set of event fixtures (real API Gateway
//! HTTP API v2 events in `fixtures/apigw/`, DynamoDB Streams and EventBridge events in
//! `fixtures/events/`) that a test adjusts, in-memory dependencies on a test clock, shortcuts to a
//! funded wallet, assertions on problem+json answers, the app stores faked with real
//! cryptography ([`stores`]) and a loopback server for such fakes ([`http`]).

pub mod http;
pub mod stores;

use std::path::PathBuf;
use std::sync::Arc;

use coins_ids::{EventId, IdempotencyKey, PaymentIntentId, PurchaseId, UserId};
use coins_ledger::table::GiftRecord;
use coins_ledger::{
    Counted, Ledger, MemoryStore, Paid, Payment, PaymentEvent, PaymentOutcome, Quote, Store,
};
use coins_rules::{BillingLocation, Channel, PackageId, QuoteItem, Zone};
use coins_runtime::{Deps, TestClock};
use jiff::Timestamp;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

/// A fixed instant tests start at: 2026-03-01T03:00:00Z (noon in Tokyo).
pub const T0: &str = "2026-03-01T03:00:00Z";

/// In-memory dependencies on a test clock set to `now`.
pub fn memory_deps(now: &str) -> (Deps<MemoryStore>, TestClock) {
    let clock = TestClock::new(now.parse().expect("an RFC 3339 instant"))
        .expect("in the test clock's range");
    let deps = Deps::new(Ledger::new(MemoryStore::new()), Arc::new(clock.clone()));
    (deps, clock)
}

/// An API Gateway HTTP API (payload 2.0) event, as JSON, that a test adjusts before sending.
#[derive(Clone, Debug)]
pub struct Event(pub Value);

/// The workspace's Lambda functions: one crate per directory of `functions/`, its binary named
/// as the directory. The one list of functions: the SAM template, the local server, the
/// benchmarks and the release build read it or are checked against it.
pub fn function_names() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../functions");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            path.join("Cargo.toml").is_file().then(|| {
                path.file_name()
                    .expect("a directory name")
                    .to_string_lossy()
                    .into_owned()
            })
        })
        .collect();
    names.sort();
    names
}

/// `fixtures/<kind>/<name>.json` of this crate.
pub fn fixture_path(kind: &str, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(kind)
        .join(format!("{name}.json"))
}

fn load(kind: &str, name: &str) -> Value {
    let path = fixture_path(kind, name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("fixture {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("fixture {}: {error}", path.display()))
}

/// A DynamoDB Streams or EventBridge event from `fixtures/events/<name>.json`.
pub fn stream_event(name: &str) -> Value {
    load("events", name)
}

impl Event {
    /// The API Gateway event `fixtures/apigw/<name>.json` (e.g. `post-gift`).
    pub fn load(name: &str) -> Event {
        Event(load("apigw", name))
    }

    /// The event as the JSON Lambda would be handed.
    pub fn to_json(&self) -> String {
        self.0.to_string()
    }

    /// The request `lambda_http` would hand the handler on AWS.
    pub fn request(&self) -> Request {
        lambda_http::request::from_str(&self.0.to_string()).expect("a valid API Gateway v2 event")
    }

    /// Replaces the body with this JSON.
    pub fn body(self, body: Value) -> Event {
        self.raw_body(&body.to_string())
    }

    /// Replaces the body with this text (for malformed JSON), and its `content-length`.
    pub fn raw_body(mut self, body: &str) -> Event {
        self.0["body"] = Value::String(body.to_owned());
        self.0["isBase64Encoded"] = Value::Bool(false);
        self.header("content-length", Some(&body.len().to_string()))
    }

    /// Sets (or with `None` removes) one claim of the authorizer.
    pub fn claim(mut self, name: &str, value: Option<&str>) -> Event {
        let claims = &mut self.0["requestContext"]["authorizer"]["jwt"]["claims"];
        match value {
            Some(value) => claims[name] = Value::String(value.to_owned()),
            None => {
                if let Some(map) = claims.as_object_mut() {
                    map.remove(name);
                }
            }
        }
        self
    }

    /// The caller `sub`.
    pub fn user(self, sub: &str) -> Event {
        self.claim("sub", Some(sub))
    }

    /// No authorizer at all (what a function would see behind a misconfigured route).
    pub fn without_authorizer(mut self) -> Event {
        if let Some(context) = self.0["requestContext"].as_object_mut() {
            context.remove("authorizer");
        }
        self
    }

    /// Sets (or with `None` removes) a header; names are lower case, as API Gateway sends them.
    pub fn header(mut self, name: &str, value: Option<&str>) -> Event {
        let name = name.to_ascii_lowercase();
        match value {
            Some(value) => self.0["headers"][&name] = Value::String(value.to_owned()),
            None => {
                if let Some(map) = self.0["headers"].as_object_mut() {
                    map.remove(&name);
                }
            }
        }
        self
    }

    /// Sets the raw query string (`channel=web&x=1`).
    pub fn query(mut self, raw: &str) -> Event {
        self.0["rawQueryString"] = Value::String(raw.to_owned());
        self
    }

    /// Sets a path parameter, and the raw path with it replaced in the route's template.
    pub fn path_param(mut self, name: &str, value: &str) -> Event {
        self.0["pathParameters"][name] = Value::String(value.to_owned());
        let template = self.0["routeKey"]
            .as_str()
            .and_then(|key| key.split_once(' '))
            .map(|(_, path)| path.to_owned())
            .unwrap_or_default();
        let path = template.replace(&format!("{{{name}}}"), value);
        self.0["rawPath"] = Value::String(path.clone());
        self.0["requestContext"]["http"]["path"] = Value::String(path);
        self
    }
}

/// A response's status and JSON body.
pub fn read(response: &Response<Body>) -> (u16, Value) {
    let body = if response.body().is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(response.body().as_ref()).expect("a JSON body")
    };
    (response.status().as_u16(), body)
}

/// Asserts a problem+json answer with this status and code.
pub fn assert_problem(response: &Response<Body>, status: u16, code: &str) {
    let (actual_status, body) = read(response);
    assert_eq!(
        (actual_status, body["code"].as_str()),
        (status, Some(code)),
        "body: {body}"
    );
    assert_eq!(
        response.headers()["content-type"],
        coins_http::error::PROBLEM_JSON
    );
}

/// Credits `user` (billed in `country`, in `zone`) with a paid web package through the real
/// ledger flow (quote, purchase, its payment paired, the payment succeeded), at the deps'
/// clock. Returns the purchase.
pub async fn buy_package(
    deps: &Deps<MemoryStore>,
    user: &str,
    country: &str,
    zone: &str,
    package: &str,
) -> PurchaseId {
    let user = UserId::new(user).expect("a user id");
    let location: BillingLocation = country.parse().expect("a country or region");
    let country = location.country();
    let package: PackageId = package.parse().expect("a package id");
    let zone = Zone::get(zone).expect("a zone");
    let now = deps.now();
    let priced = deps
        .price_book()
        .quote(location, Channel::Web, QuoteItem::Package(package))
        .expect("the package is sold there");
    let quote = Quote::new(priced, &user, now);
    deps.ledger.save_quote(&quote).await.expect("quote saved");
    let key = IdempotencyKey::new(format!("buy-{}", quote.quote_id)).expect("a key");
    let receipt = deps
        .ledger
        .create_purchase(&user, &quote.quote_id, &zone, now, &key)
        .await
        .expect("purchase created");
    let payment = test_payment(&receipt.purchase_id);
    deps.ledger
        .attach_payment(&receipt.purchase_id, &payment)
        .await
        .expect("payment paired");
    let amount = receipt.amount;
    let event = PaymentEvent {
        event_id: EventId::new(format!("evt-{}", receipt.purchase_id)).expect("an event id"),
        kind: "payment_intent.succeeded".into(),
        payment_intent_id: payment,
        purchase_id: Some(receipt.purchase_id.clone()),
        payment: Payment::Succeeded {
            paid: Paid::new(
                amount.minor_units().expect("minor units"),
                amount.currency().code(),
            ),
            country: Some(country),
        },
    };
    let outcome = deps
        .ledger
        .apply_payment(&event, now)
        .await
        .expect("payment applied");
    assert!(
        matches!(outcome, PaymentOutcome::Credited { .. }),
        "{outcome:?}"
    );
    receipt.purchase_id
}

/// The payment paired with a purchase `buy_package` makes (`pi_test_<purchase>`).
pub fn test_payment(purchase: &PurchaseId) -> PaymentIntentId {
    let suffix = purchase.as_str().trim_start_matches(PurchaseId::PREFIX);
    PaymentIntentId::new(format!("pi_test_{suffix}")).expect("a payment id")
}

/// Enrolls `user` as a creator (no age check: the test says who is a creator).
pub async fn enroll(deps: &Deps<MemoryStore>, user: &str) {
    let user = UserId::new(user).expect("a user id");
    deps.ledger
        .enroll_creator(&user, deps.now())
        .await
        .expect("enrolled");
}

/// What the `earnings` function does from the stream: every gift entry in the table counted
/// into its creator's earnings (idempotent: entries counted before are skipped).
pub async fn count_gifts(deps: &Deps<MemoryStore>) -> Counted {
    let gifts: Vec<GiftRecord> = deps
        .ledger
        .store()
        .scan_all()
        .await
        .expect("scan")
        .into_iter()
        .filter_map(|record| GiftRecord::try_from(record).ok())
        .collect();
    deps.ledger
        .count_gifts(&gifts, deps.now())
        .await
        .expect("gifts counted")
}

/// The claims of the fixtures' default caller: an adult billed in Japan, in Tokyo.
pub fn tokyo_claims() -> Value {
    json!({
        "sub": "alice",
        "birthdate": "1990-01-01",
        "billing_country": "JP",
        "zoneinfo": "Asia/Tokyo",
        "scope": "openid",
    })
}

/// The instant as a timestamp.
pub fn at(instant: &str) -> Timestamp {
    instant.parse().expect("an RFC 3339 instant")
}

/// The zone named (tests name real IANA zones).
pub fn zone(name: &str) -> Zone {
    Zone::get(name).expect("an IANA zone")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_fixture_is_a_payload_2_event_whose_route_matches_its_path() {
        let dir = fixture_path("apigw", "x").parent().unwrap().to_owned();
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter_map(|file| file.strip_suffix(".json").map(str::to_owned))
            .collect();
        names.sort();
        assert!(names.len() >= 13, "{names:?}");
        for name in &names {
            let event = Event::load(name).0;
            assert_eq!(event["version"], "2.0", "{name}");
            let route = event["routeKey"].as_str().unwrap();
            let (method, path) = route.split_once(' ').unwrap();
            assert_eq!(event["requestContext"]["http"]["method"], method, "{name}");
            assert_eq!(event["requestContext"]["routeKey"], route, "{name}");
            if !path.contains('{') {
                assert_eq!(event["rawPath"], path, "{name}");
            }
            let public = path.starts_with("/v1/webhooks/");
            let has_authorizer = event["requestContext"].get("authorizer").is_some();
            assert_eq!(has_authorizer, !public, "{name}");
            Event::load(name).request();
        }
    }
}
