//! Running one step's operations as concurrent futures, deterministically.
//!
//! All of them are polled on one thread, always in the order they were launched; an operation
//! gives way only where its store handle yields (chosen by the seed), where the ledger backs off
//! (a zero backoff on tokio's paused clock: a timer fired in registration order, never by wall
//! time) or where it crashed. Nothing else orders them, so a seed replays the same
//! interleaving. A crashed operation is dropped at its next poll, as a stopped process would
//! leave its work.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::faults::OpFaults;

/// How an operation ended.
pub enum Ran<T> {
    Done(T),
    Crashed,
}

/// An operation of a step: its future and the faults it draws from.
pub struct Op<T> {
    pub faults: Arc<OpFaults>,
    pub future: Pin<Box<dyn Future<Output = T>>>,
}

/// Runs the operations to their end, concurrently, and answers in launch order.
pub fn run<T: Unpin>(runtime: &tokio::runtime::Runtime, ops: Vec<Op<T>>) -> Vec<Ran<T>> {
    let results = (0..ops.len()).map(|_| None).collect();
    let join = JoinInOrder {
        ops: ops.into_iter().map(Some).collect(),
        results,
    };
    runtime.block_on(join)
}

struct JoinInOrder<T> {
    ops: Vec<Option<Op<T>>>,
    results: Vec<Option<Ran<T>>>,
}

impl<T: Unpin> Future for JoinInOrder<T> {
    type Output = Vec<Ran<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        for (slot, result) in this.ops.iter_mut().zip(this.results.iter_mut()) {
            let Some(op) = slot else { continue };
            match op.future.as_mut().poll(cx) {
                Poll::Ready(value) => *result = Some(Ran::Done(value)),
                Poll::Pending if op.faults.crashed() => *result = Some(Ran::Crashed),
                Poll::Pending => continue,
            }
            *slot = None;
        }
        if this.ops.iter().any(Option::is_some) {
            return Poll::Pending;
        }
        Poll::Ready(
            this.results
                .iter_mut()
                .map(|result| result.take().expect("every operation ended"))
                .collect(),
        )
    }
}
