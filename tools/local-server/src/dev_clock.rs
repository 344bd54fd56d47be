//! `GET/POST /_dev/clock`: the test clock, as with a payment provider's test clocks.
//!
//! Everything that reads the time reads this clock. Moving it forward runs the refund-window
//! sweep, as the scheduled `refund-expiry` would have by then, and the stream consumers' sweeps
//! of what they still owe. It never goes back: that would
//! reopen closed windows. These routes exist only here, never in a Lambda function.

use bytes::Bytes;
use coins_http::{ApiError, Route, response, serve};
use coins_ledger::Store;
use coins_runtime::Clock;
use jiff::{SignedDuration, Timestamp};
use lambda_http::http::request::Parts;
use lambda_http::{Body, Request, Response};
use lambda_runtime::{Context, LambdaEvent};
use serde::{Deserialize, Serialize};

use crate::App;

pub const GET_CLOCK: Route = Route::get("/_dev/clock");
pub const SET_CLOCK: Route = Route::post("/_dev/clock");
pub const ROUTES: &[Route] = &[GET_CLOCK, SET_CLOCK];

/// Largest single move (100 years): the document's bound; the clock's own keeps it in 2000–2199.
const MAX_ADVANCE_SECONDS: i64 = 3_153_600_000;

/// `{"now": "<RFC 3339>"}` or `{"advance_seconds": N}`.
#[derive(Deserialize)]
struct ClockChange {
    #[serde(default, deserialize_with = "coins_http::body::not_null")]
    now: Option<Timestamp>,
    #[serde(default, deserialize_with = "coins_http::body::not_null")]
    advance_seconds: Option<u64>,
}

#[derive(Serialize)]
struct ClockBody {
    now: Timestamp,
    /// Lots whose refund window ended with this move, now closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    lots_closed: Option<u32>,
}

pub async fn handle<S: Store>(app: &App<S>, parts: &Parts, body: &Bytes) -> Response<Body> {
    let mut request = Request::new(Body::from(body.to_vec()));
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.headers_mut() = parts.headers.clone();
    serve(request, |request| async move {
        if request.method() == lambda_http::http::Method::GET {
            return response::ok(&ClockBody {
                now: app.clock.now(),
                lots_closed: None,
            });
        }
        let change: ClockChange = coins_http::json_body(&request)?;
        let moved = match (change.now, change.advance_seconds) {
            (Some(now), None) => app.clock.set(now),
            (None, Some(seconds)) => {
                let seconds = i64::try_from(seconds)
                    .ok()
                    .filter(|seconds| *seconds <= MAX_ADVANCE_SECONDS)
                    .ok_or_else(|| ApiError::invalid("advance_seconds is at most 100 years"))?;
                app.clock.advance(SignedDuration::from_secs(seconds))
            }
            _ => {
                return Err(ApiError::invalid(
                    "give exactly one of now or advance_seconds",
                ));
            }
        };
        let now = moved.map_err(ApiError::invalid)?;
        // What the scheduled refund-expiry function would have done by then.
        let report = refund_expiry::sweep(&app.deps)
            .await
            .map_err(ApiError::internal)?;
        // And what the consumers' scheduled sweeps would have picked up: what their stream
        // records left outstanding (here, records dropped after MAX_DELIVERIES).
        earnings::sweep_gifts(&app.deps)
            .await
            .map_err(ApiError::internal)?;
        let sweep =
            || LambdaEvent::new(coins_streams::sweep::scheduled_event(), Context::default());
        let provider = &app.payments.provider;
        refund_dispatch::handle(&app.deps, provider, sweep())
            .await
            .map_err(ApiError::internal)?;
        payout_dispatch::handle(&app.deps, provider, sweep())
            .await
            .map_err(ApiError::internal)?;
        tracing::info!(%now, closed = report.closed, "test clock moved");
        response::ok(&ClockBody {
            now,
            lots_closed: Some(report.closed),
        })
    })
    .await
}
