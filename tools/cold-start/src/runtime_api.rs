//! A minimal Lambda Runtime API (the HTTP interface a custom runtime polls), served on loopback for
//! one cold start: hands out one invocation, records when the function asked for it and when it
//! answered, and parks every later `next` so the function idles as it would on Lambda.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The invocation the harness hands to the function.
pub const REQUEST_ID: &str = "00000000-0000-4000-8000-00000000c01d";

const API_PREFIX: &str = "/2018-06-01/runtime";

/// What the function did, in the order it may happen.
#[derive(Debug)]
pub enum Signal {
    /// The first `GET .../invocation/next`: init is over. `handed_out_at` is when the event was
    /// given back, the start of the first invocation.
    FirstNext {
        arrived_at: Instant,
        handed_out_at: Instant,
    },
    /// `POST .../invocation/{id}/response` or `.../error`.
    Finished { at: Instant, reply: Reply },
    /// `POST .../init/error`: the function gave up before asking for work.
    InitError { body: String },
}

/// How the first invocation ended, as posted by the function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Response(String),
    Error(String),
}

/// What a request to the runtime API asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a> {
    Next,
    Response { request_id: &'a str },
    InvocationError { request_id: &'a str },
    InitError,
    Unknown,
}

/// Maps a method and path onto the runtime API's routes.
pub fn route<'a>(method: &Method, path: &'a str) -> Route<'a> {
    let Some(rest) = path.strip_prefix(API_PREFIX) else {
        return Route::Unknown;
    };
    match (method, rest) {
        (&Method::GET, "/invocation/next") => Route::Next,
        (&Method::POST, "/init/error") => Route::InitError,
        (&Method::POST, rest) => match rest
            .strip_prefix("/invocation/")
            .and_then(|r| r.rsplit_once('/'))
        {
            Some((request_id, "response")) if !request_id.is_empty() => {
                Route::Response { request_id }
            }
            Some((request_id, "error")) if !request_id.is_empty() => {
                Route::InvocationError { request_id }
            }
            _ => Route::Unknown,
        },
        _ => Route::Unknown,
    }
}

struct Shared {
    event: Bytes,
    function_arn: String,
    handed_out: Mutex<bool>,
    signals: mpsc::UnboundedSender<Signal>,
}

/// A runtime API serving one invocation; dropped (and its listener closed) after the run.
pub struct RuntimeApi {
    pub addr: SocketAddr,
    accept_loop: JoinHandle<()>,
}

impl RuntimeApi {
    /// Binds 127.0.0.1 on a free port and serves `event` as the one invocation.
    pub async fn start(
        event: Bytes,
        function_name: &str,
    ) -> std::io::Result<(Self, mpsc::UnboundedReceiver<Signal>)> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (signals, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            event,
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function_name}"),
            handed_out: Mutex::new(false),
            signals,
        });
        let accept_loop = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |request| handle(Arc::clone(&shared), request));
                    // A connection error only means the function went away (it is killed after
                    // each run); the harness learns what matters through the signals.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok((Self { addr, accept_loop }, receiver))
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let arrived_at = Instant::now();
    let (parts, body) = request.into_parts();
    match route(&parts.method, parts.uri.path()) {
        Route::Next => {
            let first = {
                let mut handed_out = shared
                    .handed_out
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                !std::mem::replace(&mut *handed_out, true)
            };
            if !first {
                // Lambda freezes an idle function; parking the poll is the closest a process gets.
                std::future::pending::<()>().await;
            }
            let response = Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .header("lambda-runtime-aws-request-id", REQUEST_ID)
                .header("lambda-runtime-deadline-ms", deadline_ms())
                .header(
                    "lambda-runtime-invoked-function-arn",
                    shared.function_arn.as_str(),
                )
                .header(
                    "lambda-runtime-trace-id",
                    "Root=1-65f0a000-000000000000000000c01d00;Parent=0000000000c01d00;Sampled=0",
                )
                .body(Full::new(shared.event.clone()))
                .expect("static response parts are valid");
            let _ = shared.signals.send(Signal::FirstNext {
                arrived_at,
                handed_out_at: Instant::now(),
            });
            Ok(response)
        }
        Route::Response { .. } | Route::InvocationError { .. } => {
            let is_error = matches!(
                route(&parts.method, parts.uri.path()),
                Route::InvocationError { .. }
            );
            let body = read_body(body).await;
            let at = Instant::now();
            let reply = if is_error {
                Reply::Error(body)
            } else {
                Reply::Response(body)
            };
            let _ = shared.signals.send(Signal::Finished { at, reply });
            Ok(accepted())
        }
        Route::InitError => {
            let body = read_body(body).await;
            let _ = shared.signals.send(Signal::InitError { body });
            Ok(accepted())
        }
        Route::Unknown => Ok(Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::new()))
            .expect("static response parts are valid")),
    }
}

async fn read_body(body: Incoming) -> String {
    match body.collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        Err(error) => format!("<body unreadable: {error}>"),
    }
}

fn accepted() -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .body(Full::new(Bytes::from_static(b"{\"status\":\"OK\"}")))
        .expect("static response parts are valid")
}

/// Fifteen minutes from now in Unix milliseconds, Lambda's longest timeout.
fn deadline_ms() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (now.as_millis() + 15 * 60 * 1000).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_for_the_next_invocation_is_recognised() {
        assert_eq!(
            route(&Method::GET, "/2018-06-01/runtime/invocation/next"),
            Route::Next
        );
    }

    #[test]
    fn a_response_names_its_request_id() {
        assert_eq!(
            route(
                &Method::POST,
                "/2018-06-01/runtime/invocation/abc-123/response"
            ),
            Route::Response {
                request_id: "abc-123"
            }
        );
    }

    #[test]
    fn an_invocation_error_names_its_request_id() {
        assert_eq!(
            route(
                &Method::POST,
                "/2018-06-01/runtime/invocation/abc-123/error"
            ),
            Route::InvocationError {
                request_id: "abc-123"
            }
        );
    }

    #[test]
    fn an_init_error_is_recognised() {
        assert_eq!(
            route(&Method::POST, "/2018-06-01/runtime/init/error"),
            Route::InitError
        );
    }

    #[test]
    fn other_paths_and_methods_are_unknown() {
        assert_eq!(
            route(&Method::POST, "/2018-06-01/runtime/invocation/next"),
            Route::Unknown
        );
        assert_eq!(
            route(&Method::POST, "/2018-06-01/runtime/invocation//response"),
            Route::Unknown
        );
        assert_eq!(
            route(&Method::GET, "/2020-01-01/extension/register"),
            Route::Unknown
        );
    }
}
