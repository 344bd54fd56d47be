//! The frame every handler runs in: one span per request carrying its request id (the JSON
//! subscriber itself is installed by `coins-runtime`), and errors rendered as problem+json.

use std::future::Future;
use std::time::Instant;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use tracing::Instrument;

use crate::error::ApiError;
use crate::origin::OriginCheck;

/// The API Gateway request id (the one a client can quote to support), if any.
pub fn request_id(req: &Request) -> Option<String> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        _ => None,
    }
}

/// The span every log line of a request is written in.
pub fn request_span(req: &Request) -> tracing::Span {
    let lambda_request_id = req
        .lambda_context_ref()
        .map(|context| context.request_id.clone());
    tracing::info_span!(
        "request",
        request_id = request_id(req).as_deref().unwrap_or("-"),
        lambda_request_id = lambda_request_id.as_deref().unwrap_or("-"),
        method = %req.method(),
        path = req.raw_http_path(),
    )
}

/// Runs `handler` in the request's span and turns its error into problem+json: every function
/// answers through here, so logging and error rendering are written once. With the edge on
/// (`EDGE_ORIGIN_SECRET`), a request that did not come through it is refused first.
pub async fn serve<F, Fut>(req: Request, handler: F) -> Response<Body>
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    serve_checked(req, OriginCheck::from_env(), handler).await
}

/// [`serve`] with the edge's origin check given.
pub async fn serve_checked<F, Fut>(req: Request, origin: &OriginCheck, handler: F) -> Response<Body>
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    let span = request_span(&req);
    async move {
        let started = Instant::now();
        let outcome = match origin.admit(&req) {
            Ok(()) => handler(req).await,
            Err(refused) => Err(refused),
        };
        let response = match outcome {
            Ok(response) => response,
            Err(error) => {
                if !error.is_server_fault() {
                    tracing::info!(code = error.code(), detail = %error, "request rejected");
                }
                error.into_response()
            }
        };
        tracing::info!(
            status = response.status().as_u16(),
            latency_us = started.elapsed().as_micros() as u64,
            "request completed"
        );
        response
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_handler_error_becomes_its_problem_response() {
        let response = serve(Request::default(), |_| async {
            Err(ApiError::new(
                crate::Problem::QuoteExpired,
                "the quote expired at 12:15",
            ))
        })
        .await;
        assert_eq!(response.status().as_u16(), 409);
        let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_eq!(body["code"], "quote_expired");
    }

    #[tokio::test]
    async fn with_the_edge_on_a_request_that_skipped_it_never_reaches_the_handler() {
        let origin = OriginCheck::new(Some("edge-secret"));
        let reached = std::cell::Cell::new(false);
        let handler = |_| async {
            reached.set(true);
            crate::response::ok(&serde_json::json!({"ok": true}))
        };
        let response = serve_checked(Request::default(), &origin, handler).await;
        assert_eq!(response.status().as_u16(), 403);
        assert!(!reached.get(), "the handler ran");
        let mut through_the_edge = Request::default();
        through_the_edge.headers_mut().insert(
            crate::origin::ORIGIN_HEADER,
            "edge-secret".parse().expect("a header value"),
        );
        let response = serve_checked(through_the_edge, &origin, handler).await;
        assert_eq!(response.status().as_u16(), 200);
        assert!(reached.get());
    }

    #[tokio::test]
    async fn a_handler_success_passes_through() {
        let response = serve(Request::default(), |_| async {
            crate::response::ok(&serde_json::json!({"ok": true}))
        })
        .await;
        assert_eq!(response.status().as_u16(), 200);
    }
}
