//! What the fans do: the mix of operations, the fixed-rate schedule drawn from it, and each
//! operation as the HTTP requests a client makes, every request recorded with its latency and
//! what it answered.

use std::str::FromStr;
use std::time::{Duration, Instant};

use e2e_tests::flows::new_key;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use ureq::http;

/// What a fan does in one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// A gift of 1 to 5 roses (1 coin, 1 diamond each) to the creator, on a live.
    Gift,
    /// `GET /v1/wallet`.
    Wallet,
    /// The smallest package, bought on the web: quote, purchase, payment in test mode.
    Buy,
    /// The refund of a purchase none of whose coins were spent.
    Refund,
}

impl OpKind {
    pub const ALL: [OpKind; 4] = [OpKind::Gift, OpKind::Wallet, OpKind::Buy, OpKind::Refund];

    /// The requests it takes when all goes well.
    pub fn requests(self) -> usize {
        match self {
            OpKind::Buy => 3,
            OpKind::Gift | OpKind::Wallet | OpKind::Refund => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OpKind::Gift => "gift",
            OpKind::Wallet => "wallet",
            OpKind::Buy => "buy",
            OpKind::Refund => "refund",
        }
    }
}

/// One HTTP request of an operation: the rows of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Request {
    Gift,
    Wallet,
    Quote,
    Purchase,
    Pay,
    Refund,
}

impl Request {
    pub const ALL: [Request; 6] = [
        Request::Gift,
        Request::Wallet,
        Request::Quote,
        Request::Purchase,
        Request::Pay,
        Request::Refund,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Request::Gift => "POST /v1/gifts",
            Request::Wallet => "GET /v1/wallet",
            Request::Quote => "POST /v1/quotes",
            Request::Purchase => "POST /v1/purchases",
            Request::Pay => "POST /_dev/payments/{id}",
            Request::Refund => "POST /v1/purchases/{id}/refund",
        }
    }
}

/// The shares of the operations, as weights (`gift=50,wallet=25,buy=15,refund=10`; a kind left
/// out does not happen).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mix {
    weights: [u32; 4],
}

impl Mix {
    fn weight(&self, kind: OpKind) -> u32 {
        self.weights[kind as usize]
    }

    /// The kind at `draw`, a number below the weights' sum.
    fn pick(&self, mut draw: u32) -> OpKind {
        for kind in OpKind::ALL {
            if draw < self.weight(kind) {
                return kind;
            }
            draw -= self.weight(kind);
        }
        unreachable!("the draw is below the weights' sum")
    }

    fn total(&self) -> u32 {
        self.weights.iter().sum()
    }
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(text: &str) -> Result<Mix, String> {
        let mut weights = [0u32; 4];
        for part in text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected kind=weight"))?;
            let kind = OpKind::ALL
                .into_iter()
                .find(|kind| kind.name() == name.trim())
                .ok_or_else(|| format!("`{name}`: the kinds are gift, wallet, buy, refund"))?;
            weights[kind as usize] = weight
                .trim()
                .parse()
                .map_err(|_| format!("`{part}`: the weight is a whole number"))?;
        }
        let mix = Mix { weights };
        // Bounded so the sum and every draw below it fit a u32.
        if mix.total() == 0 || weights.iter().any(|weight| *weight > 1_000_000) {
            return Err("the weights are 0 to 1,000,000 and not all 0".into());
        }
        Ok(mix)
    }
}

impl std::fmt::Display for Mix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = OpKind::ALL
            .into_iter()
            .filter(|kind| self.weight(*kind) > 0)
            .map(|kind| format!("{}={}", kind.name(), self.weight(kind)))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// An operation due at `at` after the start of the timed phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub at: Duration,
    pub kind: OpKind,
    pub fan: usize,
    /// Roses of a gift.
    pub roses: u64,
}

/// `rate_per_s × duration` operations, evenly spaced (a fixed arrival rate, not bursts), each
/// a kind drawn from `mix` for a fan drawn from `fans`, from `seed`: the same flags give the
/// same workload.
pub fn schedule(
    rate_per_s: f64,
    duration: Duration,
    mix: &Mix,
    fans: usize,
    seed: u64,
) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(seed);
    let count = (rate_per_s * duration.as_secs_f64()).round() as u64;
    (0..count)
        .map(|i| Planned {
            at: Duration::from_secs_f64(i as f64 / rate_per_s),
            kind: mix.pick(rng.random_range(0..mix.total())),
            fan: rng.random_range(0..fans),
            roses: rng.random_range(1..=5),
        })
        .collect()
}

/// An operation ready to run: a refund knows its purchase and how many coins it holds.
#[derive(Clone, Debug)]
pub enum Op {
    Gift { fan: usize, roses: u64 },
    Wallet { fan: usize },
    Buy { fan: usize },
    Refund { fan: usize, purchase: Bought },
}

impl Op {
    fn first_request(&self) -> Request {
        match self {
            Op::Gift { .. } => Request::Gift,
            Op::Wallet { .. } => Request::Wallet,
            Op::Buy { .. } => Request::Quote,
            Op::Refund { .. } => Request::Refund,
        }
    }
}

/// A purchase paid and credited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bought {
    pub purchase_id: String,
    pub total_coins: u64,
}

/// What a request came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx with the body the client needed.
    Ok(u16),
    /// A refusal a real client can meet under this workload and handles (409: too few coins,
    /// a purchase already spent or refunded; 429: throttled), by its problem `code`.
    Refused { status: u16, code: String },
    /// A 5xx, a transport failure, a 2xx without what the client needs next, or a 4xx this
    /// workload never provokes (the harness and the server disagree): fails the run.
    Error { label: String, detail: String },
    /// Still waiting for a worker [`GIVE_UP_AFTER`] after it was due, so never sent (a client
    /// would have timed out): fails the run too. It bounds a run against a server that
    /// cannot keep up, which would otherwise go on long after its duration.
    NotSent,
}

impl Outcome {
    /// The label the report counts it under (`201`, `409 insufficient_coins`, `500 internal`).
    pub fn label(&self) -> String {
        match self {
            Outcome::Ok(status) => status.to_string(),
            Outcome::Refused { status, code } => format!("{status} {code}"),
            Outcome::Error { label, .. } => label.clone(),
            Outcome::NotSent => "not sent".into(),
        }
    }

    /// A failure of the run (the server's or the harness's, not a refusal a client handles).
    pub fn is_error(&self) -> bool {
        matches!(self, Outcome::Error { .. } | Outcome::NotSent)
    }
}

/// One request's record. Its latency runs from when it was due: for an operation's first
/// request, the instant the schedule gave it (time spent waiting for a free worker counts, or
/// a slow server would be measured only at the rate it lets requests through); for the next
/// ones, the previous answer.
#[derive(Clone, Debug)]
pub struct Sample {
    pub request: Request,
    pub latency: Duration,
    pub outcome: Outcome,
}

/// Coins and diamonds moved, as the API acknowledged them (or might have moved them, for the
/// requests whose outcome is unknown), to hold against the ledger's totals after the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub credited_coins: u128,
    pub gifted_coins: u128,
    pub diamonds: u128,
    pub refunded_coins: u128,
}

impl Totals {
    pub fn add(&mut self, other: Totals) {
        self.credited_coins += other.credited_coins;
        self.gifted_coins += other.gifted_coins;
        self.diamonds += other.diamonds;
        self.refunded_coins += other.refunded_coins;
    }
}

/// A worker's records.
#[derive(Debug, Default)]
pub struct Recorder {
    pub samples: Vec<Sample>,
    /// What the answers said was done.
    pub acknowledged: Totals,
    /// The most the failed requests may have done all the same (a timeout after the commit).
    pub unknown: Totals,
}

/// No request should come near this; it bounds a hung one, which then counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a due operation may wait for a worker before it is given up ([`Outcome::NotSent`]):
/// as long as a client waits for an answer.
pub const GIVE_UP_AFTER: Duration = REQUEST_TIMEOUT;
/// What one rose costs and earns (the gift catalog's cheapest gift).
pub const ROSE_COINS: u64 = 1;

/// The package a buy takes, and the one that funds the fans' gifts in the setup.
pub const BUY_PACKAGE: &str = "coins_70";
pub const FUNDING_PACKAGE: (&str, u64) = ("coins_700", 700);

/// The fans' side of the API, with one keep-alive connection per worker.
pub struct Client {
    base_url: String,
    agent: ureq::Agent,
    /// Each fan's bearer token, minted once (they live an hour).
    tokens: Vec<String>,
    /// Who every gift goes to.
    creator: String,
}

impl Client {
    pub fn new(base_url: &str, workers: usize, tokens: Vec<String>, creator: &str) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            // Keep every worker's connection: reconnecting per request would measure the
            // handshake and run the loopback out of ports at high rates.
            .max_idle_connections(workers)
            .max_idle_connections_per_host(workers)
            .build()
            .into();
        Client {
            base_url: base_url.to_owned(),
            agent,
            tokens,
            creator: creator.to_owned(),
        }
    }

    /// Runs `op`, due at `due`, recording each of its requests.
    pub fn run(&self, op: &Op, due: Instant, recorder: &mut Recorder) {
        if due.elapsed() > GIVE_UP_AFTER {
            recorder.samples.push(Sample {
                request: op.first_request(),
                latency: due.elapsed(),
                outcome: Outcome::NotSent,
            });
            return;
        }
        match op {
            Op::Gift { fan, roses } => {
                let gift = Call::new(Request::Gift, http::Method::POST, "/v1/gifts")
                    .by(*fan)
                    .idempotency_key(new_key("gift"))
                    .json(json!({
                        "gift_id": "rose",
                        "quantity": roses,
                        "recipient_id": self.creator,
                        "target": {"kind": "live", "id": "live-load"},
                    }))
                    .needs(&["coins_spent", "diamonds"]);
                match self.exchange(gift, due, recorder) {
                    Answer::Ok(_, gift) => {
                        let done = &mut recorder.acknowledged;
                        done.gifted_coins += u128::from(u64_of(&gift, "coins_spent"));
                        done.diamonds += u128::from(u64_of(&gift, "diamonds"));
                    }
                    Answer::Failed => {
                        let coins = u128::from(roses * ROSE_COINS);
                        recorder.unknown.gifted_coins += coins;
                        recorder.unknown.diamonds += coins;
                    }
                    Answer::Refused => {}
                }
            }
            Op::Wallet { fan } => {
                let wallet = Call::new(Request::Wallet, http::Method::GET, "/v1/wallet")
                    .by(*fan)
                    .needs(&["balance"]);
                self.exchange(wallet, due, recorder);
            }
            Op::Buy { fan } => {
                self.buy(*fan, BUY_PACKAGE, due, recorder);
            }
            Op::Refund { fan, purchase } => {
                let path = format!("/v1/purchases/{}/refund", purchase.purchase_id);
                let refund = Call::new(Request::Refund, http::Method::POST, &path)
                    .by(*fan)
                    .needs(&["coins_reversed"]);
                match self.exchange(refund, due, recorder) {
                    Answer::Ok(_, refund) => {
                        recorder.acknowledged.refunded_coins +=
                            u128::from(u64_of(&refund, "coins_reversed"));
                    }
                    Answer::Failed => {
                        recorder.unknown.refunded_coins += u128::from(purchase.total_coins);
                    }
                    Answer::Refused => {}
                }
            }
        }
    }

    /// Quote, purchase, and payment through the test-mode provider (`/_dev/payments`, which
    /// signs Stripe's event and delivers it to the webhook); the purchase once credited.
    pub fn buy(
        &self,
        fan: usize,
        package_id: &str,
        due: Instant,
        recorder: &mut Recorder,
    ) -> Option<Bought> {
        let quote = Call::new(Request::Quote, http::Method::POST, "/v1/quotes")
            .by(fan)
            .json(json!({"channel": "web", "package_id": package_id}))
            .needs(&["quote_id"]);
        let Answer::Ok(answered, quote) = self.exchange(quote, due, recorder) else {
            return None;
        };
        let purchase = Call::new(Request::Purchase, http::Method::POST, "/v1/purchases")
            .by(fan)
            .idempotency_key(new_key("purchase"))
            .json(json!({"quote_id": quote["quote_id"]}))
            .needs(&["purchase_id", "total_coins"]);
        // Nothing is credited before the payment, whatever became of the purchase.
        let Answer::Ok(answered, purchase) = self.exchange(purchase, answered, recorder) else {
            return None;
        };
        let bought = Bought {
            purchase_id: purchase["purchase_id"].as_str()?.to_owned(),
            total_coins: u64_of(&purchase, "total_coins"),
        };
        let path = format!("/_dev/payments/{}", bought.purchase_id);
        let pay = Call::new(Request::Pay, http::Method::POST, &path)
            .json(json!({"outcome": "succeeded"}))
            .needs(&["outcome"]);
        match self.exchange(pay, answered, recorder) {
            Answer::Ok(_, paid) if paid["outcome"] == "credited" => {
                recorder.acknowledged.credited_coins += u128::from(bought.total_coins);
                Some(bought)
            }
            Answer::Ok(_, paid) => {
                // A payment of the quoted amount that is not credited is a bug: the payment's
                // error (its answer says nothing was credited).
                let last = recorder
                    .samples
                    .last_mut()
                    .expect("the payment was recorded");
                last.outcome = Outcome::Error {
                    label: format!("{} not credited", last.outcome.label()),
                    detail: paid.to_string(),
                };
                None
            }
            Answer::Failed => {
                recorder.unknown.credited_coins += u128::from(bought.total_coins);
                None
            }
            Answer::Refused => None,
        }
    }

    /// Sends `call`, records it, and returns what became of it: when it was answered and its
    /// JSON body if it succeeded with every field the call needs.
    fn exchange(&self, call: Call<'_>, due: Instant, recorder: &mut Recorder) -> Answer {
        let sent = self.send(&call);
        let answered = Instant::now();
        let (outcome, json) = classify(sent, call.needs);
        let answer = match (&outcome, json) {
            (Outcome::Ok(_), Some(json)) => Answer::Ok(answered, json),
            (Outcome::Refused { .. }, _) => Answer::Refused,
            _ => Answer::Failed,
        };
        recorder.samples.push(Sample {
            request: call.request,
            latency: answered.saturating_duration_since(due),
            outcome,
        });
        answer
    }

    fn send(&self, call: &Call<'_>) -> Result<(u16, Vec<u8>), String> {
        let mut builder = http::Request::builder()
            .method(call.method.clone())
            .uri(format!("{}{}", self.base_url, call.path));
        if let Some(fan) = call.fan {
            builder = builder.header("authorization", format!("Bearer {}", self.tokens[fan]));
        }
        if let Some(key) = &call.idempotency_key {
            builder = builder.header("idempotency-key", key);
        }
        let response = match &call.body {
            Some(body) => {
                let request = builder
                    .header("content-type", "application/json")
                    .body(body.to_string().into_bytes())
                    .map_err(|error| error.to_string())?;
                self.agent.run(request)
            }
            None => {
                let request = builder.body(()).map_err(|error| error.to_string())?;
                self.agent.run(request)
            }
        };
        let mut response = response.map_err(|error| error.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_to_vec()
            .map_err(|error| format!("reading the body: {error}"))?;
        Ok((status, body))
    }
}

/// What became of a request, for the operation it is part of.
enum Answer {
    /// Done: when it was answered, and its body.
    Ok(Instant, Value),
    /// Refused, so not done.
    Refused,
    /// Failed: done or not, nobody knows (a timeout may come after the commit).
    Failed,
}

/// One request as a fan's client makes it.
struct Call<'a> {
    request: Request,
    method: http::Method,
    path: String,
    /// Whose token it carries (none for the dev payment, which plays Stripe).
    fan: Option<usize>,
    idempotency_key: Option<String>,
    body: Option<Value>,
    /// The fields of a success the client goes on with.
    needs: &'a [&'a str],
}

impl<'a> Call<'a> {
    fn new(request: Request, method: http::Method, path: &str) -> Call<'a> {
        Call {
            request,
            method,
            path: path.to_owned(),
            fan: None,
            idempotency_key: None,
            body: None,
            needs: &[],
        }
    }

    fn by(mut self, fan: usize) -> Self {
        self.fan = Some(fan);
        self
    }

    fn idempotency_key(mut self, key: String) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn needs(mut self, fields: &'a [&'a str]) -> Self {
        self.needs = fields;
        self
    }
}

/// Sorts an answer into its [`Outcome`], with the JSON body of a usable success.
fn classify(sent: Result<(u16, Vec<u8>), String>, needs: &[&str]) -> (Outcome, Option<Value>) {
    let (status, body) = match sent {
        Ok(answer) => answer,
        Err(detail) => {
            let label = "transport".to_owned();
            return (Outcome::Error { label, detail }, None);
        }
    };
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let text = || String::from_utf8_lossy(&body).chars().take(300).collect();
    let code = || {
        json.as_ref()
            .and_then(|json| json["code"].as_str())
            .unwrap_or("-")
            .to_owned()
    };
    match status {
        200..=299 => match json {
            Some(json) if needs.iter().all(|field| !json[*field].is_null()) => {
                (Outcome::Ok(status), Some(json))
            }
            _ => {
                let label = format!("{status} unexpected body");
                (
                    Outcome::Error {
                        label,
                        detail: text(),
                    },
                    None,
                )
            }
        },
        409 | 429 => (
            Outcome::Refused {
                status,
                code: code(),
            },
            None,
        ),
        _ => {
            let label = format!("{status} {}", code());
            (
                Outcome::Error {
                    label,
                    detail: text(),
                },
                None,
            )
        }
    }
}

/// A count field of an answer [`classify`] checked to have it.
fn u64_of(json: &Value, field: &str) -> u64 {
    json[field].as_u64().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_reads_its_weights_and_prints_them_back() {
        let mix: Mix = "gift=50, wallet=25,buy=15,refund=10".parse().unwrap();
        assert_eq!(mix.to_string(), "gift=50,wallet=25,buy=15,refund=10");
        assert_eq!(mix.total(), 100);
        let only_gifts: Mix = "gift=1".parse().unwrap();
        assert_eq!(only_gifts.to_string(), "gift=1");
    }

    #[test]
    fn a_mix_without_weight_or_with_an_unknown_kind_is_refused() {
        for text in ["", "gift=0", "dance=3", "gift", "gift=-1", "gift=2000000"] {
            assert!(text.parse::<Mix>().is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn a_schedule_is_evenly_spaced_and_follows_the_mix() {
        let mix: Mix = "gift=3,refund=1".parse().unwrap();
        let plan = schedule(100.0, Duration::from_secs(20), &mix, 7, 1);
        assert_eq!(plan.len(), 2000);
        assert_eq!(plan[1].at, Duration::from_millis(10));
        assert_eq!(plan[1999].at, Duration::from_millis(19_990));
        let gifts = plan.iter().filter(|p| p.kind == OpKind::Gift).count();
        assert!((1350..1650).contains(&gifts), "{gifts} gifts of 2000");
        assert!(plan.iter().all(|p| p.kind != OpKind::Buy && p.fan < 7));
        assert!(plan.iter().all(|p| (1..=5).contains(&p.roses)));
        assert_eq!(plan, schedule(100.0, Duration::from_secs(20), &mix, 7, 1));
    }

    #[test]
    fn answers_are_sorted_into_successes_refusals_and_errors() {
        let ok = classify(Ok((201, br#"{"quote_id":"q"}"#.to_vec())), &["quote_id"]);
        assert_eq!(ok.0, Outcome::Ok(201));
        let refused = classify(Ok((409, br#"{"code":"insufficient_coins"}"#.to_vec())), &[]);
        assert_eq!(refused.0.label(), "409 insufficient_coins");
        let failed = classify(Ok((500, br#"{"code":"internal"}"#.to_vec())), &[]);
        assert_eq!(failed.0.label(), "500 internal");
        let unexpected = classify(Ok((404, br#"{"code":"not_found"}"#.to_vec())), &[]);
        assert_eq!(unexpected.0.label(), "404 not_found");
        let missing = classify(Ok((200, b"{}".to_vec())), &["balance"]);
        assert_eq!(missing.0.label(), "200 unexpected body");
        let gone = classify(Err("connection refused".into()), &[]);
        assert_eq!(gone.0.label(), "transport");
    }
}
