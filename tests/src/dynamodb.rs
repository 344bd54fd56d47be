//! DynamoDB Local for the tests: where it is (`DYNAMODB_ENDPOINT`, exported by the test command)
//! and a fresh table name per test. A missing or unreachable endpoint fails the test with a
//! clear message; it never skips.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The variable the test command exports: `http://127.0.0.1:<port>`.
pub const ENDPOINT_VAR: &str = "DYNAMODB_ENDPOINT";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The DynamoDB Local endpoint, checked to answer HTTP. Panics with what to do otherwise.
#[track_caller]
pub fn endpoint() -> String {
    let endpoint = std::env::var(ENDPOINT_VAR)
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{ENDPOINT_VAR} is not set: these end-to-end tests need DynamoDB Local. Run them \
                 with scripts/test, or start one with `scripts/dynamodb-local start` and export \
                 the {ENDPOINT_VAR}=... line it prints"
            )
        });
    if let Err(reason) = check_reachable(&endpoint) {
        panic!(
            "{ENDPOINT_VAR}={endpoint} is unreachable ({reason}): is DynamoDB Local running? \
             (`scripts/dynamodb-local start`)"
        );
    }
    endpoint
}

/// Whether something answers HTTP at `endpoint` (DynamoDB Local answers `GET /` with a 400).
pub fn check_reachable(endpoint: &str) -> Result<(), String> {
    let authority = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| format!("expected an http:// URL, got {endpoint:?}"))?
        .trim_end_matches('/');
    let addrs: Vec<SocketAddr> = authority
        .to_socket_addrs()
        .map_err(|error| format!("cannot resolve {authority}: {error}"))?
        .collect();
    let addr = addrs
        .first()
        .ok_or_else(|| format!("{authority} resolves to no address"))?;
    TcpStream::connect_timeout(addr, CONNECT_TIMEOUT)
        .map_err(|error| format!("cannot connect to {addr}: {error}"))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(CONNECT_TIMEOUT))
        .build()
        .into();
    agent
        .get(endpoint)
        .call()
        .map(|_| ())
        .map_err(|error| format!("no HTTP answer: {error}"))
}

/// A table name no other test uses: `e2e-<label>-<random>` (3 to 255 characters, as DynamoDB
/// requires).
pub fn fresh_table_name(label: &str) -> String {
    let label: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(64)
        .collect();
    format!("e2e-{label}-{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_table_names_differ_and_are_valid() {
        let a = fresh_table_name("main flow");
        let b = fresh_table_name("main flow");
        assert_ne!(a, b);
        assert!(a.starts_with("e2e-main-flow-"));
        assert!((3..=255).contains(&a.len()));
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        );
    }

    #[test]
    fn an_endpoint_nobody_listens_on_is_unreachable() {
        let port = crate::process::free_port();
        let error = check_reachable(&format!("http://127.0.0.1:{port}")).unwrap_err();
        assert!(error.contains("cannot connect"), "{error}");
    }

    #[test]
    fn a_non_http_endpoint_is_refused_with_its_reason() {
        assert!(check_reachable("https://dynamodb.us-east-1.amazonaws.com").is_err());
    }
}
