//! The pure rules of the coin economy: money, pricing, tax, age, refund windows, gifts, limits.
//!
//! Synchronous and free of I/O: every function here takes the facts (the time, the user's zone,
//! the price book) as arguments, so each rule can be tested alone and run anywhere.

pub mod limits;
pub mod money;
pub mod refund;
