//! `local-server`: the whole API on one port for development and tests (see the library).
//!
//! ```text
//! local-server [--host 127.0.0.1] [--port 3000] [--clock RFC3339] [--no-dev-routes]
//!              [--dynamodb-endpoint URL [--create-table] [--table-name NAME]]
//!              [--stripe-api-base URL]
//! local-server token --sub bob --country US --region US-AL --zone America/Chicago --birthdate 1990-01-01 [--admin]
//! ```
//! Secrets: `DEV_JWT_SECRET` (default `coins-local-dev-jwt-secret`) signs dev tokens;
//! `STRIPE_WEBHOOK_SECRET` (default `whsec_local_development`) verifies Stripe's events;
//! `STRIPE_SECRET_KEY` (default `sk_test_local`) is sent to `--stripe-api-base`. The stores:
//! `APPLE_BUNDLE_ID`, `APPLE_ENVIRONMENT` (default `Sandbox` here), `APPLE_KEY_ID`,
//! `APPLE_ISSUER_ID`, `APPLE_PRIVATE_KEY_FILE`; `GOOGLE_SERVICE_ACCOUNT_FILE`,
//! `GOOGLE_PLAY_PACKAGE_NAME`, `GOOGLE_PUSH_AUDIENCE`, `GOOGLE_PUSH_SERVICE_ACCOUNT` (default
//! [`local_server::DEV_PUSH_SERVICE_ACCOUNT`]), `GOOGLE_ALLOW_LICENSE_TESTERS` (default `true`).
//!
//! It refuses to listen beyond loopback, or to use a DynamoDB endpoint that is not local, while
//! the dev routes or a default secret are on ([`local_server::exposure`]).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use coins_http::WebhookSecret;
use coins_ledger::dynamo::{DynamoStore, create_table, local_config};
use coins_ledger::{Ledger, MemoryStore, Store};
use coins_payments::Provider;
use coins_payments::stripe::{SecretKey, Stripe};
use coins_payments::test_mode::TestMode;
use coins_runtime::TestClock;
use jiff::Timestamp;
use local_server::auth::{DevAuth, DevClaims};
use local_server::exposure::{Exposure, is_local_endpoint};
use local_server::streams::{DynamoFeed, Feed};
use local_server::{App, DEFAULT_WEBHOOK_SECRET, server};
use stripe_webhook::Webhook;
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
    /// Serve without the `/_dev/…` routes (test clock, payments without a card): required,
    /// with secrets of your own, to listen beyond loopback or use a non-local table.
    #[arg(long)]
    no_dev_routes: bool,
    /// Create the table first (with `--dynamodb-endpoint`), unless it exists.
    #[arg(long, requires = "dynamodb_endpoint")]
    create_table: bool,
    #[arg(long, default_value = "coins-local")]
    table_name: String,
    /// Start the test clock here instead of the current time (RFC 3339, 2000 to 2199).
    #[arg(long)]
    clock: Option<Timestamp>,
    /// Talk to the Stripe API at this base URL (localstripe, or Stripe's test mode) instead of
    /// the built-in test-mode provider.
    #[arg(long)]
    stripe_api_base: Option<String>,
    /// Trust this root certificate (PEM) for App Store signed data instead of Apple's.
    #[arg(long)]
    apple_root_ca: Option<String>,
    /// The App Store Server API (default Apple's sandbox).
    #[arg(long)]
    app_store_api_base: Option<String>,
    /// The Google Play Developer API, the part before `/androidpublisher/v3`.
    #[arg(long)]
    google_play_api_base: Option<String>,
    /// Google's OAuth 2.0 token endpoint.
    #[arg(long)]
    google_oauth_token_url: Option<String>,
    /// Google's signing keys (JWKS) for Pub/Sub push tokens.
    #[arg(long)]
    google_jwks_url: Option<String>,
}

impl ServeArgs {
    /// The stores' settings: these flags, then the environment (files read for the keys).
    fn store_setting(&self, name: &str) -> Option<String> {
        let flag = match name {
            "APPLE_ROOT_CA_FILE" => &self.apple_root_ca,
            "APP_STORE_API_BASE" => &self.app_store_api_base,
            "GOOGLE_PLAY_API_BASE" => &self.google_play_api_base,
            "GOOGLE_OAUTH_TOKEN_URL" => &self.google_oauth_token_url,
            "GOOGLE_JWKS_URL" => &self.google_jwks_url,
            _ => &None,
        };
        let from_file = |variable: &str| {
            std::env::var(variable)
                .ok()
                .filter(|path| !path.is_empty())
                .and_then(|path| std::fs::read_to_string(path).ok())
        };
        flag.clone()
            .or_else(|| match name {
                "GOOGLE_SERVICE_ACCOUNT" => from_file("GOOGLE_SERVICE_ACCOUNT_FILE"),
                "APPLE_PRIVATE_KEY" => from_file("APPLE_PRIVATE_KEY_FILE"),
                _ => None,
            })
            .or_else(|| std::env::var(name).ok().filter(|value| !value.is_empty()))
            .or_else(|| local_server::default_store_setting(name))
    }
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

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let done = match cli.command {
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
        None => serve(cli.serve).await,
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("local-server: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `name` is unset or empty (its documented default applies).
fn env_unset(name: &str) -> bool {
    std::env::var(name).map_or(true, |value| value.is_empty())
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

async fn serve(args: ServeArgs) -> Result<(), Error> {
    // Before anything listens or connects.
    Exposure {
        host: &args.host,
        dynamodb_endpoint: args.dynamodb_endpoint.as_deref(),
        dev_routes: !args.no_dev_routes,
        default_dev_jwt_secret: env_unset("DEV_JWT_SECRET"),
        default_webhook_secret: env_unset("STRIPE_WEBHOOK_SECRET"),
    }
    .check()?;
    coins_runtime::telemetry::init();
    let start = args.clock.unwrap_or_else(|| {
        Timestamp::from_second(Timestamp::now().as_second()).expect("now is in range")
    });
    let clock = TestClock::new(start)?;
    let provider = match &args.stripe_api_base {
        Some(base) => Provider::Stripe(Stripe::new(
            base.trim_end_matches('/'),
            SecretKey::new(env_or("STRIPE_SECRET_KEY", "sk_test_local")),
        )),
        None => Provider::TestMode(TestMode::default()),
    };
    let payments = Webhook {
        provider,
        secret: WebhookSecret::new(env_or("STRIPE_WEBHOOK_SECRET", DEFAULT_WEBHOOK_SECRET))?,
    };
    let auth = DevAuth::from_env();
    let no_aws = aws_config::SdkConfig::builder().build();
    let stores = stores::load_with(&no_aws, &|name| args.store_setting(name)).await?;
    match &args.dynamodb_endpoint {
        None => {
            let store = MemoryStore::with_change_feed();
            let feed = Feed::memory(&store);
            let app = App::new(Ledger::new(store), clock, auth, payments, stores)
                .with_dev_routes(!args.no_dev_routes);
            run(&args, app, feed, "memory").await
        }
        Some(endpoint) => {
            let aws = aws_config(endpoint).await;
            let client = aws_sdk_dynamodb::Client::new(&aws);
            check_table(&client, endpoint, &args.table_name, args.create_table).await?;
            let feed = Feed::Dynamo(DynamoFeed::open(&aws, &args.table_name).await?);
            let store = DynamoStore::new(client, &args.table_name);
            let app = App::new(Ledger::new(store), clock, auth, payments, stores)
                .with_dev_routes(!args.no_dev_routes);
            let label = format!("dynamodb {endpoint} table {}", args.table_name);
            run(&args, app, feed, &label).await
        }
    }
}

/// DynamoDB Local takes any credentials; AWS gets the default credential chain.
async fn aws_config(endpoint: &str) -> aws_config::SdkConfig {
    if is_local_endpoint(endpoint) {
        local_config(endpoint).await
    } else {
        aws_config::from_env().endpoint_url(endpoint).load().await
    }
}

/// Fails with what to do unless the table is there (or was just created when asked): a server
/// that started without it would answer every request 500.
async fn check_table(
    client: &aws_sdk_dynamodb::Client,
    endpoint: &str,
    name: &str,
    create: bool,
) -> Result<(), Error> {
    match client.describe_table().table_name(name).send().await {
        Ok(_) => Ok(()),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|error| error.is_resource_not_found_exception()) =>
        {
            if !create {
                return Err(format!(
                    "table {name} does not exist at {endpoint}; add --create-table to create it \
                     (or --table-name to use another)"
                )
                .into());
            }
            create_table(client, name).await?;
            println!("created table {name}");
            Ok(())
        }
        Err(error) => Err(format!(
            "cannot reach DynamoDB at {endpoint}: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(error)
        )
        .into()),
    }
}

async fn run<S: Store>(
    args: &ServeArgs,
    app: App<S>,
    feed: Feed,
    store_label: &str,
) -> Result<(), Error> {
    let app = Arc::new(app);
    let listener = TcpListener::bind((args.host.as_str(), args.port)).await?;
    let address: SocketAddr = listener.local_addr()?;
    let consumers = tokio::spawn(local_server::streams::run(app.clone(), feed));
    let example = app.auth.mint(&DevClaims::example(Timestamp::now()));
    let provider = match &args.stripe_api_base {
        Some(base) => format!("Stripe at {base}"),
        None => "built-in test mode (pay with POST /_dev/payments/{purchase_id})".to_owned(),
    };
    println!("listening on http://{address}");
    println!(
        "store: {store_label}; payments: {provider}; test clock: {} (GET/POST /_dev/clock)",
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
    let served = tokio::select! {
        served = server::serve(app, listener) => served,
        _ = tokio::signal::ctrl_c() => {
            println!("stopped");
            Ok(())
        }
    };
    consumers.abort();
    served?;
    Ok(())
}
