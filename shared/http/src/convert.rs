//! Conversions between the rules' types and the ledger's that more than one crate needs.

use coins_ledger::{Quote as StoredQuote, QuoteId, QuotePrice, UserId};
use coins_rules::Quote;
use coins_rules::pricing::quote_expires_at;
use jiff::Timestamp;

/// The quote to store for `user`, priced by the rules at `now`, expiring after the rules' TTL.
pub fn stored_quote(quote: &Quote, user: &UserId, now: Timestamp) -> StoredQuote {
    let price = quote.price();
    StoredQuote {
        quote_id: QuoteId::generate(),
        user_id: user.clone(),
        country: quote.country().as_str().to_owned(),
        channel: quote.channel().as_str().to_owned(),
        coins: quote.coins(),
        bonus_coins: quote.bonus_coins(),
        total_coins: quote.total_coins(),
        price: QuotePrice {
            net: price.net(),
            tax: price.tax(),
            gross: price.gross(),
        },
        tax_inclusive: quote.tax_inclusive(),
        price_book_version: quote.price_book_version().as_str().to_owned(),
        expires_at: quote_expires_at(now),
    }
}
