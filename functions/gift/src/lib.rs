//! `gift`: spends the caller's coins (oldest purchase first) on a gift to a creator. The one
//! atomic write is the sender's side (wallet and gift entry); the creator's diamonds follow
//! from the table's stream within seconds (the `earnings` function), so senders gifting one
//! creator never contend.
//!
//! Idempotent on the `Idempotency-Key` header; gifts are final (never refunded). The sender is
//! age-gated; the recipient passed the gate when they enrolled as a creator.

use coins_http::{ApiError, Claims, IdempotencyKey, Route, json_body, resolve, response, serve};
use coins_ids::UserId;
use coins_ledger::{GiftRequest, Store};
use coins_rules::{GiftId, GiftTarget};
use coins_runtime::Deps;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

/// `POST /v1/gifts`.
pub const SEND_GIFT: Route = Route::post("/v1/gifts");
pub const ROUTES: &[Route] = &[SEND_GIFT];

pub async fn handle<S: Store>(deps: &Deps<S>, req: Request) -> Response<Body> {
    serve(req, |req| async move {
        let (_, req) = resolve(ROUTES, req)?;
        send_gift(deps, &req).await
    })
    .await
}

/// The body as sent; the target is checked by its own type as it parses.
#[derive(Deserialize)]
struct GiftBody {
    gift_id: String,
    quantity: u32,
    recipient_id: String,
    target: GiftTarget,
}

async fn send_gift<S: Store>(deps: &Deps<S>, req: &Request) -> Result<Response<Body>, ApiError> {
    let claims = Claims::from_request(req)?;
    let key = IdempotencyKey::from_request(req)?.into_ledger()?;
    let body: GiftBody = json_body(req)?;
    let gift_id = body.gift_id.parse::<GiftId>().map_err(ApiError::invalid)?;
    let recipient = UserId::new(body.recipient_id)
        .map_err(|error| ApiError::invalid(format!("recipient_id: {error}")))?;
    let now = deps.now();
    claims.check_age(now)?;
    let request = GiftRequest {
        order: deps.gifts().order(&gift_id, body.quantity)?,
        sender: claims.user_id,
        recipient,
        target: body.target,
        sender_zone: claims.zone,
    };
    let receipt = deps.ledger.send_gift(&request, now, &key).await?;
    tracing::info!(
        gift_txn_id = %receipt.gift_txn_id,
        coins = receipt.coins_spent,
        "gift sent"
    );
    response::created(&receipt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coins_ledger::MemoryStore;
    use coins_testkit::{
        Event, T0, assert_problem, buy_package, count_gifts, enroll, memory_deps, read, zone,
    };
    use serde_json::{Value, json};

    fn fixture() -> Event {
        Event::load("post-gift")
    }

    /// alice has 700+ coins; carol is a creator.
    async fn funded(deps: &Deps<MemoryStore>) {
        buy_package(deps, "alice", "JP", "Asia/Tokyo", "coins_700").await;
        enroll(deps, "carol").await;
    }

    async fn balance(deps: &Deps<MemoryStore>, user: &str) -> u64 {
        let user = UserId::new(user).unwrap();
        deps.ledger
            .wallet(&user, &zone("Asia/Tokyo"), deps.now())
            .await
            .unwrap()
            .balance
    }

    fn gift(gift_id: &str, quantity: u64) -> Value {
        json!({"gift_id": gift_id, "quantity": quantity, "recipient_id": "carol", "target": {"kind": "live", "id": "live-8812"}})
    }

    #[tokio::test]
    async fn a_gift_spends_coins_and_credits_the_creator_the_same_diamonds() {
        let (deps, _) = memory_deps(T0);
        funded(&deps).await;
        let before = balance(&deps, "alice").await;
        let (status, body) = read(&handle(&deps, fixture().request()).await);
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["coins_spent"], 5, "5 roses at 1 coin");
        assert_eq!(body["diamonds"], 5);
        assert_eq!(body["balance"].as_u64(), Some(before - 5));
        assert!(body["gift_txn_id"].as_str().unwrap().starts_with("gft_"));
        // The creator's side follows from the stream.
        count_gifts(&deps).await;
        let earnings = deps
            .ledger
            .earnings(&UserId::new("carol").unwrap(), deps.now())
            .await
            .unwrap();
        assert_eq!(earnings.diamonds_earned, 5);
    }

    #[tokio::test]
    async fn a_retry_with_the_same_key_spends_once() {
        let (deps, _) = memory_deps(T0);
        funded(&deps).await;
        let first = read(&handle(&deps, fixture().request()).await);
        let again = read(&handle(&deps, fixture().request()).await);
        assert_eq!(first, again);
        let other_body = fixture().body(gift("rose", 6));
        assert_problem(
            &handle(&deps, other_body.request()).await,
            422,
            "idempotency_key_reused",
        );
    }

    #[tokio::test]
    async fn more_than_the_balance_is_insufficient_coins() {
        let (deps, _) = memory_deps(T0);
        funded(&deps).await;
        let event = fixture().body(gift("universe", 1));
        assert_problem(
            &handle(&deps, event.request()).await,
            409,
            "insufficient_coins",
        );
    }

    #[tokio::test]
    async fn a_gift_to_oneself_or_to_a_non_creator_is_refused() {
        let (deps, _) = memory_deps(T0);
        funded(&deps).await;
        let selfie = fixture().body(json!({"gift_id": "rose", "quantity": 1, "recipient_id": "alice", "target": {"kind": "video", "id": "v1"}}));
        assert_problem(&handle(&deps, selfie.request()).await, 422, "self_gift");
        let stranger = fixture()
            .header("Idempotency-Key", Some("gift-2"))
            .body(json!({"gift_id": "rose", "quantity": 1, "recipient_id": "dave", "target": {"kind": "video", "id": "v1"}}));
        assert_problem(
            &handle(&deps, stranger.request()).await,
            422,
            "recipient_not_creator",
        );
    }

    #[tokio::test]
    async fn the_daily_limit_stops_a_gift_past_it() {
        let (deps, _) = memory_deps(T0);
        funded(&deps).await;
        let alice = UserId::new("alice").unwrap();
        deps.ledger
            .set_daily_limit(&alice, &zone("Asia/Tokyo"), Some(4), deps.now())
            .await
            .unwrap();
        assert_problem(
            &handle(&deps, fixture().request()).await,
            409,
            "spending_limit_reached",
        );
    }

    #[tokio::test]
    async fn a_minor_cannot_send() {
        let (deps, _) = memory_deps(T0);
        funded(&deps).await;
        let event = fixture().claim("birthdate", Some("2010-01-01"));
        assert_problem(&handle(&deps, event.request()).await, 403, "age_restricted");
    }

    #[tokio::test]
    async fn bad_bodies_are_invalid_requests_and_spend_nothing() {
        let (deps, _) = memory_deps(T0);
        funded(&deps).await;
        let before = balance(&deps, "alice").await;
        for body in [
            gift("rose", 0),
            json!({"gift_id": "rose", "quantity": -1, "recipient_id": "carol", "target": {"kind": "live", "id": "l"}}),
            json!({"gift_id": "rose", "quantity": 4294967296u64, "recipient_id": "carol", "target": {"kind": "live", "id": "l"}}),
            json!({"gift_id": "rose", "quantity": "5", "recipient_id": "carol", "target": {"kind": "live", "id": "l"}}),
            json!({"gift_id": "rose", "quantity": 1, "recipient_id": "carol", "target": {"kind": "story", "id": "l"}}),
            json!({"gift_id": "rose", "quantity": 1, "recipient_id": "carol", "target": {"kind": "live", "id": ""}}),
            json!({"gift_id": "rose", "quantity": 1, "recipient_id": "ca#rol", "target": {"kind": "live", "id": "l"}}),
            json!({"gift_id": "unicorn", "quantity": 1, "recipient_id": "carol", "target": {"kind": "live", "id": "l"}}),
            json!({"gift_id": "Rose!", "quantity": 1, "recipient_id": "carol", "target": {"kind": "live", "id": "l"}}),
            json!({"gift_id": "rose", "quantity": 1, "recipient_id": "carol"}),
        ] {
            let response = handle(&deps, fixture().body(body.clone()).request()).await;
            assert_problem(&response, 400, "invalid_request");
        }
        assert_eq!(balance(&deps, "alice").await, before);
        let no_key = fixture().header("Idempotency-Key", None);
        assert_problem(
            &handle(&deps, no_key.request()).await,
            400,
            "invalid_request",
        );
    }
}
