//! Idempotency records: the first result of a keyed request, returned to every retry.
//!
//! A request is identified by the user, the client's key and a SHA-256 of its canonical form.
//! The record is written in the same transaction as the effect, with the condition
//! `attribute_not_exists(pk) OR expires_at < :now`, so two concurrent requests with one key
//! produce one effect, and an expired record (TTL deletion lags) is replaced, not obeyed.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use coins_ids::{IdempotencyKey, UserId};

use crate::error::LedgerError;
use crate::store::{Condition, Store, Write};
use crate::table::{IdempotencyRecord, keys};

/// SHA-256 (hex) of a request's canonical JSON form: same body, same hash.
pub fn request_hash<T: Serialize>(canonical: &T) -> Result<String, LedgerError> {
    let mut hasher = Sha256::new();
    serde_json::to_writer(&mut hasher, canonical)
        .map_err(|error| LedgerError::Corrupt(format!("canonical request: {error}")))?;
    Ok(hex::encode(hasher.finalize()))
}

/// The stored response of an earlier request with this key, if one is still in force; a
/// different request under the same key is [`LedgerError::IdempotencyKeyReused`].
pub async fn prior_response<S: Store, T: DeserializeOwned>(
    store: &S,
    user: &UserId,
    key: &IdempotencyKey,
    request_hash: &str,
    now: Timestamp,
) -> Result<Option<T>, LedgerError> {
    let Some(record) = store.get(&keys::idempotency(user, key)).await? else {
        return Ok(None);
    };
    let record = IdempotencyRecord::try_from(record)?;
    if record.expires_at < now.as_second() {
        return Ok(None);
    }
    if record.request_hash != request_hash {
        return Err(LedgerError::IdempotencyKeyReused);
    }
    serde_json::from_str(&record.response)
        .map(Some)
        .map_err(|error| LedgerError::Corrupt(format!("stored response: {error}")))
}

/// The write that records `response` as the first result for this key.
pub fn record_write<T: Serialize>(
    user: &UserId,
    key: &IdempotencyKey,
    request_hash: &str,
    response: &T,
    now: Timestamp,
    ttl: SignedDuration,
) -> Result<Write, LedgerError> {
    let response = serde_json::to_string(response)
        .map_err(|error| LedgerError::Corrupt(format!("response: {error}")))?;
    let record = IdempotencyRecord {
        user_id: user.clone(),
        key: key.clone(),
        request_hash: request_hash.to_owned(),
        response,
        created_at: now,
        expires_at: (now + ttl).as_second(),
    };
    Ok(Write::put(
        record,
        Condition::AbsentOrExpired {
            now_epoch_s: now.as_second(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_body_hashes_the_same_and_another_body_differently() {
        let a = request_hash(&("gift", "rose", 5)).unwrap();
        assert_eq!(a, request_hash(&("gift", "rose", 5)).unwrap());
        assert_ne!(a, request_hash(&("gift", "rose", 6)).unwrap());
    }
}
