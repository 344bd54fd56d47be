//! Stripe's side of the webhook: event bodies as Stripe sends them and the `Stripe-Signature`
//! header, computed here from Stripe's documented scheme (HMAC-SHA256 over `"<t>.<raw body>"`,
//! hex, `t=<unix s>,v1=<hex>`), independently of the server's code.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};

/// The webhook secret the tests give the local server.
pub const WEBHOOK_SECRET: &str = "whsec_e2e_not_for_production";

/// The header value for `body` signed at `unix_seconds` with `secret`.
pub fn signature_header(secret: &str, unix_seconds: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={unix_seconds},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// A Stripe event of `kind` about `object`, with a fresh id.
pub fn event(kind: &str, object: Value) -> String {
    json!({
        "id": new_id("evt_e2e_"),
        "object": "event",
        "api_version": "2024-06-20",
        "type": kind,
        "created": jiff::Timestamp::now().as_second(),
        "livemode": false,
        "data": {"object": object},
    })
    .to_string()
}

/// A PaymentIntent as Stripe's events carry it: amount in minor units, lowercase currency, our
/// metadata, and its charge expanded with the card's issuing `country`.
pub fn payment_intent(
    id: &str,
    purchase_id: &str,
    amount_minor: i64,
    currency: &str,
    country: &str,
) -> Value {
    json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount_minor,
        "currency": currency.to_ascii_lowercase(),
        "status": "succeeded",
        "metadata": {"purchase_id": purchase_id},
        "latest_charge": {
            "id": new_id("ch_e2e_"),
            "object": "charge",
            "payment_intent": id,
            "payment_method_details": {"type": "card", "card": {"country": country}},
        },
    })
}

/// A Dispute of the charge of `payment_intent`; `status` as Stripe names it (`needs_response`
/// when opened, `won` or `lost` when closed).
pub fn dispute(id: &str, payment_intent: &str, status: &str) -> Value {
    json!({
        "id": id,
        "object": "dispute",
        "charge": new_id("ch_e2e_"),
        "payment_intent": payment_intent,
        "status": status,
        "reason": "fraudulent",
    })
}

/// The minor units of an amount as API.md writes it: the decimal string has exactly the
/// currency's minor digits, so dropping the point gives them ("7.49" → 749, "160" → 160).
#[track_caller]
pub fn minor_units(gross: &str) -> i64 {
    gross
        .replace('.', "")
        .parse()
        .unwrap_or_else(|_| panic!("not a decimal amount: {gross:?}"))
}

/// A fresh id with Stripe's `prefix`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_time_dot_body() {
        // Vector computed outside Rust: python3 hmac.new(secret, b'1773307800.{"id":"evt_1"}', sha256).
        assert_eq!(
            signature_header(
                "e2e-webhook-secret-not-for-production",
                1_773_307_800,
                br#"{"id":"evt_1"}"#
            ),
            "t=1773307800,v1=55d92c42f9e7611c0d07bfd8738c1377e9bb5a7c778284a5a59a538a2de076a2"
        );
    }

    #[test]
    fn our_signature_is_the_one_the_server_code_accepts() {
        let body = event(
            "payment_intent.succeeded",
            payment_intent("pi_1", "pur_1", 160, "JPY", "JP"),
        );
        let at = jiff::Timestamp::from_second(1_773_307_800).unwrap();
        let secret = coins_http::WebhookSecret::new(WEBHOOK_SECRET).unwrap();
        let ours = signature_header(WEBHOOK_SECRET, at.as_second(), body.as_bytes());
        assert_eq!(ours, secret.sign(at, body.as_bytes()));
        assert!(secret.verify(Some(&ours), body.as_bytes(), at).is_ok());
    }

    #[test]
    fn minor_units_drop_the_point() {
        assert_eq!(minor_units("7.49"), 749);
        assert_eq!(minor_units("160"), 160);
        assert_eq!(minor_units("2.500"), 2500);
    }
}
