//! `local-server`: the whole API on one port for development and tests (see the library).
//!
//! ```text
//! local-server [--host 127.0.0.1] [--port 3000] [--dynamodb-endpoint URL [--create-table] [--table-name NAME]]
//! local-server token --sub bob --country US --region US-AL --zone America/Chicago --birthdate 1990-01-01 [--admin]
//! local-server sign-webhook --body '{"id":"evt_1",...}' [--at 2026-03-01T00:00:00Z]
//! ```
//! Secrets: `DEV_JWT_SECRET` (default `coins-local-dev-jwt-secret`) signs dev tokens;
//! `PAYMENT_WEBHOOK_SECRET` (default `whsec_local_development`) signs webhook events.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use coins_http::WebhookSecret;
use coins_ledger::dynamo::{DynamoStore, client_for_endpoint, create_table};
use coins_ledger::{Ledger, LedgerConfig, MemoryStore, Store};
use coins_runtime::{Deps, TestClock};
use jiff::Timestamp;
use local_server::auth::{DevAuth, DevClaims};
use local_server::{App, DEFAULT_WEBHOOK_SECRET, server};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "local-server",
    about = "The coins API on one local port, with a test clock"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Print a dev bearer token for these claims.
    Token(TokenArgs),
    /// Print the Payment-Signature header for a webhook body.
    SignWebhook(SignArgs),
}

#[derive(Args)]
struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Use DynamoDB at this endpoint (DynamoDB Local, or AWS) instead of the in-memory store.
    #[arg(long)]
    dynamodb_endpoint: Option<String>,
    /// Create the table first (with `--dynamodb-endpoint`), unless it exists.
    #[arg(long, requires = "dynamodb_endpoint")]
    create_table: bool,
    #[arg(long, default_value = "coins-local")]
    table_name: String,
    /// Shards of each creator's diamond counter.
    #[arg(long, default_value_t = coins_ledger::DEFAULT_CREATOR_SHARDS)]
    creator_shards: u16,
    /// Start the test clock here instead of the current time (RFC 3339).
    #[arg(long)]
    clock: Option<Timestamp>,
}

#[derive(Args)]
struct TokenArgs {
    #[arg(long, default_value = "alice")]
    sub: String,
    #[arg(long, default_value = "JP")]
    country: String,
    #[arg(long)]
    region: Option<String>,
    #[arg(long, default_value = "Asia/Tokyo")]
    zone: String,
    #[arg(long, default_value = "1990-01-01")]
    birthdate: String,
    /// Add the `coins:admin` scope.
    #[arg(long)]
    admin: bool,
}

#[derive(Args)]
struct SignArgs {
    /// The exact body that will be sent.
    #[arg(long)]
    body: String,
    /// The signing time; the server's test clock must be within 300 s of it.
    #[arg(long)]
    at: Option<Timestamp>,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Token(args)) => {
            let claims = DevClaims::new(
                &args.sub,
                &args.birthdate,
                &args.country,
                args.region.as_deref(),
                &args.zone,
                args.admin,
                Timestamp::now(),
            );
            println!("{}", DevAuth::from_env().mint(&claims));
            Ok(())
        }
        Some(Command::SignWebhook(args)) => {
            let at = args.at.unwrap_or_else(Timestamp::now);
            println!("{}", webhook_secret().sign(at, args.body.as_bytes()));
            Ok(())
        }
        None => serve(cli.serve).await,
    }
}

fn webhook_secret() -> WebhookSecret {
    let secret = std::env::var("PAYMENT_WEBHOOK_SECRET")
        .ok()
        .filter(|secret| !secret.is_empty())
        .unwrap_or_else(|| DEFAULT_WEBHOOK_SECRET.into());
    WebhookSecret::new(secret).expect("filtered non-empty")
}

async fn serve(args: ServeArgs) -> Result<(), Error> {
    coins_runtime::telemetry::init();
    let config = LedgerConfig {
        creator_shards: args.creator_shards,
        ..LedgerConfig::default()
    };
    let start = args.clock.unwrap_or_else(|| {
        Timestamp::from_second(Timestamp::now().as_second()).expect("now is in range")
    });
    let clock = TestClock::new(start);
    match &args.dynamodb_endpoint {
        None => {
            run(
                &args,
                Ledger::with_config(MemoryStore::new(), config),
                clock,
                "memory",
            )
            .await
        }
        Some(endpoint) => {
            let client = dynamodb_client(endpoint).await;
            if args.create_table {
                ensure_table(&client, &args.table_name).await?;
            }
            let store = DynamoStore::new(client, &args.table_name);
            let label = format!("dynamodb {endpoint} table {}", args.table_name);
            run(&args, Ledger::with_config(store, config), clock, &label).await
        }
    }
}

/// DynamoDB Local takes any credentials; AWS gets the default credential chain.
async fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let local = ["://localhost", "://127.", "://[::1]"]
        .iter()
        .any(|host| endpoint.contains(host));
    if local {
        client_for_endpoint(endpoint).await
    } else {
        let aws = aws_config::from_env().endpoint_url(endpoint).load().await;
        aws_sdk_dynamodb::Client::new(&aws)
    }
}

async fn ensure_table(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), Error> {
    if client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .is_ok()
    {
        return Ok(());
    }
    create_table(client, name).await?;
    Ok(())
}

async fn run<S: Store>(
    args: &ServeArgs,
    ledger: Ledger<S>,
    clock: TestClock,
    store_label: &str,
) -> Result<(), Error> {
    let auth = DevAuth::from_env();
    let app = Arc::new(App {
        deps: Deps::new(ledger, Arc::new(clock.clone())),
        clock,
        auth: auth.clone(),
        webhook_secret: webhook_secret(),
    });
    let listener = TcpListener::bind((args.host.as_str(), args.port)).await?;
    let address: SocketAddr = listener.local_addr()?;
    let example = auth.mint(&DevClaims::example(Timestamp::now()));
    println!("listening on http://{address}");
    println!(
        "store: {store_label}; test clock: {} (GET/POST /_dev/clock)",
        app.clock_now()
    );
    println!();
    println!("example token (alice: adult, billed in JP, Asia/Tokyo; valid 7 days):");
    println!("{example}");
    println!();
    println!("  curl -H 'Authorization: Bearer {example}' http://{address}/v1/wallet");
    println!();
    println!(
        "other users: local-server token --sub bob --country US --region US-AL --zone America/Chicago --birthdate 1990-01-01 [--admin]"
    );
    println!(
        "webhook signatures: local-server sign-webhook --body '<exact JSON>' --at <test clock time>"
    );
    tokio::select! {
        served = server::serve(app, listener) => served?,
        _ = tokio::signal::ctrl_c() => println!("stopped"),
    }
    Ok(())
}
