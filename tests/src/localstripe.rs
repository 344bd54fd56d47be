//! localstripe (PyPI): a stateful fake of Stripe's REST API, one per test, on a free 127.0.0.1
//! port, started with `scripts/localstripe-server` by the Python of `LOCALSTRIPE_PYTHON` (the test
//! command installs it and exports that). Unset or broken, a test using it fails saying so.
//!
//! What the tests do as Stripe.js and the Dashboard would: make a card PaymentMethod, attach it
//! to the purchase's PaymentIntent and confirm it, register our webhook endpoint, read the
//! refunds made. Its quirks (cards report country FR, webhooks arrive about 1 s after the call
//! and are never retried) are in ../shared/NOTES.md.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::process::{ChildGuard, free_port};

/// The variable naming the Python that has localstripe installed.
pub const PYTHON_VAR: &str = "LOCALSTRIPE_PYTHON";
/// Any `sk_test_…` key is accepted.
pub const SECRET_KEY: &str = "sk_test_e2e";
/// A card that pays.
pub const CARD_OK: &str = "4242424242424242";
/// A card that attaches, then is declined at charge time (`payment_intent.payment_failed`).
pub const CARD_DECLINED: &str = "4000000000000341";
/// localstripe answers in well under a second.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running localstripe, stopped when dropped.
#[derive(Debug)]
pub struct Localstripe {
    base_url: String,
    agent: ureq::Agent,
    _process: ChildGuard,
}

/// A reply: status and JSON body (`Null` when the body is not JSON, as some errors are not).
#[derive(Debug)]
pub struct StripeReply {
    pub status: u16,
    pub body: Value,
}

impl Localstripe {
    /// Starts one and waits until it answers.
    #[track_caller]
    pub fn start() -> Localstripe {
        let python = std::env::var(PYTHON_VAR)
            .ok()
            .filter(|value| !value.trim().is_empty())
            .unwrap_or_else(|| {
                panic!(
                    "{PYTHON_VAR} is not set: these tests need localstripe (PyPI). Run them with \
                     scripts/test, which installs it and sets {PYTHON_VAR}"
                )
            });
        let launcher =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/localstripe-server");
        let port = free_port();
        let mut command = Command::new(&python);
        command.arg(&launcher).args(["--port", &port.to_string()]);
        let mut process = ChildGuard::spawn("localstripe", &mut command);
        wait_ready(&mut process, port);
        Localstripe {
            base_url: format!("http://127.0.0.1:{port}"),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(30)))
                .build()
                .into(),
            _process: process,
        }
    }

    /// The API base URL to give the local server (`--stripe-api-base`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `POST` a form to `path`.
    pub fn post(&self, path: &str, form: &[(&str, &str)]) -> StripeReply {
        let response = self
            .agent
            .post(format!("{}{path}", self.base_url))
            .header("authorization", format!("Bearer {SECRET_KEY}"))
            .send_form(form.iter().copied());
        reply(response)
    }

    /// `GET` `path` (with its query).
    pub fn get(&self, path: &str) -> StripeReply {
        let response = self
            .agent
            .get(format!("{}{path}", self.base_url))
            .header("authorization", format!("Bearer {SECRET_KEY}"))
            .call();
        reply(response)
    }

    /// Sends every event to `url`, signed with `secret`.
    #[track_caller]
    pub fn register_webhook(&self, url: &str, secret: &str) {
        let reply = self.post("/_config/webhooks/e2e", &[("url", url), ("secret", secret)]);
        assert_eq!(reply.status, 200, "registering the webhook: {reply:?}");
    }

    /// Pays `payment_intent` with the card `number` as Stripe.js would (a PaymentMethod, set on
    /// the intent, then confirmed); the confirmation's reply (200 paid, 402 declined).
    #[track_caller]
    pub fn pay(&self, payment_intent: &str, number: &str) -> StripeReply {
        let method = self.post(
            "/v1/payment_methods",
            &[
                ("type", "card"),
                ("card[number]", number),
                ("card[exp_month]", "12"),
                ("card[exp_year]", "2030"),
                ("card[cvc]", "123"),
            ],
        );
        assert_eq!(method.status, 200, "a PaymentMethod: {method:?}");
        let method_id = method.body["id"].as_str().expect("a PaymentMethod id");
        let attached = self.post(
            &format!("/v1/payment_intents/{payment_intent}"),
            &[("payment_method", method_id)],
        );
        assert_eq!(attached.status, 200, "attaching the card: {attached:?}");
        self.post(
            &format!("/v1/payment_intents/{payment_intent}/confirm"),
            &[],
        )
    }

    /// Every refund of `payment_intent`, newest first.
    #[track_caller]
    pub fn refunds_of(&self, payment_intent: &str) -> Vec<Value> {
        let list = self.get(&format!(
            "/v1/refunds?payment_intent={payment_intent}&limit=100"
        ));
        assert_eq!(list.status, 200, "{list:?}");
        list.body["data"].as_array().cloned().unwrap_or_default()
    }

    /// The event of `kind` about the object `object_id`, as Stripe lists it (the body a webhook
    /// delivery of it carries).
    #[track_caller]
    pub fn event_about(&self, kind: &str, object_id: &str) -> String {
        let list = self.get(&format!("/v1/events?type={kind}&limit=100"));
        assert_eq!(list.status, 200, "{list:?}");
        let events = list.body["data"].as_array().cloned().unwrap_or_default();
        events
            .into_iter()
            .find(|event| event["data"]["object"]["id"] == object_id)
            .unwrap_or_else(|| panic!("no {kind} event about {object_id}"))
            .to_string()
    }

    /// The PaymentIntent as Stripe has it.
    #[track_caller]
    pub fn payment_intent(&self, id: &str) -> Value {
        let intent = self.get(&format!("/v1/payment_intents/{id}"));
        assert_eq!(intent.status, 200, "{intent:?}");
        intent.body
    }
}

fn reply(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> StripeReply {
    let mut response = response.unwrap_or_else(|error| panic!("localstripe unreachable: {error}"));
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    StripeReply {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

/// Waits for the server to answer on `port`; fails with its log if it exits or never does.
#[track_caller]
fn wait_ready(process: &mut ChildGuard, port: u16) {
    let deadline = Instant::now() + READY_TIMEOUT;
    let probe: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    loop {
        if let Some(status) = process.exited() {
            panic!(
                "localstripe exited ({status}); is it installed for {}? Its log:\n{}",
                std::env::var(PYTHON_VAR).unwrap_or_default(),
                process.log_tail()
            );
        }
        let answered = probe
            .get(format!(
                "http://127.0.0.1:{port}/v1/payment_intents?limit=1"
            ))
            .header("authorization", format!("Bearer {SECRET_KEY}"))
            .call()
            .is_ok_and(|response| response.status() == 200);
        if answered {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "localstripe did not answer within {READY_TIMEOUT:?}; its log:\n{}",
            process.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
