//! Which pool addresses a client without an address can be offered, kept up to
//! date as addresses change hands, so that finding the lowest one costs
//! O(log n) however many offers, bindings and releases the pool holds. (A walk
//! from the start of the pool past every offered address made each DISCOVER of
//! a flood of new MACs slower than the one before.)
//!
//! Sans-IO and knowing nothing of MACs: [`super::leases::LeaseTable`] decides
//! what each address is ([`Slot`]) whenever that may change and tells the index
//! with [`PoolIndex::set`]; addresses are numbered from the pool's start.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

/// What a pool address is to a client that holds none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Bound, reserved by `[static_dhcp]`, or this server's own.
    Taken,
    /// Offered to a client, until then.
    Offered(Instant),
    /// Declined, out of use until then.
    Quarantined(Instant),
    /// Free, but the MAC that released it would like it back.
    Reusable,
    Free,
}

/// The pool's addresses by [`Slot`], each in exactly one place.
#[derive(Debug, Clone, Default)]
pub struct PoolIndex {
    free: Ranges,
    reusable: BTreeSet<u32>,
    /// Offered addresses, the oldest offer (the first to end) first.
    offered: BTreeSet<(Instant, u32)>,
    quarantined: BTreeSet<(Instant, u32)>,
    /// The slot of every address in `offered` or `quarantined`: where to find it.
    timed: HashMap<u32, Slot>,
}

impl PoolIndex {
    /// A pool of `len` addresses, all free. Nothing is allocated per address, so a
    /// pool of any size costs the same.
    pub fn new(len: u32) -> PoolIndex {
        let mut free = Ranges::default();
        if len > 0 {
            free.0.insert(0, len);
        }
        PoolIndex {
            free,
            ..PoolIndex::default()
        }
    }

    /// Puts address `index` in `slot`, wherever it was.
    pub fn set(&mut self, index: u32, slot: Slot) {
        self.free.remove(index);
        self.reusable.remove(&index);
        match self.timed.remove(&index) {
            Some(Slot::Offered(until)) => {
                self.offered.remove(&(until, index));
            }
            Some(Slot::Quarantined(until)) => {
                self.quarantined.remove(&(until, index));
            }
            _ => {}
        }
        match slot {
            Slot::Taken => {}
            Slot::Free => self.free.insert(index),
            Slot::Reusable => {
                self.reusable.insert(index);
            }
            Slot::Offered(until) => {
                self.offered.insert((until, index));
                self.timed.insert(index, slot);
            }
            Slot::Quarantined(until) => {
                self.quarantined.insert((until, index));
                self.timed.insert(index, slot);
            }
        }
    }

    /// How many addresses are free or reusable: what a new client could be
    /// offered now (a walk over the free ranges, not the addresses).
    pub fn free_count(&self) -> u64 {
        let free: u64 = self
            .free
            .0
            .iter()
            .map(|(start, end)| u64::from(end.saturating_sub(*start)))
            .sum();
        free + self.reusable.len() as u64
    }

    /// The lowest free address.
    pub fn first_free(&self) -> Option<u32> {
        self.free.first()
    }

    /// The lowest address free but wanted back by the MAC that released it.
    pub fn first_reusable(&self) -> Option<u32> {
        self.reusable.first().copied()
    }

    /// Addresses offered.
    pub fn offer_count(&self) -> usize {
        self.offered.len()
    }

    /// The address whose offer ends first: the oldest offer still holding.
    pub fn oldest_offer(&self) -> Option<u32> {
        self.offered.first().map(|(_, index)| *index)
    }

    /// Where address `index` is placed.
    #[cfg(test)]
    pub fn slot_of(&self, index: u32) -> Slot {
        if self.free.holding(index).is_some() {
            Slot::Free
        } else if self.reusable.contains(&index) {
            Slot::Reusable
        } else {
            self.timed.get(&index).copied().unwrap_or(Slot::Taken)
        }
    }

    /// An address whose offer or quarantine ended by `now`, to be placed again.
    pub fn due(&self, now: Instant) -> Option<u32> {
        let offer = self.offered.first().filter(|(until, _)| *until <= now);
        let quarantine = self.quarantined.first().filter(|(until, _)| *until <= now);
        offer.or(quarantine).map(|(_, index)| *index)
    }
}

/// A set of numbers kept as disjoint ranges, start → end (exclusive): a pool
/// nobody has used yet is one range.
#[derive(Debug, Clone, Default)]
struct Ranges(BTreeMap<u32, u32>);

impl Ranges {
    /// The range holding `n`.
    fn holding(&self, n: u32) -> Option<(u32, u32)> {
        self.0
            .range(..=n)
            .next_back()
            .filter(|(_, end)| n < **end)
            .map(|(start, end)| (*start, *end))
    }

    fn first(&self) -> Option<u32> {
        self.0.keys().next().copied()
    }

    fn remove(&mut self, n: u32) {
        let Some((start, end)) = self.holding(n) else {
            return;
        };
        self.0.remove(&start);
        if start < n {
            self.0.insert(start, n);
        }
        // `n < end`, so `n + 1` does not overflow.
        if n + 1 < end {
            self.0.insert(n + 1, end);
        }
    }

    fn insert(&mut self, n: u32) {
        if self.holding(n).is_some() {
            return;
        }
        // Ends are exclusive, so u32::MAX itself cannot be held (pool indices
        // stay below the pool's length, which is at most u32::MAX).
        let Some(mut end) = n.checked_add(1) else {
            return;
        };
        let mut start = n;
        if let Some((before, before_end)) = n.checked_sub(1).and_then(|m| self.holding(m)) {
            self.0.remove(&before);
            start = before;
            debug_assert_eq!(before_end, n);
        }
        if let Some(after_end) = self.0.remove(&end) {
            end = after_end;
        }
        self.0.insert(start, end);
    }

    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().flat_map(|(start, end)| *start..*end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    #[test]
    fn free_count_is_free_and_reusable_addresses() {
        let mut index = PoolIndex::new(10);
        assert_eq!(index.free_count(), 10);
        index.set(3, Slot::Taken);
        index.set(5, Slot::Offered(Instant::now()));
        index.set(7, Slot::Reusable);
        assert_eq!(index.free_count(), 8);
    }

    #[test]
    fn a_pool_of_every_address_costs_one_range() {
        let mut index = PoolIndex::new(u32::MAX);
        assert_eq!(index.first_free(), Some(0));
        index.set(0, Slot::Taken);
        index.set(u32::MAX - 1, Slot::Taken);
        assert_eq!(index.first_free(), Some(1));
        assert_eq!(index.free.0.len(), 1);
        index.set(0, Slot::Free);
        index.set(u32::MAX - 1, Slot::Free);
        assert_eq!(
            index.free.0.into_iter().collect::<Vec<_>>(),
            vec![(0, u32::MAX)]
        );
    }

    #[test]
    fn offers_come_out_oldest_first_and_fall_due_at_their_end() {
        let now = Instant::now();
        let mut index = PoolIndex::new(10);
        index.set(4, Slot::Offered(now + Duration::from_secs(20)));
        index.set(2, Slot::Offered(now + Duration::from_secs(10)));
        index.set(7, Slot::Quarantined(now + Duration::from_secs(5)));
        assert_eq!(index.oldest_offer(), Some(2));
        assert_eq!(index.due(now), None);
        assert_eq!(index.due(now + Duration::from_secs(5)), Some(7));
        // An offer held again moves to its new end.
        index.set(2, Slot::Offered(now + Duration::from_secs(30)));
        assert_eq!(index.oldest_offer(), Some(4));
        index.set(7, Slot::Reusable);
        assert_eq!(index.due(now + Duration::from_secs(20)), Some(4));
        assert_eq!(index.first_reusable(), Some(7));
        assert_eq!(index.first_free(), Some(0));
    }

    proptest! {
        /// The ranges hold exactly the numbers put in and not taken out.
        #[test]
        fn ranges_are_a_set(ops in proptest::collection::vec((any::<bool>(), 0u32..40), 0..200)) {
            let mut ranges = Ranges::default();
            let mut model = BTreeSet::new();
            for (add, n) in ops {
                if add {
                    ranges.insert(n);
                    model.insert(n);
                } else {
                    ranges.remove(n);
                    model.remove(&n);
                }
                prop_assert_eq!(ranges.iter().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
                prop_assert_eq!(ranges.first(), model.first().copied());
                // Disjoint and never adjacent: each range is as long as it can be.
                let bounds: Vec<_> = ranges.0.iter().map(|(s, e)| (*s, *e)).collect();
                for pair in bounds.windows(2) {
                    prop_assert!(pair[0].1 < pair[1].0);
                }
            }
        }
    }
}
