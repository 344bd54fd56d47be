//! The payment provider's side of the webhook: event bodies and the `Payment-Signature` header,
//! computed here from API.md (HMAC-SHA256 over `"<t>.<raw body>"`, hex, `t=<unix s>,v1=<hex>`),
//! independently of the server's code.

use hmac::{Hmac, Mac};
use serde_json::json;

/// The webhook secret the tests give the local server.
pub const WEBHOOK_SECRET: &str = "e2e-webhook-secret-not-for-production";

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

/// A payment event of API.md: `kind` is `payment.succeeded` or `payment.failed`; `amount` the
/// decimal string of the gross amount.
pub fn event(
    event_id: &str,
    kind: &str,
    purchase_id: &str,
    amount: &str,
    currency: &str,
    country: &str,
) -> String {
    json!({
        "id": event_id,
        "type": kind,
        "data": {
            "purchase_id": purchase_id,
            "amount": amount,
            "currency": currency,
            "country": country,
        }
    })
    .to_string()
}

/// A fresh provider event id.
pub fn new_event_id() -> String {
    format!("evt_{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_time_dot_body() {
        // Vector computed outside Rust: python3 hmac.new(secret, b'1773307800.{"id":"evt_1"}', sha256).
        assert_eq!(
            signature_header(WEBHOOK_SECRET, 1_773_307_800, br#"{"id":"evt_1"}"#),
            "t=1773307800,v1=55d92c42f9e7611c0d07bfd8738c1377e9bb5a7c778284a5a59a538a2de076a2"
        );
    }

    #[test]
    fn our_signature_is_the_one_the_server_code_accepts() {
        let body = event("evt_1", "payment.succeeded", "pur_1", "160", "JPY", "JP");
        let at = jiff::Timestamp::from_second(1_773_307_800).unwrap();
        let secret = coins_http::WebhookSecret::new(WEBHOOK_SECRET).unwrap();
        let ours = signature_header(WEBHOOK_SECRET, at.as_second(), body.as_bytes());
        assert_eq!(ours, secret.sign(at, body.as_bytes()));
        assert!(secret.verify(Some(&ours), body.as_bytes(), at).is_ok());
    }
}
