//! The table's stream and the provider's webhooks as the simulator delivers them: late, twice,
//! out of order, regrouped into other batches, and again after an invocation that failed or
//! crashed, as DynamoDB Streams under Lambda's retries (and Stripe's webhook retries) may, and
//! a little worse: one batch may hold a record twice, which a shard's batch never does but a
//! consumer's contract ("each gift once, whatever is redelivered or regrouped") covers. A
//! stream's record that failed may instead be dead-lettered (the event source mapping gave up on
//! it; the stream trims it after 24 hours): gone for good, so only the consumer's scheduled sweep
//! of what it still owes (`sweeps`) finishes its item.

use crate::faults::FaultProfile;
use crate::rng::Rng;
use crate::stats::Tally;

/// Records waiting for a consumer.
pub struct Deliveries<T> {
    /// Names its faults in the summary.
    name: &'static str,
    pending: Vec<Pending<T>>,
    /// Whether a record that failed may be dropped for good (a stream whose consumer sweeps
    /// what it owes), rather than always delivered again.
    dead_letters: bool,
}

struct Pending<T> {
    item: T,
    /// The first step it may be delivered at.
    due: u64,
}

impl<T: Clone> Deliveries<T> {
    pub fn new(name: &'static str) -> Self {
        Deliveries {
            name,
            pending: Vec::new(),
            dead_letters: false,
        }
    }

    /// The records of a stream whose mapping sends a record that keeps failing to its
    /// dead-letter queue (`FaultProfile::dead_letter`).
    pub fn dead_lettering(name: &'static str) -> Self {
        Deliveries {
            dead_letters: true,
            ..Deliveries::new(name)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn has_due(&self, step: u64) -> bool {
        self.pending.iter().any(|pending| pending.due <= step)
    }

    /// A new record: deliverable now or, delayed, some steps later; sometimes twice.
    pub fn push(
        &mut self,
        item: T,
        step: u64,
        rng: &mut Rng,
        profile: &FaultProfile,
        faults: &mut Tally,
    ) {
        if rng.chance(profile.duplicate) {
            faults.add(format!("{}: record delivered twice", self.name), 1);
            let due = self.due(step, rng, profile, faults);
            self.pending.push(Pending {
                item: item.clone(),
                due,
            });
        }
        let due = self.due(step, rng, profile, faults);
        self.pending.push(Pending { item, due });
    }

    fn due(&self, step: u64, rng: &mut Rng, profile: &FaultProfile, faults: &mut Tally) -> u64 {
        if !rng.chance(profile.delay) {
            return step;
        }
        faults.add(format!("{}: record delayed", self.name), 1);
        // Mostly a few steps; now and then long enough for a claim or a grace to lapse.
        step + if rng.chance(100) {
            rng.range(10..=30)
        } else {
            rng.range(1..=4)
        }
    }

    /// A record deliverable from step `due` on (a webhook the provider sends late).
    pub fn push_at(&mut self, item: T, due: u64) {
        self.pending.push(Pending { item, due });
    }

    /// Up to `max` due records for one invocation, in an order of the seed's choosing (half
    /// the time the stream's own order).
    pub fn take(&mut self, step: u64, max: usize, rng: &mut Rng, faults: &mut Tally) -> Vec<T> {
        let mut chosen: Vec<usize> = (0..self.pending.len())
            .filter(|&index| self.pending[index].due <= step)
            .collect();
        rng.shuffle(&mut chosen);
        chosen.truncate(max);
        if rng.chance(500) {
            chosen.sort_unstable();
        } else if chosen.windows(2).any(|pair| pair[0] > pair[1]) {
            faults.add(format!("{}: batch out of order", self.name), 1);
        }
        let mut taken: Vec<Option<T>> = vec![None; chosen.len()];
        let mut by_index: Vec<(usize, usize)> = chosen.iter().copied().zip(0..).collect();
        // Removing from the back keeps the other indexes valid.
        by_index.sort_unstable_by_key(|&(index, _)| std::cmp::Reverse(index));
        for (index, position) in by_index {
            taken[position] = Some(self.pending.remove(index).item);
        }
        taken.into_iter().flatten().collect()
    }

    /// Records an invocation failed on (or crashed with): delivered again, now or later, or,
    /// on a dead-lettering stream, now and then dropped for good.
    pub fn redeliver(
        &mut self,
        items: Vec<T>,
        step: u64,
        rng: &mut Rng,
        profile: &FaultProfile,
        faults: &mut Tally,
    ) {
        for item in items {
            if self.dead_letters && rng.chance(profile.dead_letter) {
                faults.add(format!("{}: record dead-lettered", self.name), 1);
                continue;
            }
            faults.add(
                format!(
                    "{}: record redelivered after a failed invocation",
                    self.name
                ),
                1,
            );
            let due = self.due(step + 1, rng, profile, faults);
            self.pending.push(Pending { item, due });
        }
    }
}
