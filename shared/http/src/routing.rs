//! Route tables: which method and path template a request is for, as API Gateway names it.
//!
//! On AWS, API Gateway has already matched the route: the request context carries its `routeKey`
//! (`POST /v1/purchases/{purchase_id}/refund`) and `pathParameters`. The local server fills in the
//! same two fields. When they are absent (an event crafted by hand, `cargo lambda invoke`), the
//! method and path are matched here against the function's table instead, so a handler always
//! dispatches on a route key and reads path parameters the same way.

use std::collections::HashMap;

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use crate::error::{ApiError, Problem};

/// One route: a method and a path template whose `{name}` segments are parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
}

impl Route {
    pub const fn get(path: &'static str) -> Route {
        Route {
            method: "GET",
            path,
        }
    }

    pub const fn post(path: &'static str) -> Route {
        Route {
            method: "POST",
            path,
        }
    }

    pub const fn put(path: &'static str) -> Route {
        Route {
            method: "PUT",
            path,
        }
    }

    /// API Gateway's route key: `"GET /v1/wallet"`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Whether `key` is this route's key, without building it.
    pub fn has_key(&self, key: &str) -> bool {
        key.split_once(' ') == Some((self.method, self.path))
    }

    /// The path parameters if `path` fits this template (ignoring the method).
    pub fn match_path(&self, path: &str) -> Option<HashMap<String, String>> {
        let mut template = self.path.trim_end_matches('/').split('/');
        let mut actual = path.trim_end_matches('/').split('/');
        let mut params = HashMap::new();
        loop {
            match (template.next(), actual.next()) {
                (None, None) => return Some(params),
                (Some(expected), Some(segment)) => {
                    if let Some(name) = expected.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
                    {
                        if segment.is_empty() {
                            return None;
                        }
                        params.insert(name.to_owned(), segment.to_owned());
                    } else if expected != segment {
                        return None;
                    }
                }
                _ => return None,
            }
        }
    }
}

/// A request matched to a route of a table.
#[derive(Debug)]
pub struct Matched {
    pub route: Route,
    pub params: HashMap<String, String>,
}

/// Matches `method` and `path` against `routes`: 404 `not_found` if no template fits the path,
/// 405 `method_not_allowed` (with `Allow`) if the most specific ones do but with other methods.
pub fn match_route(routes: &[Route], method: &str, path: &str) -> Result<Matched, ApiError> {
    // The most specific template owns a path: `/v1/purchases/app-store` is that route's, not a
    // purchase id of `/v1/purchases/{purchase_id}`, so its 405 names that route's methods only.
    let fitting = routes
        .iter()
        .filter_map(|route| route.match_path(path).map(|params| (route, params)));
    let fewest_params = fitting.clone().map(|(_, params)| params.len()).min();
    let mut allowed = Vec::new();
    for (route, params) in fitting.filter(|(_, params)| Some(params.len()) == fewest_params) {
        if route.method.eq_ignore_ascii_case(method) {
            return Ok(Matched {
                route: *route,
                params,
            });
        }
        allowed.push(route.method);
    }
    if !allowed.is_empty() {
        Err(ApiError::method_not_allowed(&allowed))
    } else {
        Err(ApiError::new(
            Problem::NotFound,
            format!("no route for {method} {path}"),
        ))
    }
}

/// For a handler's match on its routes: a route `resolve` never returns (it returns only
/// routes of the table it was given).
pub fn unrouted(route: Route) -> ApiError {
    ApiError::new(
        Problem::NotFound,
        format!("no route {} in this function", route.key()),
    )
}

/// The route of `req` in `routes`, and the request with its path parameters in place.
pub fn resolve(routes: &[Route], req: Request) -> Result<(Route, Request), ApiError> {
    let route_key = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.route_key.clone(),
        _ => None,
    };
    // `$default` is the catch-all route: API Gateway did not match a template for us.
    if let Some(key) = route_key.filter(|key| key != "$default") {
        let route = routes
            .iter()
            .find(|route| route.has_key(&key))
            .ok_or_else(|| {
                ApiError::new(
                    Problem::NotFound,
                    format!("no route {key} in this function"),
                )
            })?;
        return Ok((*route, req));
    }
    let matched = match_route(routes, req.method().as_str(), req.raw_http_path())
        .or_else(|_| match_route(routes, req.method().as_str(), req.uri().path()))?;
    let req = if req.path_parameters().is_empty() && !matched.params.is_empty() {
        req.with_path_parameters(matched.params)
    } else {
        req
    };
    Ok((matched.route, req))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &[Route] = &[
        Route::post("/v1/purchases/{purchase_id}/refund"),
        Route::post("/v1/admin/purchases/{purchase_id}/refund"),
        Route::get("/v1/wallet"),
        Route::get("/v1/purchases/{purchase_id}"),
        Route::post("/v1/purchases/app-store"),
    ];

    #[test]
    fn a_template_captures_its_parameters() {
        let matched = match_route(ROUTES, "POST", "/v1/purchases/pur_42/refund").unwrap();
        assert_eq!(matched.route, ROUTES[0]);
        assert_eq!(matched.params["purchase_id"], "pur_42");
    }

    #[test]
    fn an_unknown_path_is_not_found_and_a_wrong_method_is_405() {
        assert_eq!(
            match_route(ROUTES, "GET", "/v1/nothing")
                .unwrap_err()
                .code(),
            "not_found"
        );
        let wrong_method = match_route(ROUTES, "DELETE", "/v1/wallet").unwrap_err();
        assert_eq!(wrong_method.code(), "method_not_allowed");
        let response = wrong_method.into_response();
        assert_eq!(response.headers()["allow"], "GET");
        assert!(match_route(ROUTES, "POST", "/v1/purchases//refund").is_err());
        let literal = match_route(ROUTES, "GET", "/v1/purchases/app-store").unwrap_err();
        assert_eq!(literal.into_response().headers()["allow"], "POST");
        assert_eq!(
            match_route(ROUTES, "GET", "/v1/purchases/pur_1")
                .unwrap()
                .route,
            ROUTES[3]
        );
        assert!(match_route(ROUTES, "GET", "/v1/wallet/extra").is_err());
    }

    #[test]
    fn the_route_key_is_api_gateways() {
        assert_eq!(ROUTES[0].key(), "POST /v1/purchases/{purchase_id}/refund");
        assert!(ROUTES[0].has_key("POST /v1/purchases/{purchase_id}/refund"));
        assert!(!ROUTES[0].has_key("GET /v1/purchases/{purchase_id}/refund"));
    }

    #[test]
    fn without_a_route_key_the_path_is_matched_and_parameters_filled_in() {
        let mut req = Request::default();
        *req.method_mut() = lambda_http::http::Method::POST;
        *req.uri_mut() = "/v1/admin/purchases/pur_7/refund".parse().unwrap();
        let (route, req) = resolve(ROUTES, req).unwrap();
        assert_eq!(route, ROUTES[1]);
        assert_eq!(req.path_parameters().first("purchase_id"), Some("pur_7"));
    }
}
