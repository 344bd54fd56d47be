//! Identifiers: newtypes so a purchase id is never passed where a user id is expected.
//!
//! Ids we mint are a prefix plus 26 random Crockford base32 characters (130 bits), like
//! `pur_7k2m…`. Ids that come from outside (the user id from the JWT `sub`, the payment
//! provider's ids, the client's idempotency key) are validated at construction, because they end
//! up inside DynamoDB keys where `#` separates key parts, and in logs and support tools where an
//! invisible or right-to-left character would make two ids look alike.
//!
//! The safe set of an external id: ASCII letters and digits and `- _ . : | @ + = /`
//! ([`is_id_char`]), 1 to 128 characters. An idempotency key may hold any visible ASCII character
//! but `#`, 1 to 255 (clients send UUIDs, hashes, or their own order numbers).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Crockford's base32 alphabet, lower case: no `i`, `l`, `o`, `u` to misread.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Random characters in a minted id: 26 × 5 = 130 bits, so collisions are not a concern.
const RANDOM_CHARS: usize = 26;
/// Longest id accepted from outside; keeps keys (and so hot items) small.
const MAX_EXTERNAL_ID_CHARS: usize = 128;
/// Longest idempotency key accepted: the HTTP contract allows 255 (UUIDs are 36; some clients
/// send longer opaque keys); with a 128-character user id the key item stays far under 1 KB.
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// An id from outside was empty, too long, or held a character that cannot go in a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct InvalidId {
    pub kind: &'static str,
    pub reason: &'static str,
}

/// `prefix` followed by [`RANDOM_CHARS`] random characters.
fn random_id(prefix: &str) -> String {
    // One draw of 128 + 8 random bits, five a character: all but the last from the u128.
    const _: () = assert!((RANDOM_CHARS - 1) * 5 <= 128);
    let (high, low): (u128, u8) = rand::random();
    let mut id = String::with_capacity(prefix.len() + RANDOM_CHARS);
    id.push_str(prefix);
    id.extend((0..RANDOM_CHARS).map(|index| {
        let bits = if index < RANDOM_CHARS - 1 {
            (high >> (5 * index)) as usize
        } else {
            usize::from(low)
        };
        char::from(ALPHABET[bits & 31])
    }));
    id
}

/// A character an external id may hold.
pub fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '|' | '@' | '+' | '=' | '/')
}

/// A character an idempotency key may hold: visible ASCII but `#`, the key separator.
fn is_key_char(c: char) -> bool {
    c.is_ascii_graphic() && c != '#'
}

fn validate(
    kind: &'static str,
    value: &str,
    max_chars: usize,
    allowed: fn(char) -> bool,
) -> Result<(), InvalidId> {
    let invalid = |reason| Err(InvalidId { kind, reason });
    if value.is_empty() {
        return invalid("empty");
    }
    if value.len() > max_chars {
        return invalid("too long");
    }
    if value.contains('#') {
        return invalid("contains '#', the key separator");
    }
    if !value.chars().all(allowed) {
        return invalid("holds a character outside the safe set");
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr) => {
        string_id!($(#[$doc])* $name, $kind, $max, is_id_char);
    };
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr, $allowed:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates an id received from outside.
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                validate($kind, &value, $max, $allowed)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

macro_rules! minted_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $prefix:literal) => {
        string_id!($(#[$doc])* $name, $kind, MAX_EXTERNAL_ID_CHARS);

        impl $name {
            /// The prefix every minted id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh random id.
            pub fn generate() -> Self {
                Self(random_id($prefix))
            }
        }
    };
}

string_id!(
    /// A user: the verified JWT's `sub`. A user never names another user's wallet.
    UserId,
    "user id",
    MAX_EXTERNAL_ID_CHARS
);
string_id!(
    /// The payment provider's event id: a webhook is applied at most once per event id.
    EventId,
    "event id",
    MAX_EXTERNAL_ID_CHARS
);
string_id!(
    /// The client's `Idempotency-Key` header: the same key and body return the first result.
    IdempotencyKey,
    "idempotency key",
    MAX_IDEMPOTENCY_KEY_CHARS,
    is_key_char
);
string_id!(
    /// A payment provider's payment: a Stripe PaymentIntent (`pi_…`), or a store's transaction
    /// (`appstore-<transactionId>`, `play-<orderId>`), which a store purchase holds in its place.
    PaymentIntentId,
    "payment intent id",
    MAX_EXTERNAL_ID_CHARS
);
string_id!(
    /// A payment provider's dispute of a payment (a Stripe dispute, `dp_…`), or a store's refund
    /// of a purchase: what a reversal is undone by.
    ReversalRef,
    "reversal reference",
    MAX_EXTERNAL_ID_CHARS
);
minted_id!(
    /// An instruction to give money back through the payment provider (`rfd_…`), or, for a
    /// payment that could not be credited, `ret_<payment intent>`: one return per payment.
    RefundId,
    "refund id",
    "rfd_"
);

impl RefundId {
    /// The one return of a payment that could not be credited.
    pub fn for_return(payment: &PaymentIntentId) -> RefundId {
        RefundId(format!("ret_{payment}"))
    }
}

minted_id!(
    /// A stored price quote (`quo_…`).
    QuoteId,
    "quote id",
    "quo_"
);
minted_id!(
    /// A purchase, from pending to credited (one lot) and maybe refunded (`pur_…`).
    PurchaseId,
    "purchase id",
    "pur_"
);
minted_id!(
    /// One gift send: the debit, the history entry and the creator's diamonds (`gft_…`).
    GiftTxnId,
    "gift transaction id",
    "gft_"
);
minted_id!(
    /// A creator's payout of diamonds (`pay_…`): sent once, as a Stripe transfer.
    PayoutId,
    "payout id",
    "pay_"
);
string_id!(
    /// A creator's Stripe Connect account (`acct_…`), where their payouts go.
    ConnectedAccountId,
    "connected account id",
    MAX_EXTERNAL_ID_CHARS
);
minted_id!(
    /// One history entry of a wallet (`txn_…`).
    TxnId,
    "transaction id",
    "txn_"
);

impl TxnId {
    /// The history entry of a gift: one per gift, whoever writes it.
    pub fn for_gift(gift: &GiftTxnId) -> TxnId {
        TxnId(format!(
            "txn_{}",
            gift.as_str().trim_start_matches(GiftTxnId::PREFIX)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_ids_carry_their_prefix_and_26_base32_characters() {
        let id = PurchaseId::generate();
        let suffix = id.as_str().strip_prefix("pur_").unwrap();
        assert_eq!(suffix.len(), 26);
        assert!(suffix.bytes().all(|b| ALPHABET.contains(&b)));
        assert_ne!(PurchaseId::generate(), id);
    }

    #[test]
    fn ids_that_would_break_a_key_are_rejected() {
        assert!(UserId::new("").is_err());
        assert!(UserId::new("a#b").is_err());
        assert!(UserId::new("a b").is_err());
        assert!(UserId::new("x".repeat(129)).is_err());
        assert!(UserId::new("7f1c0e2a-95b4-4a6e-9d1e-2b8f0c6d3a11").is_ok());
        assert!(IdempotencyKey::new("k".repeat(255)).is_ok());
        assert!(IdempotencyKey::new("k".repeat(256)).is_err());
    }

    #[test]
    fn invisible_and_bidirectional_characters_are_refused() {
        for sneaky in [
            "ali\u{200B}ce",    // zero-width space
            "ali\u{202E}ecila", // right-to-left override
            "ali\u{2066}ce",    // left-to-right isolate
            "alice\u{00A0}",    // no-break space
            "аlice",            // Cyrillic a
            "ali ce",
            "ali\tce",
        ] {
            assert!(UserId::new(sneaky).is_err(), "{sneaky:?}");
            assert!(EventId::new(sneaky).is_err(), "{sneaky:?}");
        }
        assert!(IdempotencyKey::new("ali\u{200B}ce").is_err());
        assert!(IdempotencyKey::new("order-42/retry=1;x?").is_ok());
        assert!(UserId::new("auth0|5f1c.a_b-c@x+y=z/1:2").is_ok());
    }

    #[test]
    fn ids_deserialize_through_validation() {
        assert!(serde_json::from_str::<UserId>(r#""ok""#).is_ok());
        assert!(serde_json::from_str::<UserId>(r#""not#ok""#).is_err());
    }
}
