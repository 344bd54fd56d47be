//! Who may call what: 401 without a valid identity on every route, 403 `forbidden` on the admin
//! route without its scope, 403 `age_restricted` where age gates (buying, sending, receiving),
//! 404 for what does not exist or is not the caller's, 405 for a wrong method.

use e2e_tests::flows::{self, buy, enroll, send_gift, str_field};
use e2e_tests::{LocalServer, User};
use serde_json::json;
use ureq::http::Method;

/// Every route behind the authorizer, with a body it would accept.
fn authorized_routes() -> Vec<(Method, &'static str, Option<serde_json::Value>)> {
    vec![
        (Method::GET, "/v1/packages?channel=web", None),
        (
            Method::POST,
            "/v1/quotes",
            Some(json!({"channel": "web", "package_id": "coins_70"})),
        ),
        (
            Method::POST,
            "/v1/purchases",
            Some(json!({"quote_id": "quo_x"})),
        ),
        (Method::GET, "/v1/wallet", None),
        (Method::GET, "/v1/wallet/transactions", None),
        (
            Method::PUT,
            "/v1/wallet/limits",
            Some(json!({"daily_coins": 100})),
        ),
        (Method::GET, "/v1/gifts/catalog", None),
        (Method::POST, "/v1/creators/me", None),
        (Method::GET, "/v1/creators/me/earnings", None),
        (
            Method::POST,
            "/v1/gifts",
            Some(
                json!({"gift_id": "rose", "quantity": 1, "recipient_id": "x", "target": {"kind": "live", "id": "l"}}),
            ),
        ),
        (Method::POST, "/v1/purchases/pur_x/refund", None),
        (
            Method::POST,
            "/v1/admin/purchases/pur_x/refund",
            Some(json!({"reason": "defective"})),
        ),
    ]
}

#[test]
fn every_route_but_the_webhook_is_401_without_a_valid_token() {
    let server = LocalServer::new("unauthenticated");
    let user = User::new("mallory").admin();
    let tokens: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("not a JWT", Some("not-a-jwt".to_owned())),
        (
            "another secret",
            Some(user.token_signed_with("someone-elses-secret")),
        ),
        ("expired", Some(user.expired_token())),
    ];
    for (method, path, body) in authorized_routes() {
        for (why, token) in &tokens {
            let mut call = server
                .api()
                .call(method.clone(), path)
                .idempotency_key(&flows::new_key("auth"));
            if let Some(token) = token {
                call = call.bearer(token);
            }
            if let Some(body) = &body {
                call = call.json(body);
            }
            let reply = call.send();
            assert_eq!(
                reply.status,
                401,
                "{method} {path} with {why}: {}",
                reply.text()
            );
            reply.expect_problem(401, "unauthenticated");
        }
    }
    // Nothing was written by any of those calls, even with an admin's (forged) scope.
    assert_eq!(flows::balance(&server, &user), 0);
}

#[test]
fn a_signed_token_with_a_missing_or_malformed_claim_is_401() {
    let server = LocalServer::new("bad-claims");
    let user = User::new("erin");
    for (claim, value) in [
        ("birthdate", None),
        ("birthdate", Some("12/04/1990")),
        ("billing_country", None),
        ("billing_country", Some("Japan")),
        ("zoneinfo", None),
        ("zoneinfo", Some("Mars/Olympus_Mons")),
        ("billing_region", Some("CA-QC")),
    ] {
        server
            .api()
            .get("/v1/wallet")
            .bearer(&user.token_with_claim(claim, value))
            .send()
            .expect_problem(401, "unauthenticated");
    }
}

#[test]
fn the_admin_refund_without_the_admin_scope_is_forbidden() {
    let server = LocalServer::new("forbidden");
    let buyer = User::new("buyer");
    let bought = buy(&server, &buyer, "coins_70");
    let not_admin = User::new("support");
    server
        .api()
        .post(&format!(
            "/v1/admin/purchases/{}/refund",
            bought.purchase_id
        ))
        .user(&not_admin)
        .json(&json!({"reason": "defective"}))
        .send()
        .expect_problem(403, "forbidden");
    // The buyer themself is no admin either.
    server
        .api()
        .post(&format!(
            "/v1/admin/purchases/{}/refund",
            bought.purchase_id
        ))
        .user(&buyer)
        .json(&json!({"reason": "legal"}))
        .send()
        .expect_problem(403, "forbidden");
    assert_eq!(flows::balance(&server, &buyer), bought.total_coins);
}

#[test]
fn a_minor_cannot_quote_gift_or_enroll_as_a_creator() {
    let server = LocalServer::new("age");
    // 17 in Japan (minimum 18): the clock is 2026-03-02 in Tokyo, the 18th birthday tomorrow.
    let minor = User::new("minor").born("2008-03-03");
    server
        .api()
        .post("/v1/quotes")
        .user(&minor)
        .json(&json!({"channel": "web", "package_id": "coins_70"}))
        .send()
        .expect_problem(403, "age_restricted");
    server
        .api()
        .post("/v1/creators/me")
        .user(&minor)
        .send()
        .expect_problem(403, "age_restricted");
    // A minor holding coins (say, bought when the rules were looser) still cannot send them: the
    // same user id with an adult's token buys, then the minor's token gifts.
    let creator = User::new("creator");
    enroll(&server, &creator);
    let mut adult_self = minor.clone();
    adult_self.birthdate = "1990-01-01".into();
    buy(&server, &adult_self, "coins_70");
    send_gift(&server, &minor, &creator, "rose", 1).expect_problem(403, "age_restricted");
    // Nothing moved, and the refused enrollment enrolled nothing.
    assert_eq!(flows::balance(&server, &minor), 70);
    server
        .api()
        .get("/v1/creators/me/earnings")
        .user(&minor)
        .send()
        .expect_problem(404, "not_found");
}

#[test]
fn age_is_counted_on_the_local_date_and_by_jurisdiction() {
    let server = LocalServer::new("age-local-date");
    let quote = |user: &User| {
        server
            .api()
            .post("/v1/quotes")
            .user(user)
            .json(&json!({"channel": "web", "package_id": "coins_70"}))
            .send()
    };
    // 18 today in Tokyo (2026-03-02 there): allowed.
    quote(&User::new("tokyo").born("2008-03-02")).expect(201);
    // The same birthday in Los Angeles, where it is still 2026-03-01: 17, refused.
    let angeleno = User::new("la")
        .born("2008-03-02")
        .in_country("US", "America/Los_Angeles")
        .in_region("US-CA");
    quote(&angeleno).expect_problem(403, "age_restricted");
    // 18 is not enough in Korea (19) or Alabama (19), nor 19 in Thailand (20).
    let korean = User::new("kr")
        .born("2007-06-01")
        .in_country("KR", "Asia/Seoul");
    quote(&korean).expect_problem(403, "age_restricted");
    let alabaman = User::new("al")
        .born("2007-06-01")
        .in_country("US", "America/Chicago")
        .in_region("US-AL");
    quote(&alabaman).expect_problem(403, "age_restricted");
    let thai = User::new("th")
        .born("2006-06-01")
        .in_country("TH", "Asia/Bangkok");
    server
        .api()
        .post("/v1/creators/me")
        .user(&thai)
        .send()
        .expect_problem(403, "age_restricted");
    // The same 18-year-old billed elsewhere in the US is an adult.
    let texan = User::new("tx")
        .born("2007-06-01")
        .in_country("US", "America/Chicago")
        .in_region("US-TX");
    quote(&texan).expect(201);
    // Without the region the state's rule cannot be known: the token is not enough.
    let somewhere = User::new("us")
        .born("2007-06-01")
        .in_country("US", "America/Chicago");
    quote(&somewhere).expect_problem(401, "unauthenticated");
}

#[test]
fn what_does_not_exist_or_is_not_the_callers_is_not_found() {
    let server = LocalServer::new("not-found");
    let owner = User::new("owner");
    let stranger = User::new("stranger");
    let bought = buy(&server, &owner, "coins_70");
    let api = server.api();
    api.get("/v1/no-such-route")
        .user(&owner)
        .send()
        .expect_problem(404, "not_found");
    flows::refund(&server, &owner, "pur_does_not_exist").expect_problem(404, "not_found");
    // Someone else's purchase is indistinguishable from none.
    flows::refund(&server, &stranger, &bought.purchase_id).expect_problem(404, "not_found");
    api.post("/v1/admin/purchases/pur_does_not_exist/refund")
        .user(&User::new("admin").admin())
        .json(&json!({"reason": "defective"}))
        .send()
        .expect_problem(404, "not_found");
    api.get("/v1/creators/me/earnings")
        .user(&stranger)
        .send()
        .expect_problem(404, "not_found");
    // A purchase of a quote that is not the caller's: not found, and nothing is created.
    let quote = flows::quote_package(&server, &owner, "coins_70");
    flows::purchase_with_key(
        &server,
        &stranger,
        str_field(&quote, "quote_id"),
        &flows::new_key("steal"),
    )
    .expect_problem(404, "not_found");
    assert_eq!(flows::balance(&server, &owner), bought.total_coins);
    assert_eq!(flows::balance(&server, &stranger), 0);
}

#[test]
fn a_wrong_method_on_a_known_path_is_405() {
    let server = LocalServer::new("method");
    server
        .api()
        .post("/v1/wallet")
        .user(&User::new("frank"))
        .json(&json!({}))
        .send()
        .expect_problem(405, "method_not_allowed");
}
