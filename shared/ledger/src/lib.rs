//! Wallets and the ledger of coins.
