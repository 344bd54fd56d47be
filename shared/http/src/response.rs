//! JSON responses: the success side of every route.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;

use crate::error::ApiError;

/// A JSON response with `status`. Balances and prices are per user: never cached by anyone.
pub fn json<T: Serialize + ?Sized>(
    status: StatusCode,
    value: &T,
) -> Result<Response<Body>, ApiError> {
    let body = serde_json::to_string(value)?;
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// 200 with a JSON body.
pub fn ok<T: Serialize + ?Sized>(value: &T) -> Result<Response<Body>, ApiError> {
    json(StatusCode::OK, value)
}

/// 201 with a JSON body.
pub fn created<T: Serialize + ?Sized>(value: &T) -> Result<Response<Body>, ApiError> {
    json(StatusCode::CREATED, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_responses_carry_the_status_type_and_no_store() {
        let response = created(&serde_json::json!({"coins": 700})).unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(response.body().as_ref(), br#"{"coins":700}"#);
    }
}
