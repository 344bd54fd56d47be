//! Stripe's webhook signature: `Stripe-Signature: t=<unix s>,v1=<hex HMAC-SHA256>`.
//!
//! The MAC is over `"<t>.<raw body>"` with the endpoint's signing secret (`whsec_…`, used as
//! given), so neither the body nor the time can be changed without the secret. The time must be
//! within [`TOLERANCE`] of our wall clock both ways ([`WebhookSecret::verify_now`]), which
//! bounds replays (the event id makes a replay harmless anyway). Several `v1` values are allowed, as Stripe sends while a secret is rolled;
//! one match suffices. The comparison is `hmac`'s constant-time `verify_slice`.

use std::fmt;

use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use sha2::Sha256;

use crate::error::{ApiError, Problem};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "stripe-signature";

/// How far the signed time may be from our clock, either way.
pub const TOLERANCE: SignedDuration = SignedDuration::from_secs(300);

/// A header longer than this is not a signature (it bounds the work an attacker can cause).
const MAX_HEADER_LEN: usize = 1024;

/// More `v1` values than this is not a rotation, it is someone guessing.
const MAX_SIGNATURES: usize = 4;

type HmacSha256 = Hmac<Sha256>;

/// The shared webhook secret. Its `Debug` never prints it.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

/// An empty secret would make every signature forgeable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the webhook secret is empty")]
pub struct EmptySecret;

impl WebhookSecret {
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, EmptySecret> {
        let secret = secret.into();
        if secret.is_empty() {
            Err(EmptySecret)
        } else {
            Ok(WebhookSecret(secret))
        }
    }

    fn mac(&self, timestamp: &str, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The header value the provider would send for `body` at `at` (for tests and dev tools).
    pub fn sign(&self, at: Timestamp, body: &[u8]) -> String {
        let t = at.as_second().to_string();
        let signature = hex::encode(self.mac(&t, body).finalize().into_bytes());
        format!("t={t},v1={signature}")
    }

    /// [`verify`](Self::verify) at the machine's wall clock, as every receiver checks: the
    /// tolerance bounds replays of a signature its sender made at its own wall-clock time, a
    /// transport check, so never a ledger's clock (a local server's test clock moves, and every
    /// real signature would then be too old).
    pub fn verify_now(&self, header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
        self.verify(header, body, Timestamp::now())
    }

    /// Checks `header` (the `Stripe-Signature` value, if any) against `body` at `now`.
    pub fn verify(
        &self,
        header: Option<&str>,
        body: &[u8],
        now: Timestamp,
    ) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let parsed = ParsedHeader::parse(header)?;
        let mac = self.mac(parsed.timestamp, body);
        let matches = parsed
            .signatures
            .iter()
            .any(|candidate| mac.clone().verify_slice(candidate).is_ok());
        if !matches {
            return Err(SignatureError::Mismatch);
        }
        let signed_at = parsed.signed_at;
        if signed_at < now - TOLERANCE {
            return Err(SignatureError::TooOld {
                age_seconds: (now - signed_at).get_seconds(),
            });
        }
        if signed_at > now + TOLERANCE {
            return Err(SignatureError::TooNew {
                ahead_seconds: (signed_at - now).get_seconds(),
            });
        }
        Ok(())
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// Why a webhook's signature was refused: each is a 400 `invalid_signature`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header is malformed: {0}")]
    Malformed(&'static str),
    #[error("the signature does not match the body")]
    Mismatch,
    #[error("the signature is {age_seconds} s old, more than the tolerance")]
    TooOld { age_seconds: i64 },
    #[error("the signature is {ahead_seconds} s in the future, more than the tolerance")]
    TooNew { ahead_seconds: i64 },
}

impl From<SignatureError> for ApiError {
    fn from(error: SignatureError) -> Self {
        ApiError::new(Problem::InvalidSignature, error)
    }
}

struct ParsedHeader<'a> {
    timestamp: &'a str,
    signed_at: Timestamp,
    signatures: Vec<Vec<u8>>,
}

impl<'a> ParsedHeader<'a> {
    fn parse(header: &'a str) -> Result<Self, SignatureError> {
        use SignatureError::Malformed;
        if header.len() > MAX_HEADER_LEN {
            return Err(Malformed("too long"));
        }
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for part in header.split(',') {
            let (key, value) = part
                .trim()
                .split_once('=')
                .ok_or(Malformed("expected key=value pairs"))?;
            match key {
                "t" if timestamp.is_some() => return Err(Malformed("more than one t")),
                "t" => timestamp = Some(value),
                "v1" => {
                    let signature = hex::decode(value).map_err(|_| Malformed("v1 is not hex"))?;
                    if signature.len() != 32 {
                        return Err(Malformed("v1 is not a SHA-256 HMAC"));
                    }
                    signatures.push(signature);
                }
                // Other schemes (v0, future versions) are the provider's business: skip them.
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(Malformed("no t"))?;
        if signatures.is_empty() {
            return Err(Malformed("no v1"));
        }
        if signatures.len() > MAX_SIGNATURES {
            return Err(Malformed("too many v1 values"));
        }
        // Digits only: `i64::from_str` would also take a sign, which the provider never sends.
        if timestamp.is_empty()
            || timestamp.len() > 12
            || !timestamp.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(Malformed("t is not unix seconds"));
        }
        let seconds: i64 = timestamp
            .parse()
            .map_err(|_| Malformed("t is not unix seconds"))?;
        let signed_at =
            Timestamp::from_second(seconds).map_err(|_| Malformed("t is out of range"))?;
        Ok(ParsedHeader {
            timestamp,
            signed_at,
            signatures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment.succeeded"}"#;

    fn secret() -> WebhookSecret {
        WebhookSecret::new("whsec_test").unwrap()
    }

    fn now() -> Timestamp {
        "2026-03-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_valid_signature_is_accepted() {
        let header = secret().sign(now(), BODY);
        assert_eq!(secret().verify(Some(&header), BODY, now()), Ok(()));
    }

    #[test]
    fn a_tampered_body_is_rejected() {
        let header = secret().sign(now(), BODY);
        let tampered = br#"{"id":"evt_1","type":"payment.succeeded","amount":"0"}"#;
        assert_eq!(
            secret().verify(Some(&header), tampered, now()),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_tampered_timestamp_is_rejected() {
        let header = secret().sign(now(), BODY);
        let later = now().as_second() + 1;
        let moved = header.replacen(
            &format!("t={}", now().as_second()),
            &format!("t={later}"),
            1,
        );
        assert_eq!(
            secret().verify(Some(&moved), BODY, now()),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn another_secret_is_rejected() {
        let header = WebhookSecret::new("whsec_other").unwrap().sign(now(), BODY);
        assert_eq!(
            secret().verify(Some(&header), BODY, now()),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_signature_older_than_the_tolerance_is_rejected() {
        let signed_at = now() - SignedDuration::from_secs(301);
        let header = secret().sign(signed_at, BODY);
        assert_eq!(
            secret().verify(Some(&header), BODY, now()),
            Err(SignatureError::TooOld { age_seconds: 301 })
        );
        let at_the_edge = secret().sign(now() - TOLERANCE, BODY);
        assert_eq!(secret().verify(Some(&at_the_edge), BODY, now()), Ok(()));
    }

    #[test]
    fn a_signature_too_far_in_the_future_is_rejected() {
        let header = secret().sign(now() + SignedDuration::from_secs(301), BODY);
        assert_eq!(
            secret().verify(Some(&header), BODY, now()),
            Err(SignatureError::TooNew { ahead_seconds: 301 })
        );
        let at_the_edge = secret().sign(now() + TOLERANCE, BODY);
        assert_eq!(secret().verify(Some(&at_the_edge), BODY, now()), Ok(()));
    }

    #[test]
    fn malformed_headers_are_rejected_by_name() {
        let good = secret().sign(now(), BODY);
        let v1 = good.split_once(",v1=").unwrap().1.to_owned();
        let t = now().as_second();
        for (header, reason) in [
            (format!("v1={v1}"), "no t"),
            (format!("t={t}"), "no v1"),
            (format!("t={t},v1=zz"), "v1 is not hex"),
            (format!("t={t},v1=abcd"), "v1 is not a SHA-256 HMAC"),
            (format!("t=-{t},v1={v1}"), "t is not unix seconds"),
            (format!("t=soon,v1={v1}"), "t is not unix seconds"),
            (format!("t={t},t={t},v1={v1}"), "more than one t"),
            (format!("t={t};v1={v1}"), "no v1"),
            ("garbage".to_owned(), "expected key=value pairs"),
        ] {
            assert_eq!(
                secret().verify(Some(&header), BODY, now()),
                Err(SignatureError::Malformed(reason)),
                "{header}"
            );
        }
        assert_eq!(
            secret().verify(None, BODY, now()),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn multiple_v1_values_pass_if_one_matches_as_during_secret_rotation() {
        let good = secret().sign(now(), BODY);
        let v1 = good.split_once(",v1=").unwrap().1;
        let stale = WebhookSecret::new("whsec_old").unwrap().sign(now(), BODY);
        let stale_v1 = stale.split_once(",v1=").unwrap().1;
        let t = now().as_second();
        let both = format!("t={t},v1={stale_v1},v1={v1}");
        assert_eq!(secret().verify(Some(&both), BODY, now()), Ok(()));
        let neither = format!("t={t},v1={stale_v1},v1={stale_v1}");
        assert_eq!(
            secret().verify(Some(&neither), BODY, now()),
            Err(SignatureError::Mismatch)
        );
        let flood = format!("t={t}{}", format!(",v1={v1}").repeat(5));
        assert_eq!(
            secret().verify(Some(&flood), BODY, now()),
            Err(SignatureError::Malformed("too many v1 values"))
        );
    }

    #[test]
    fn unknown_schemes_are_ignored() {
        let good = secret().sign(now(), BODY);
        let with_v0 = format!("{good},v0=deadbeef");
        assert_eq!(secret().verify(Some(&with_v0), BODY, now()), Ok(()));
    }

    #[test]
    fn the_secret_never_prints_and_is_never_empty() {
        assert_eq!(format!("{:?}", secret()), "WebhookSecret(<redacted>)");
        assert_eq!(WebhookSecret::new("").unwrap_err(), EmptySecret);
    }
}
