//! Handler benchmark: one Lambda invocation of `quote` and of `gift`, minus the network and the
//! Runtime API. A real API Gateway HTTP API (payload 2.0) event goes in as bytes and is
//! deserialized exactly as `lambda_runtime` does (`serde_path_to_error` over `serde_json`), turned
//! into a `lambda_http::Request` and the handler's response turned back by `lambda_http`'s own
//! adapter (the one `lambda_http::run` wraps a handler in), then serialized to the bytes that are
//! posted back to the Runtime API. The store is the in-memory adapter: this times our code and
//! the libraries around it, not DynamoDB.
//!
//! Every invocation gets its own fresh, funded in-memory store (built outside the timing), so
//! the figures do not drift as the store fills up; on Lambda the data is in DynamoDB, and a
//! query costs what it returns, not the size of the table.
//!
//! Besides the full path, each function's parts are timed alone (event parsing, the handler on a
//! prepared request, response serialization), and the full path once more with the JSON log
//! subscriber the functions install on Lambda (writing to a sink), to show what each part costs.
//!
//!     cargo bench -p e2e-tests --bench handlers -- --warm-up-time 1 --measurement-time 3

use std::convert::Infallible;
use std::hint::black_box;

use coins_ledger::MemoryStore;
use coins_runtime::Deps;
use coins_testkit::{Event, buy_package, enroll, memory_deps};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Body, Context, LambdaEvent, Request, Response, Service, service_fn};
use serde_json::json;

// The allocator the function binaries run with.
#[global_allocator]
static ALLOCATOR: coins_runtime::Allocator = coins_runtime::Allocator;

/// The fixtures' instant: 2026-03-02 noon in Tokyo.
const NOW: &str = "2026-03-02T03:00:00Z";
const SENDER: &str = "fan-bench";
const CREATOR: &str = "creator-bench";

/// What `lambda_runtime` does with the bytes of `GET /invocation/next`.
fn parse_event(bytes: &[u8]) -> LambdaEvent<LambdaRequest> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let payload: LambdaRequest =
        serde_path_to_error::deserialize(&mut deserializer).expect("a valid API Gateway v2 event");
    LambdaEvent::new(payload, Context::default())
}

/// One invocation: event bytes in, response bytes out, through `lambda_http`'s adapter.
async fn invoke<'a, S>(adapter: &mut Adapter<'a, Response<Body>, S>, bytes: &[u8]) -> Vec<u8>
where
    S: Service<Request, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'a,
{
    // `lambda_http::response::LambdaResponse`: not nameable outside lambda_http, but serializable.
    let response = adapter
        .call(parse_event(bytes))
        .await
        .unwrap_or_else(|never| match never {});
    serde_json::to_vec(&response).expect("a response serializes")
}

/// The full path of `$handler` (a function's `handle`) over `$deps` for the event `$bytes`.
macro_rules! full_path {
    ($handler:path, $deps:expr, $bytes:expr) => {{
        let deps = $deps;
        let mut adapter = Adapter::from(service_fn(|request: Request| async move {
            Ok::<_, Infallible>($handler(deps, request).await)
        }));
        invoke(&mut adapter, $bytes).await
    }};
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

/// A fresh in-memory store on a test clock at [`NOW`].
fn fresh() -> Deps<MemoryStore> {
    memory_deps(NOW).0
}

/// A fresh store where the sender holds 70 coins from one web purchase made through the real
/// ledger flow (quote, purchase, verified payment) and the creator is enrolled.
fn funded(runtime: &tokio::runtime::Runtime) -> Deps<MemoryStore> {
    let deps = fresh();
    runtime.block_on(async {
        buy_package(&deps, SENDER, "JP", "Asia/Tokyo", "coins_70").await;
        enroll(&deps, CREATOR).await;
    });
    deps
}

fn sender_event(fixture: &str) -> Event {
    Event::load(fixture).user(SENDER)
}

/// Checks a serialized response is an API Gateway response with `status`, so a benchmark of a
/// failing request cannot pass for a fast success.
fn assert_status(response: &[u8], status: u64) {
    let value: serde_json::Value = serde_json::from_slice(response).expect("JSON");
    assert_eq!(value["statusCode"], status, "{value}");
}

/// The JSON log subscriber the functions install (`coins_runtime::telemetry::init`), to a sink.
fn json_logs() -> impl tracing::Subscriber + Send + Sync {
    let filter = tracing_subscriber::EnvFilter::new("info");
    coins_runtime::telemetry::json_logs(filter, std::io::sink)
}

/// Benchmarks `$handler` on the event `$event` (bytes), each invocation on a store built by
/// `$setup`, expecting `$status`.
macro_rules! bench_function {
    ($c:expr, $name:literal, $handler:path, $setup:expr, $event:expr, $status:literal) => {{
        let runtime = runtime();
        let event: Vec<u8> = $event;
        let setup = $setup;
        let deps = setup(&runtime);
        assert_status(
            &runtime.block_on(async { full_path!($handler, &deps, &event) }),
            $status,
        );
        let mut group = $c.benchmark_group($name);
        group.bench_function("full_path", |b| {
            b.iter_batched(
                || setup(&runtime),
                |deps| {
                    let response =
                        runtime.block_on(async { full_path!($handler, &deps, black_box(&event)) });
                    (response, deps)
                },
                BatchSize::PerIteration,
            )
        });
        group.bench_function("parse_event", |b| {
            b.iter(|| Request::from(parse_event(black_box(&event)).payload))
        });
        group.bench_function("handler_only", |b| {
            b.iter_batched(
                || (setup(&runtime), Request::from(parse_event(&event).payload)),
                |(deps, request)| {
                    let response = runtime.block_on($handler(&deps, request));
                    (response, deps)
                },
                BatchSize::PerIteration,
            )
        });
        let deps = setup(&runtime);
        let sample = runtime.block_on(async { full_path!($handler, &deps, &event) });
        let response: serde_json::Value = serde_json::from_slice(&sample).expect("JSON");
        group.bench_function("serialize_response", |b| {
            b.iter(|| serde_json::to_vec(black_box(&response)).expect("serializes"))
        });
        tracing::subscriber::with_default(json_logs(), || {
            group.bench_function("full_path_with_json_logs", |b| {
                b.iter_batched(
                    || setup(&runtime),
                    |deps| {
                        let response = runtime
                            .block_on(async { full_path!($handler, &deps, black_box(&event)) });
                        (response, deps)
                    },
                    BatchSize::PerIteration,
                )
            });
        });
        group.finish();
    }};
}

fn handlers(c: &mut Criterion) {
    // POST /v1/quotes: 700 coins on the web, priced for Japan and stored.
    bench_function!(
        c,
        "quote",
        quote::handle,
        |_: &tokio::runtime::Runtime| fresh(),
        sender_event("post-quote").to_json().into_bytes(),
        201
    );
    // POST /v1/gifts: 5 roses from a funded wallet to a creator.
    bench_function!(
        c,
        "gift",
        gift::handle,
        funded,
        sender_event("post-gift")
            .body(json!({"gift_id": "rose", "quantity": 5, "recipient_id": CREATOR, "target": {"kind": "live", "id": "live-8812"}}))
            .to_json()
            .into_bytes(),
        201
    );
}

criterion_group!(benches, handlers);
criterion_main!(benches);
