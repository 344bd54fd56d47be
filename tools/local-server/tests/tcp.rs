//! The real listener: a plain HTTP/1.1 exchange over a loopback socket.

use std::sync::Arc;

use coins_http::WebhookSecret;
use coins_ledger::{Ledger, MemoryStore};
use coins_payments::Provider;
use coins_payments::test_mode::TestMode;
use coins_runtime::TestClock;
use local_server::App;
use local_server::auth::DevAuth;
use stripe_webhook::Webhook;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test]
async fn the_server_answers_over_http_on_loopback() {
    let clock = TestClock::new("2026-03-01T03:00:00Z".parse().unwrap()).unwrap();
    let app = Arc::new(App::new(
        Ledger::new(MemoryStore::new()),
        clock,
        DevAuth::new("s"),
        Webhook {
            provider: Provider::TestMode(TestMode::default()),
            secret: WebhookSecret::new("w").unwrap(),
        },
        stores::load_with(
            &aws_config::SdkConfig::builder().build(),
            &local_server::default_store_setting,
        )
        .await
        .unwrap(),
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(local_server::server::serve(app, listener));

    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /_dev/clock HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("the server answers within 10 s")
    .unwrap();
    server.abort();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(
        response.contains("content-type: application/json"),
        "{response}"
    );
    assert!(
        response.ends_with(r#"{"now":"2026-03-01T03:00:00Z"}"#),
        "{response}"
    );
}
