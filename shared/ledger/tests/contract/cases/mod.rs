//! The contract cases: generic over the store, run once per adapter by `main.rs`.

mod concurrency;
mod dispatch;
mod earnings;
mod faults;
mod gifts;
mod lots;
mod outstanding;
mod port;
mod purchases;
mod reads;
mod refunds;
mod reversals;
mod stores;

pub use concurrency::*;
pub use dispatch::*;
pub use earnings::*;
pub use faults::*;
pub use gifts::*;
pub use lots::*;
pub use outstanding::*;
pub use port::*;
pub use purchases::*;
pub use reads::*;
pub use refunds::*;
pub use reversals::*;
pub use stores::*;
