//! Plain HTTP to the server under test, with the assertions every test makes on a reply: the
//! status, the media type (`application/json`, or `application/problem+json` for an error) and
//! the stable `code` of API.md; and on every reply, that it is as `api/openapi.json` says.
//!
//! Requests are built fluently: `api.post("/v1/quotes").user(&alice).json(&body).send()`.

use std::time::Duration;

use serde_json::Value;
use ureq::http::{self, Method};

use crate::conformance;
use crate::identity::User;

/// No request the tests make takes anywhere near this long; it only stops a hung test.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The media type of every error body (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A client bound to one server's base URL (`http://127.0.0.1:<port>`).
#[derive(Clone, Debug)]
pub struct Api {
    base_url: String,
    agent: ureq::Agent,
}

impl Api {
    pub fn new(base_url: impl Into<String>) -> Api {
        let agent = ureq::Agent::config_builder()
            // Every status is a reply to assert on, not a transport error.
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .into();
        Api {
            base_url: base_url.into(),
            agent,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn get(&self, path: &str) -> Call<'_> {
        self.call(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> Call<'_> {
        self.call(Method::POST, path)
    }

    pub fn put(&self, path: &str) -> Call<'_> {
        self.call(Method::PUT, path)
    }

    pub fn call(&self, method: Method, path: &str) -> Call<'_> {
        Call {
            api: self,
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }
}

/// A request being built.
#[must_use = "a request does nothing until it is sent"]
pub struct Call<'a> {
    api: &'a Api,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl Call<'_> {
    /// As `user`: `Authorization: Bearer <their token>`.
    pub fn user(self, user: &User) -> Self {
        self.bearer(&user.token())
    }

    /// With a given bearer token (a forged or expired one, say).
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn idempotency_key(self, key: &str) -> Self {
        self.header("idempotency-key", key)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A JSON body, `Content-Type: application/json`.
    pub fn json(self, body: &Value) -> Self {
        self.raw("application/json", body.to_string().into_bytes())
    }

    /// A body sent byte for byte (malformed JSON, a signed webhook's exact bytes).
    pub fn raw(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self.header("content-type", content_type)
    }

    /// Sends the request. A transport failure (server gone, refused) panics: it is never a
    /// reply the API gave.
    #[track_caller]
    pub fn send(self) -> Reply {
        let url = format!("{}{}", self.api.base_url, self.path);
        let mut builder = http::Request::builder()
            .method(self.method.clone())
            .uri(&url);
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        let result = match self.body {
            Some(body) => self
                .api
                .agent
                .run(builder.body(body).expect("a valid request")),
            None => self
                .api
                .agent
                .run(builder.body(()).expect("a valid request")),
        };
        let mut response =
            result.unwrap_or_else(|error| panic!("{} {url}: no HTTP reply: {error}", self.method));
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = response
            .body_mut()
            .with_config()
            .limit(16 * 1024 * 1024)
            .read_to_vec()
            .unwrap_or_else(|error| panic!("{} {url}: reading the body: {error}", self.method));
        let status = response.status().as_u16();
        if let Err(reason) = conformance::check(
            self.method.as_str(),
            &self.path,
            status,
            &content_type,
            &body,
        ) {
            panic!(
                "{} {}: the reply is not as api/openapi.json says: {reason}\n{}",
                self.method,
                self.path,
                String::from_utf8_lossy(&body)
            );
        }
        Reply {
            request: format!("{} {}", self.method, self.path),
            status,
            content_type,
            body,
        }
    }
}

/// What the server answered.
#[derive(Clone, Debug)]
pub struct Reply {
    /// `METHOD /path`, for failure messages.
    pub request: String,
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics (naming the request) if it is not JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "{}: the body is not JSON ({error}): {}",
                self.request,
                self.text()
            )
        })
    }

    /// Asserts a success with `status` and a JSON body, and returns the body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "{} answered {} {}",
            self.request,
            self.status,
            self.text()
        );
        assert_eq!(
            media_type(&self.content_type),
            "application/json",
            "{}: content type",
            self.request
        );
        self.json()
    }

    /// Asserts an RFC 9457 problem with `status` and the stable `code`, and returns it.
    #[track_caller]
    pub fn expect_problem(self, status: u16, code: &str) -> Value {
        assert_eq!(
            (self.status, media_type(&self.content_type).as_str()),
            (status, PROBLEM_JSON),
            "{} answered {} ({}) {}, expected {status} {code}",
            self.request,
            self.status,
            self.content_type,
            self.text()
        );
        let problem = self.json();
        assert_eq!(problem["code"], code, "{}: {problem}", self.request);
        assert_eq!(problem["status"], status, "{}: {problem}", self.request);
        for field in ["type", "title", "detail"] {
            assert!(
                problem[field].is_string(),
                "{}: the problem has no `{field}`: {problem}",
                self.request
            );
        }
        assert_no_internals(&self.request, &problem);
        problem
    }
}

/// `application/json; charset=utf-8` → `application/json`.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// API.md: "No error body ever carries a stack trace or an internal message."
#[track_caller]
fn assert_no_internals(request: &str, problem: &Value) {
    let text = problem.to_string().to_ascii_lowercase();
    for leak in [
        "panicked",
        "stack backtrace",
        "src/",
        ".rs:",
        "dynamodb",
        "dispatch failure",
        "conditionalcheckfailed",
        "serviceerror",
    ] {
        assert!(
            !text.contains(leak),
            "{request}: the problem leaks internals ({leak:?}): {problem}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, content_type: &str, body: &str) -> Reply {
        Reply {
            request: "GET /t".into(),
            status,
            content_type: content_type.into(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn problem(code: &str, detail: &str) -> String {
        serde_json::json!({
            "type": format!("urn:coins:problem:{code}"),
            "title": "x",
            "status": 409,
            "detail": detail,
            "code": code,
        })
        .to_string()
    }

    #[test]
    fn a_problem_with_its_code_passes() {
        let body = problem("insufficient_coins", "you have 3 coins");
        let value = reply(409, PROBLEM_JSON, &body).expect_problem(409, "insufficient_coins");
        assert_eq!(value["detail"], "you have 3 coins");
    }

    #[test]
    #[should_panic(expected = "expected 409 quote_expired")]
    fn a_problem_served_as_plain_json_fails() {
        let body = problem("quote_expired", "gone");
        reply(409, "application/json", &body).expect_problem(409, "quote_expired");
    }

    #[test]
    #[should_panic(expected = "leaks internals")]
    fn a_problem_naming_internals_fails() {
        let body = problem("insufficient_coins", "DynamoDB: ConditionalCheckFailed");
        reply(409, PROBLEM_JSON, &body).expect_problem(409, "insufficient_coins");
    }

    #[test]
    #[should_panic(expected = "answered 500")]
    fn a_success_with_another_status_fails() {
        reply(500, "application/json", "{}").expect(200);
    }

    #[test]
    fn a_json_media_type_with_parameters_is_json() {
        let value = reply(200, "application/json; charset=utf-8", r#"{"a":1}"#).expect(200);
        assert_eq!(value["a"], 1);
    }
}
