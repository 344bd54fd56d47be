//! The edge's proof of passage: with the CloudFront edge on, every request must carry the
//! header the edge adds with a secret value, so calling the `execute-api` endpoint directly (and
//! skipping the edge's rate limits) is refused before any handler runs.
//!
//! `EDGE_ORIGIN_SECRET` configures it (the template sets it only when the edge is on); unset or
//! empty, there is nothing to check, as in the local server. `infra/README.md` says why a
//! header and not a custom domain.

use std::sync::OnceLock;

use lambda_http::Request;

use crate::error::{ApiError, Problem};

/// The header CloudFront adds to every request it forwards to the API.
pub const ORIGIN_HEADER: &str = "x-coins-origin-verify";

/// The environment variable holding the header's expected value.
pub const ORIGIN_SECRET_VAR: &str = "EDGE_ORIGIN_SECRET";

/// What a request must carry to be served.
#[derive(Clone, Default)]
pub struct OriginCheck {
    secret: Option<Vec<u8>>,
}

impl OriginCheck {
    /// Requests must carry `secret` in [`ORIGIN_HEADER`]; `None` or empty: no check.
    pub fn new(secret: Option<&str>) -> OriginCheck {
        OriginCheck {
            secret: secret
                .map(str::trim)
                .filter(|secret| !secret.is_empty())
                .map(|secret| secret.as_bytes().to_vec()),
        }
    }

    /// The process's check, from `EDGE_ORIGIN_SECRET`, read once (a cold start's environment
    /// does not change).
    pub fn from_env() -> &'static OriginCheck {
        static CHECK: OnceLock<OriginCheck> = OnceLock::new();
        CHECK.get_or_init(|| OriginCheck::new(std::env::var(ORIGIN_SECRET_VAR).ok().as_deref()))
    }

    /// Whether requests are checked at all.
    pub fn is_on(&self) -> bool {
        self.secret.is_some()
    }

    /// Passes a request that came through the edge (or any request when off); otherwise 403.
    pub fn admit(&self, req: &Request) -> Result<(), ApiError> {
        let Some(secret) = &self.secret else {
            return Ok(());
        };
        let presented = req
            .headers()
            .get(ORIGIN_HEADER)
            .map(|value| value.as_bytes())
            .unwrap_or_default();
        if same_secret(presented, secret) {
            Ok(())
        } else {
            Err(ApiError::new(
                Problem::Forbidden,
                "this API is reached through its edge only",
            ))
        }
    }
}

/// Never prints the secret.
impl std::fmt::Debug for OriginCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_on() {
            "OriginCheck(on)"
        } else {
            "OriginCheck(off)"
        })
    }
}

/// Equality whose time does not depend on where the bytes first differ (a guess is not told
/// how much of it was right); only the length can show.
fn same_secret(presented: &[u8], secret: &[u8]) -> bool {
    presented.len() == secret.len()
        && presented
            .iter()
            .zip(secret)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(header: Option<&str>) -> Request {
        let mut builder = lambda_http::http::Request::builder().uri("/v1/wallet");
        if let Some(value) = header {
            builder = builder.header(ORIGIN_HEADER, value);
        }
        builder.body(lambda_http::Body::Empty).expect("a request")
    }

    #[test]
    fn with_a_secret_only_requests_carrying_it_pass() {
        let check = OriginCheck::new(Some("edge-secret-0123456789"));
        assert!(check.is_on());
        assert!(
            check
                .admit(&request(Some("edge-secret-0123456789")))
                .is_ok()
        );
        for wrong in [
            None,
            Some(""),
            Some("edge-secret-012345678"),
            Some("edge-secret-0123456788"),
        ] {
            let error = check.admit(&request(wrong)).expect_err("refused");
            assert_eq!(error.code(), "forbidden", "{wrong:?}");
        }
    }

    #[test]
    fn unconfigured_it_checks_nothing() {
        for check in [OriginCheck::new(None), OriginCheck::new(Some("  "))] {
            assert!(!check.is_on());
            assert!(check.admit(&request(None)).is_ok());
        }
        assert_eq!(
            format!("{:?}", OriginCheck::new(Some("s"))),
            "OriginCheck(on)"
        );
    }
}
