//! What API Gateway (HTTP API, payload 2.0) does between the client and the function: match
//! the route, run the authorizer, and build the event the function receives.
//!
//! The event is built as the same `ApiGatewayV2httpRequest` that Lambda deserializes and turned
//! into a `lambda_http::Request` by `lambda_http`'s own conversion, so a handler sees exactly
//! what it sees on AWS: `routeKey`, `pathParameters`, `rawQueryString`, and the verified claims
//! in `requestContext.authorizer.jwt.claims`.

use std::collections::HashMap;
use std::net::SocketAddr;

use aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
    ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext,
    ApiGatewayV2httpRequestContextHttpDescription,
};
use jiff::Timestamp;
use lambda_http::http::{self, header};
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, Request};

use coins_http::Route;

/// The parts of an incoming HTTP request the event is built from.
pub struct Incoming<'a> {
    pub parts: &'a http::request::Parts,
    pub body: &'a [u8],
    pub remote: Option<SocketAddr>,
}

/// Builds the function's request for `route`, with its path parameters and, if the route is
/// behind the authorizer, the verified claims.
pub fn lambda_request(
    incoming: Incoming<'_>,
    route: &Route,
    path_parameters: HashMap<String, String>,
    claims: Option<HashMap<String, String>>,
    request_id: String,
) -> Request {
    let now = Timestamp::now();
    let parts = incoming.parts;

    let mut http_description = ApiGatewayV2httpRequestContextHttpDescription::default();
    http_description.method = parts.method.clone();
    http_description.path = Some(parts.uri.path().to_owned());
    http_description.protocol = Some(format!("{:?}", parts.version));
    http_description.source_ip = incoming.remote.map(|addr| addr.ip().to_string());
    http_description.user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);

    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(route.key());
    context.account_id = Some("000000000000".into());
    context.stage = Some("$default".into());
    context.request_id = Some(request_id);
    context.apiid = Some("local".into());
    context.domain_name = Some("localhost".into());
    context.time_epoch = now.as_millisecond();
    context.time = Some(now.to_string());
    context.http = http_description;
    context.authorizer = claims.map(|claims| {
        let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
        jwt.claims = claims;
        let mut authorizer = ApiGatewayRequestAuthorizer::default();
        authorizer.jwt = Some(jwt);
        authorizer
    });

    let text_body = std::str::from_utf8(incoming.body).ok();
    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".into());
    event.route_key = Some(route.key());
    event.raw_path = Some(parts.uri.path().to_owned());
    event.raw_query_string = Some(parts.uri.query().unwrap_or("").to_owned());
    event.headers = parts.headers.clone();
    event.path_parameters = path_parameters;
    event.request_context = context;
    event.body = text_body.filter(|text| !text.is_empty()).map(str::to_owned);
    event.is_base64_encoded = false;

    let mut request: Request = LambdaRequest::ApiGatewayV2(event).into();
    // API Gateway would base64 a binary body and lambda_http would decode it: same bytes.
    if text_body.is_none() {
        *request.body_mut() = Body::from(incoming.body.to_vec());
    }
    request
}

/// A request id like API Gateway's (opaque, unique per request).
pub fn new_request_id() -> String {
    use rand::Rng;
    let bits: u128 = rand::rng().random();
    format!("local-{bits:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use coins_http::Claims;
    use lambda_http::RequestExt;

    #[test]
    fn the_function_sees_route_parameters_query_and_claims_as_on_aws() {
        let (parts, ()) = http::Request::builder()
            .method("POST")
            .uri("/v1/purchases/pur_1/refund?dry=1")
            .header("content-type", "application/json")
            .body(())
            .unwrap()
            .into_parts();
        let claims: HashMap<String, String> = [
            ("sub", "alice"),
            ("birthdate", "1990-01-01"),
            ("billing_country", "JP"),
            ("zoneinfo", "Asia/Tokyo"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let route = Route::post("/v1/purchases/{purchase_id}/refund");
        let params = route.match_path(parts.uri.path()).unwrap();
        let req = lambda_request(
            Incoming {
                parts: &parts,
                body: b"{}",
                remote: None,
            },
            &route,
            params,
            Some(claims),
            "req-1".into(),
        );
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.uri().path(), "/v1/purchases/pur_1/refund");
        assert_eq!(req.path_parameters().first("purchase_id"), Some("pur_1"));
        assert_eq!(req.query_string_parameters().first("dry"), Some("1"));
        assert_eq!(req.body().as_ref(), b"{}");
        assert_eq!(
            Claims::from_request(&req).unwrap().user_id.as_str(),
            "alice"
        );
        assert_eq!(
            coins_http::telemetry::request_id(&req).as_deref(),
            Some("req-1")
        );
        let (resolved, _) = coins_http::resolve(&[route], req).unwrap();
        assert_eq!(resolved, route);
    }
}
