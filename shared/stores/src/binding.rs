//! Binding a store transaction to the account that bought it (#18). Whoever presented a signed
//! transaction or a purchase token first used to get its coins; now the apps name the buyer's
//! account to the store when the purchase starts (StoreKit's `appAccountToken`, Play Billing's
//! `setObfuscatedAccountId`), the store signs or reports it with the transaction, and only the
//! account it names may redeem it.
//!
//! Both values are derived from the user id (SHA-256 under a label of their own), not stored:
//! stable across devices and reinstalls, and nothing to write or look up. They are not secrets
//! and need not be: they name a beneficiary, they authenticate nothing (the store's signature or
//! API does). Someone who computes another user's value can only buy coins for that user. No key
//! goes into the hash on purpose: a rotated key would unbind every purchase in flight.

use sha2::{Digest, Sha256};

fn digest(label: &str, user_id: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(label.as_bytes());
    hash.update([0]);
    hash.update(user_id.as_bytes());
    hash.finalize().into()
}

/// The user's `appAccountToken` for StoreKit: a UUID (lowercase, RFC 9562 layout with version 8,
/// "custom", and the RFC variant), the first 16 bytes of the user's hash.
pub fn app_account_token(user_id: &str) -> String {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest("coins/app-account-token", user_id)[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The user's obfuscated account id for Play Billing: 64 hex characters (Google allows 64).
pub fn obfuscated_account_id(user_id: &str) -> String {
    digest("coins/obfuscated-account-id", user_id)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whether the token a transaction carries is the user's (a UUID compares case-insensitively).
pub fn is_app_account_token_of(token: Option<&str>, user_id: &str) -> bool {
    token.is_some_and(|token| token.eq_ignore_ascii_case(&app_account_token(user_id)))
}

/// Whether the obfuscated account id a Play purchase carries is the user's.
pub fn is_obfuscated_account_id_of(id: Option<&str>, user_id: &str) -> bool {
    id.is_some_and(|id| id == obfuscated_account_id(user_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_has_one_stable_token_and_id_of_the_stores_shapes() {
        let token = app_account_token("user-1");
        assert_eq!(token, app_account_token("user-1"));
        assert_ne!(token, app_account_token("user-2"));
        assert_eq!(token.len(), 36);
        assert_eq!(token.as_bytes()[14], b'8', "version 8: {token}");
        assert!(matches!(token.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
        let id = obfuscated_account_id("user-1");
        assert_eq!(id.len(), 64);
        assert_ne!(id, obfuscated_account_id("user-2"));
        assert!(is_app_account_token_of(
            Some(&token.to_uppercase()),
            "user-1"
        ));
        assert!(!is_app_account_token_of(Some(&token), "user-2"));
        assert!(!is_app_account_token_of(None, "user-1"));
        assert!(is_obfuscated_account_id_of(Some(&id), "user-1"));
        assert!(!is_obfuscated_account_id_of(Some(&id), "user-2"));
        assert!(!is_obfuscated_account_id_of(None, "user-1"));
    }
}
