//! Whether the local server may start as configured: its development conveniences must stay on
//! the developer's own machine and data.
//!
//! The dev routes move the test clock (closing refund windows) and pay purchases without a
//! card; the default `DEV_JWT_SECRET` is public, so anyone can mint a token (an admin's too);
//! the default `STRIPE_WEBHOOK_SECRET` is public, so anyone can sign a payment event. Any of
//! them is harmless on loopback over a local table and a free-for-all anywhere else: the server
//! refuses to listen beyond loopback, or to use a DynamoDB endpoint that is not local, while
//! any of them is on.

use std::net::IpAddr;

use lambda_http::http::Uri;

/// What the server was asked to run with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exposure<'a> {
    /// `--host`.
    pub host: &'a str,
    /// `--dynamodb-endpoint`, if any (none: the in-memory store).
    pub dynamodb_endpoint: Option<&'a str>,
    /// The `/_dev/…` routes (off with `--no-dev-routes`).
    pub dev_routes: bool,
    /// `DEV_JWT_SECRET` unset or empty: the documented default signs tokens.
    pub default_dev_jwt_secret: bool,
    /// `STRIPE_WEBHOOK_SECRET` unset or empty: the documented default verifies events.
    pub default_webhook_secret: bool,
}

/// Why the server refuses to start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to start: {reached} while {unsafe_settings} (turn them off: --no-dev-routes, and set \
     DEV_JWT_SECRET and STRIPE_WEBHOOK_SECRET to secrets of your own)"
)]
pub struct Refused {
    /// What reaches beyond this machine.
    pub reached: String,
    /// The development settings still on.
    pub unsafe_settings: String,
}

impl Exposure<'_> {
    /// Starts only if nothing reaches beyond loopback or no development setting is on.
    pub fn check(&self) -> Result<(), Refused> {
        let mut reached = Vec::new();
        if !is_loopback_host(self.host) {
            reached.push(format!("--host {} is not loopback", self.host));
        }
        if let Some(endpoint) = self.dynamodb_endpoint.filter(|e| !is_local_endpoint(e)) {
            reached.push(format!("--dynamodb-endpoint {endpoint} is not local"));
        }
        let settings: Vec<&str> = [
            (self.dev_routes, "the /_dev routes are on"),
            (
                self.default_dev_jwt_secret,
                "DEV_JWT_SECRET is the public default",
            ),
            (
                self.default_webhook_secret,
                "STRIPE_WEBHOOK_SECRET is the public default",
            ),
        ]
        .into_iter()
        .filter_map(|(on, what)| on.then_some(what))
        .collect();
        if reached.is_empty() || settings.is_empty() {
            return Ok(());
        }
        Err(Refused {
            reached: reached.join(" and "),
            unsafe_settings: settings.join(", "),
        })
    }
}

/// `localhost`, or an address in 127.0.0.0/8 or `::1` (bracketed or not).
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// A URL whose host is loopback (`http://127.0.0.1:8000`, `http://localhost:8000`,
/// `http://[::1]:8000`). The host is parsed, not searched for: `http://127.0.0.1.example.com`
/// and `http://localhost@example.com` are not local.
pub fn is_local_endpoint(endpoint: &str) -> bool {
    endpoint
        .parse::<Uri>()
        .ok()
        .filter(|uri| uri.scheme().is_some())
        .and_then(|uri| uri.host().map(is_loopback_host))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in [
            "127.0.0.1",
            "127.1.2.3",
            "localhost",
            "LOCALHOST",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "0.0.0.0",
            "::",
            "192.168.1.10",
            "example.com",
            "128.0.0.1",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn local_endpoints_are_parsed_not_searched() {
        for endpoint in [
            "http://127.0.0.1:46411",
            "http://localhost:8000",
            "http://[::1]:8000/",
            "http://127.9.9.9",
        ] {
            assert!(is_local_endpoint(endpoint), "{endpoint}");
        }
        for endpoint in [
            "https://dynamodb.eu-west-1.amazonaws.com",
            "http://127.0.0.1.example.com:8000",
            "http://localhost@example.com",
            "http://example.com/?http://127.0.0.1",
            "127.0.0.1:8000",
            "not a url",
        ] {
            assert!(!is_local_endpoint(endpoint), "{endpoint}");
        }
    }
}
