//! `GET /v1/wallet/transactions`: newest first, paged by an opaque cursor, every page agreeing
//! with one big page.

use e2e_tests::flows::{self, all_transactions, buy, enroll, send_gift, str_field};
use e2e_tests::scenarios::assert_history_adds_up;
use e2e_tests::{LocalServer, User};

#[test]
fn the_history_pages_newest_first_without_gaps_or_repeats() {
    let server = LocalServer::new("history");
    let fan = User::new("fan");
    let creator = User::new("creator");
    enroll(&server, &creator);
    buy(&server, &fan, "coins_700");
    for quantity in 1..=6 {
        server.advance_clock(1);
        send_gift(&server, &fan, &creator, "rose", quantity).expect(201);
    }
    let balance = flows::balance(&server, &fan);
    assert_eq!(balance, 700 - 21);

    // Once the stream has written the gifts' entries, one big page:
    all_transactions(&server, &fan, 100);
    let everything = server
        .api()
        .get("/v1/wallet/transactions?limit=100")
        .user(&fan)
        .send()
        .expect(200);
    assert!(everything["next_cursor"].is_null(), "{everything}");
    let one_page = everything["items"].as_array().expect("items").clone();
    assert_eq!(one_page.len(), 7);
    let coins: Vec<i64> = one_page
        .iter()
        .map(|t| t["coins"].as_i64().unwrap())
        .collect();
    assert_eq!(coins, [-6, -5, -4, -3, -2, -1, 700], "newest first");
    assert_history_adds_up(&one_page, balance);
    for entry in &one_page[..6] {
        assert_eq!(entry["kind"], "gift");
    }
    assert_eq!(one_page[6]["kind"], "purchase");

    for page_size in [1, 2, 3, 7] {
        assert_eq!(
            all_transactions(&server, &fan, page_size),
            one_page,
            "pages of {page_size}"
        );
    }
    // The default page is at most 20 and still starts with the newest.
    let default = server
        .api()
        .get("/v1/wallet/transactions")
        .user(&fan)
        .send()
        .expect(200);
    assert_eq!(default["items"][0], one_page[0]);
}

#[test]
fn a_cursor_from_another_wallet_or_tampered_reads_nothing_of_anyone_elses() {
    let server = LocalServer::new("history-cursor");
    let fan = User::new("fan");
    let other = User::new("other");
    buy(&server, &fan, "coins_70");
    buy(&server, &fan, "coins_350");
    let page = server
        .api()
        .get("/v1/wallet/transactions?limit=1")
        .user(&fan)
        .send()
        .expect(200);
    let cursor = flows::encode_query_value(str_field(&page, "next_cursor"));
    let reply = server
        .api()
        .get(&format!("/v1/wallet/transactions?limit=10&cursor={cursor}"))
        .user(&other)
        .send();
    // Either refused as invalid, or an empty page of the caller's own (empty) history.
    match reply.status {
        400 => {
            reply.expect_problem(400, "invalid_request");
        }
        200 => assert_eq!(reply.json()["items"], serde_json::json!([])),
        status => panic!("a foreign cursor answered {status}: {}", reply.text()),
    }
    server
        .api()
        .get("/v1/wallet/transactions?cursor=%25%25not-a-cursor")
        .user(&fan)
        .send()
        .expect_problem(400, "invalid_request");
}
