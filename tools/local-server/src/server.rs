//! The HTTP/1.1 listener (hyper): reads each request's body (capped), hands it to the [`App`],
//! writes the function's response back.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use coins_http::{ApiError, Problem};
use coins_ledger::Store;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::http;
use tokio::net::TcpListener;

use crate::App;

/// API Gateway's own payload limit; the handlers refuse far less (16 KiB) themselves.
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// Serves `app` on `listener` until the task is dropped.
pub async fn serve<S: Store>(app: Arc<App<S>>, listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, remote) = listener.accept().await?;
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(answer(&app, req, remote).await) }
            });
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "connection closed with an error");
            }
        });
    }
}

async fn answer<S: Store>(
    app: &App<S>,
    req: http::Request<Incoming>,
    remote: SocketAddr,
) -> http::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let response = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => {
            let req = http::Request::from_parts(parts, collected.to_bytes());
            app.handle(req, Some(remote)).await
        }
        Err(_) => ApiError::new(
            Problem::PayloadTooLarge,
            format!("the request body is larger than {MAX_REQUEST_BYTES} bytes"),
        )
        .into_response(),
    };
    let (parts, body) = response.into_parts();
    http::Response::from_parts(parts, Full::new(Bytes::from(body.as_ref().to_vec())))
}
