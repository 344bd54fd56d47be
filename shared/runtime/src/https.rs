//! The functions' client for third parties (Stripe, the app stores): HTTPS on the hyper, rustls
//! and aws-lc stack the AWS SDK already links, trusting Mozilla's roots (compiled in), with a
//! timeout on every call. Plain HTTP too, for the local fakes tests point it at.
//!
//! The client is built on first use, so a function that never calls out pays nothing at cold
//! start, and one that does pays it once.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// An HTTP(S) client with a per-call timeout. Clones share one connection pool.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Arc<OnceLock<Client<Connector, Full<Bytes>>>>,
    timeout: Duration,
}

/// A response: its status and whole body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Bytes,
}

/// Why no response came back. Each may or may not have reached the server: a caller that
/// needs exactly-once effects must make its request idempotent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Failed(String),
}

impl HttpClient {
    /// A client whose calls give up after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        HttpClient {
            client: Arc::new(OnceLock::new()),
            timeout,
        }
    }

    fn client(&self) -> &Client<Connector, Full<Bytes>> {
        self.client.get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let tls = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("aws-lc supports the default protocol versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            let connector = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http()
                .enable_http1()
                .build();
            Client::builder(TokioExecutor::new()).build(connector)
        })
    }

    /// Sends `request` and reads the whole response, within the timeout.
    pub async fn send(&self, request: http::Request<Bytes>) -> Result<HttpResponse, HttpError> {
        let request = request.map(Full::new);
        let call = async {
            let response = self
                .client()
                .request(request)
                .await
                .map_err(|error| HttpError::Failed(error_chain(&error)))?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|error| HttpError::Failed(error.to_string()))?
                .to_bytes();
            Ok(HttpResponse { status, body })
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| HttpError::Timeout(self.timeout))?
    }
}

/// An error with its causes, for the logs (hyper's own message is only "client error").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_is_an_error_not_a_hang() {
        // Port 9 (discard) is closed on loopback.
        let client = HttpClient::new(Duration::from_secs(2));
        let request = http::Request::get("http://127.0.0.1:9/")
            .body(Bytes::new())
            .unwrap();
        assert!(matches!(
            client.send(request).await,
            Err(HttpError::Failed(_))
        ));
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let _held = tokio::spawn(async move {
            let (_socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let client = HttpClient::new(Duration::from_millis(200));
        let request = http::Request::get(format!("http://{address}/"))
            .body(Bytes::new())
            .unwrap();
        assert_eq!(
            client.send(request).await,
            Err(HttpError::Timeout(Duration::from_millis(200)))
        );
    }
}
