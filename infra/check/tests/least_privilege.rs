//! What each role may write, beyond its actions: gift entries (which the earnings consumer turns
//! into diamonds) are written by the gift function alone, and where a role writes only some
//! rows of a partition, `dynamodb:Attributes` holds it to those rows' attributes.
//!
//! Attribute names are not copied from the template: they come from the ledger's own rows,
//! stored as the DynamoDB adapter stores them (`coins_ledger::dynamo::to_item`), so a field
//! added to a row and not to the policy fails here, not with AccessDenied in production.

use std::collections::BTreeSet;

use coins_ids::{IdempotencyKey, UserId};
use coins_ledger::table::{Record, keys};
use infra_check::{actions, binary_of, functions, repo_template, role_statements, string_like};
use serde_json::{Value as Json, json};

const WRITES: [&str; 4] = [
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
];

/// The statements of `binary`'s role that write the table.
fn writing_statements<'a>(template: &'a Json, function: &Json) -> Vec<&'a Json> {
    role_statements(template, function)
        .into_iter()
        .filter(|s| actions(s).iter().any(|a| WRITES.contains(a)))
        .collect()
}

fn leading_keys(statement: &Json) -> Vec<&str> {
    statement
        .pointer("/Condition/ForAllValues:StringLike/dynamodb:LeadingKeys")
        .and_then(Json::as_array)
        .map(|keys| keys.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default()
}

/// The functions whose role may write an item whose partition key is `pk`.
fn writers_of(template: &Json, pk: &str) -> BTreeSet<String> {
    let mut writers = BTreeSet::new();
    for (id, function) in functions(template) {
        let binary = binary_of(function).unwrap_or(id);
        for statement in writing_statements(template, function) {
            let keys = leading_keys(statement);
            assert!(
                !keys.is_empty(),
                "{binary}: a table write without dynamodb:LeadingKeys may write any item"
            );
            if keys.iter().any(|pattern| string_like(pattern, pk)) {
                writers.insert(binary.to_owned());
            }
        }
    }
    writers
}

/// The gift entry's key as the ledger builds it: whatever prefix the ledger uses, only the gift
/// function may write under it (with the old `IDEM#` prefix, purchase, stores, refund and
/// creators could all write a "gift" the earnings consumer would pay out as diamonds).
#[test]
fn only_the_gift_function_writes_gift_entries() {
    let template = repo_template();
    let sender = UserId::new("alice").expect("a user id");
    let key = IdempotencyKey::new("k-1").expect("a key");
    let gift_pk = keys::gift_entry(&sender, &key).pk;
    let writers = writers_of(&template, &gift_pk);
    assert!(writers.contains("gift"), "gift must write {gift_pk}");
    // The earnings consumer marks an entry counted (out of the outstanding index, expiring);
    // the sweeper re-drives one the consumer has not counted. Nobody else touches them.
    let allowed: BTreeSet<String> = ["gift", "earnings", "sweeper"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let others: Vec<&String> = writers.difference(&allowed).collect();
    assert!(
        others.is_empty(),
        "{others:?} may write gift entries ({gift_pk})"
    );
    // Another operation's idempotency record is not a gift entry, and is not the gift's to write.
    let idem_pk = keys::idempotency(&sender, &key).pk;
    assert_ne!(idem_pk, gift_pk);
    assert!(!writers_of(&template, &idem_pk).contains("gift"));
}

/// The attribute names a row is stored with.
fn attributes(row: impl Into<Record>) -> BTreeSet<String> {
    coins_ledger::dynamo::to_item(&row.into())
        .expect("the row serializes")
        .keys()
        .cloned()
        .collect()
}

fn row<T: serde::de::DeserializeOwned>(fields: Json) -> T {
    serde_json::from_value(fields).expect("a full sample of the row")
}

const AT: &str = "2026-12-01T10:00:00Z";

/// A wallet with every optional field set.
fn wallet() -> BTreeSet<String> {
    attributes(row::<coins_ledger::domain::Wallet>(json!({
        "user_id": "alice", "zone": "Europe/Paris", "version": 7, "balance": 90,
        "non_refundable": 10, "lot_spent": 5, "purchased_total": 120, "gifted_total": 20,
        "refunded_total": 5, "reversed_total": 5, "debt": 1, "reversals": [AT],
        "restricted": true,
        "daily_limit": {"coins": 100, "pending": {"coins": 500, "effective_at": AT}},
        "spent_day": "2026-12-01", "spent_today": 20, "updated_at": AT
    })))
}

fn gift_details() -> Json {
    json!({"gift_txn_id": "gft_1", "recipient_id": "bob", "gift_id": "rose", "quantity": 2,
           "target": {"kind": "live", "id": "live-1"}})
}

fn history() -> BTreeSet<String> {
    attributes(row::<coins_ledger::table::HistoryRecord>(json!({
        "user_id": "alice", "seq": 7, "id": "txn_1", "kind": "gift", "coins": -20,
        "balance_after": 90, "at": AT, "ref": "gft_1", "non_refundable_coins": 3,
        "gift": gift_details()
    })))
}

fn lot() -> BTreeSet<String> {
    attributes(row::<coins_ledger::domain::Lot>(json!({
        "user_id": "alice", "purchase_id": "pur_1", "coins": 100, "purchased_at": AT,
        "refundable_until": "2026-12-15T10:00:00Z", "credited_seq": 3
    })))
}

fn lot_marker() -> BTreeSet<String> {
    attributes(row::<coins_ledger::table::LotMarkerRecord>(json!({
        "user_id": "alice", "purchase_id": "pur_1", "expires_at": 1_797_000_000
    })))
}

fn earnings() -> BTreeSet<String> {
    attributes(row::<coins_ledger::table::EarningsRecord>(json!({
        "creator_id": "bob", "version": 4, "earned": 1000,
        "holds": [{"release_at": AT, "diamonds": 10}], "in_payout": 100, "paid_out": 200,
        "payout_day": "2026-12-01", "payout_cents_today": 150,
        "unconfirmed": [{"pages": [format!("{:015}#gft_1", 1_796_000_000_000_i64)], "counted_at": AT}],
        "updated_at": AT
    })))
}

fn gifts_page() -> BTreeSet<String> {
    attributes(row::<coins_ledger::table::GiftsPageRecord>(json!({
        "creator_id": "bob",
        "gifts": [{"gift_txn_id": "gft_1", "sender_id": "alice", "gift_id": "rose", "quantity": 2,
                   "diamonds": 10, "target": {"kind": "live", "id": "live-1"}, "at": AT,
                   "coins": 20, "seq": 7, "balance_after": 90}]
    })))
}

fn creator_profile() -> BTreeSet<String> {
    attributes(row::<coins_ledger::table::CreatorRecord>(json!({
        "user_id": "bob", "enrolled_at": AT, "payout_account": "acct_1"
    })))
}

fn payout() -> BTreeSet<String> {
    attributes(row::<coins_ledger::table::PayoutRecord>(json!({
        "payout_id": "pay_1", "creator_id": "bob", "diamonds": 100,
        "amount": {"currency": "USD", "amount": "0.50"}, "destination": "acct_1",
        "status": "pending", "version": 1, "created_at": AT, "updated_at": AT
    })))
}

/// The `dynamodb:Attributes` list of `binary`'s statement `sid`.
fn attribute_limit(template: &Json, binary: &str, sid: &str) -> BTreeSet<String> {
    let function = infra_check::function_by_binary(template, binary);
    let statement = role_statements(template, function)
        .into_iter()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("{binary} has no statement {sid}"));
    statement
        .pointer("/Condition/ForAllValues:StringEquals/dynamodb:Attributes")
        .and_then(Json::as_array)
        .unwrap_or_else(|| panic!("{binary}.{sid}: no dynamodb:Attributes limit"))
        .iter()
        .map(|name| name.as_str().expect("an attribute name").to_owned())
        .collect()
}

/// Whether a row with `row_attributes` could be written under `limit` (every attribute listed).
fn writable(limit: &BTreeSet<String>, row_attributes: &BTreeSet<String>) -> bool {
    row_attributes.is_subset(limit)
}

/// Each limited write: its role, its statement, the rows it must be able to write (the limit
/// is exactly their attributes), and the rows of the same partitions it must not.
#[test]
fn attribute_limits_admit_exactly_the_rows_each_role_writes() {
    type Rows = fn() -> BTreeSet<String>;
    /// Role, statement, rows it writes, rows it must not.
    type Limited<'a> = (&'a str, &'a str, &'a [Rows], &'a [(&'a str, Rows)]);
    let limited: [Limited; 4] = [
        // The wallet function only sets a daily limit or a restriction on the wallet.
        (
            "wallet",
            "ReadWalletSetLimit",
            &[wallet],
            &[
                ("a lot", lot),
                ("a lot marker", lot_marker),
                ("a history entry", history),
            ],
        ),
        // A gift debits the wallet; the lots it spends are counted in the wallet.
        (
            "gift",
            "DebitSender",
            &[wallet],
            &[("a lot", lot), ("a history entry", history)],
        ),
        // The earnings consumer counts gifts into earnings and pages of gifts received.
        (
            "earnings",
            "CountGifts",
            &[earnings, gifts_page],
            &[
                ("a payout", payout),
                ("a creator's profile", creator_profile),
            ],
        ),
        // ... and writes the senders' history entries, which never change.
        (
            "earnings",
            "WriteSendersHistory",
            &[history],
            &[("a wallet", wallet), ("a lot", lot)],
        ),
    ];
    let template = repo_template();
    for (binary, sid, rows, forbidden) in limited {
        let limit = attribute_limit(&template, binary, sid);
        let needed: BTreeSet<String> = rows.iter().flat_map(|row| row()).collect();
        assert_eq!(
            limit, needed,
            "{binary}.{sid}: the attribute limit must be exactly its rows' attributes"
        );
        for (what, row) in forbidden {
            assert!(
                !writable(&limit, &row()),
                "{binary}.{sid} could write {what}"
            );
        }
    }
}
