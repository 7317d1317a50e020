//! A hashed timer wheel for retransmission timers, generic over the key (the TFTP
//! endpoint keys it by transfer).
//!
//! - `schedule` is O(1): the entry goes into the slot of its tick. Scheduling a key
//!   again replaces its timer; `cancel` forgets it. Both are lazy: the key's current
//!   epoch is kept in a map and an entry whose epoch is out of date is dropped when its
//!   slot is next visited, so nothing is searched for.
//! - Deadlines are rounded **up** to the next tick: a timer never fires early.
//! - Entries more than one revolution away stay in their slot until their tick comes.
//! - `poll_timeout` gives the instant of the earliest timer (`None`: no timer).
//!
//! Pure: the caller passes `now`.

use std::hash::Hash;
use std::time::{Duration, Instant};

// Consulted on every reschedule; foldhash keeps a random per-process seed.
use foldhash::HashMap;

#[derive(Debug)]
struct Entry<K> {
    tick: u64,
    key: K,
    epoch: u64,
}

#[derive(Debug)]
pub struct TimerWheel<K> {
    origin: Instant,
    tick: Duration,
    slots: Vec<Vec<Entry<K>>>,
    /// The first tick not yet expired.
    next_tick: u64,
    /// Live keys and the epoch of their current timer.
    live: HashMap<K, u64>,
    next_epoch: u64,
}

impl<K: Hash + Eq + Clone> TimerWheel<K> {
    /// A wheel of `slots` slots of `tick` each (one revolution = `slots × tick`),
    /// starting at `origin`. A zero tick is raised to 1 ms, zero slots to one.
    pub fn new(origin: Instant, tick: Duration, slots: usize) -> TimerWheel<K> {
        let slots = slots.max(1);
        TimerWheel {
            origin,
            tick: tick.max(Duration::from_millis(1)),
            slots: (0..slots).map(|_| Vec::new()).collect(),
            next_tick: 0,
            live: HashMap::default(),
            next_epoch: 0,
        }
    }

    /// The tick at or after `at` (rounded up).
    fn tick_at_or_after(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.origin).as_nanos();
        let tick = self.tick.as_nanos();
        u64::try_from(since.div_ceil(tick)).unwrap_or(u64::MAX)
    }

    /// The tick that has fully begun at `now` (rounded down).
    fn tick_at_or_before(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(since / self.tick.as_nanos()).unwrap_or(u64::MAX)
    }

    fn slot_of(&self, tick: u64) -> usize {
        // The remainder is below `slots.len()`, which is a usize.
        (tick % self.slots.len() as u64) as usize
    }

    fn instant_of(&self, tick: u64) -> Instant {
        let nanos = u128::from(tick) * self.tick.as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        self.origin + Duration::from_nanos(nanos)
    }

    /// Sets `key`'s timer to `at`, replacing any earlier one. O(1).
    pub fn schedule(&mut self, key: K, at: Instant) {
        // A deadline already passed fires at the next `expire`.
        let tick = self.tick_at_or_after(at).max(self.next_tick);
        self.next_epoch += 1;
        let epoch = self.next_epoch;
        self.live.insert(key.clone(), epoch);
        let slot = self.slot_of(tick);
        if let Some(entries) = self.slots.get_mut(slot) {
            entries.push(Entry { tick, key, epoch });
        }
    }

    /// Forgets `key`'s timer. O(1); the entry itself is dropped later.
    pub fn cancel(&mut self, key: &K) {
        self.live.remove(key);
    }

    /// Whether `key` has a pending timer.
    pub fn is_scheduled(&self, key: &K) -> bool {
        self.live.contains_key(key)
    }

    /// Number of pending timers.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.live.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    fn is_current(&self, entry: &Entry<K>) -> bool {
        self.live.get(&entry.key) == Some(&entry.epoch)
    }

    /// The instant of the earliest pending timer (its tick, so at or after the deadline
    /// it was given), `None` when no timer is pending.
    ///
    /// Stale entries (cancelled or rescheduled) in the slots it looks at are dropped on
    /// the way, so each is looked at once: the service calls this on every loop turn,
    /// and a transfer reschedules on every ACK, so leaving them would make every call
    /// rescan all the reschedulings of the last timeout period.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if self.live.is_empty() {
            return None;
        }
        let slots = self.slots.len() as u64;
        // The first revolution, slot by slot: the first current entry due in it wins.
        for offset in 0..slots {
            let tick = self.next_tick + offset;
            let slot = self.slot_of(tick);
            let live = &self.live;
            let Some(entries) = self.slots.get_mut(slot) else {
                continue;
            };
            entries.retain(|e| live.get(&e.key) == Some(&e.epoch));
            if entries.iter().any(|e| e.tick == tick) {
                return Some(self.instant_of(tick));
            }
        }
        // Only timers beyond one revolution: the earliest of them.
        self.slots
            .iter()
            .flatten()
            .filter(|e| self.is_current(e))
            .map(|e| e.tick)
            .min()
            .map(|tick| self.instant_of(tick))
    }

    /// Appends to `expired` the key of every timer due at `now` (each key once, its
    /// timer removed), and drops stale entries on the way.
    pub fn expire(&mut self, now: Instant, expired: &mut Vec<K>) {
        let target = self.tick_at_or_before(now);
        if target < self.next_tick {
            return;
        }
        // Past one revolution every slot has been visited once: no need to loop more.
        let slots = self.slots.len() as u64;
        let visits = (target - self.next_tick + 1).min(slots);
        for offset in 0..visits {
            let slot = self.slot_of(self.next_tick + offset);
            let Some(entries) = self.slots.get_mut(slot) else {
                continue;
            };
            let live = &mut self.live;
            entries.retain(|entry| {
                if live.get(&entry.key) != Some(&entry.epoch) {
                    return false; // cancelled or rescheduled: drop lazily
                }
                if entry.tick <= target {
                    live.remove(&entry.key);
                    expired.push(entry.key.clone());
                    return false;
                }
                true // a later revolution
            });
        }
        self.next_tick = target + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn wheel(origin: Instant) -> TimerWheel<u32> {
        // 64 slots of 10 ms: one revolution is 640 ms.
        TimerWheel::new(origin, 10 * MS, 64)
    }

    fn expire_at(w: &mut TimerWheel<u32>, now: Instant) -> Vec<u32> {
        let mut out = Vec::new();
        w.expire(now, &mut out);
        out.sort();
        out
    }

    #[test]
    fn never_fires_early_and_rounds_up() {
        let t0 = Instant::now();
        let mut w = wheel(t0);
        w.schedule(1, t0 + 15 * MS);
        assert_eq!(w.poll_timeout(), Some(t0 + 20 * MS));
        assert!(expire_at(&mut w, t0 + 14 * MS).is_empty());
        assert!(expire_at(&mut w, t0 + 19 * MS).is_empty());
        assert_eq!(expire_at(&mut w, t0 + 20 * MS), vec![1]);
        assert!(w.is_empty());
        assert_eq!(w.poll_timeout(), None);
    }

    #[test]
    fn exact_tick_deadline_fires_on_that_tick() {
        let t0 = Instant::now();
        let mut w = wheel(t0);
        w.schedule(7, t0 + 30 * MS);
        assert!(expire_at(&mut w, t0 + 29 * MS).is_empty());
        assert_eq!(expire_at(&mut w, t0 + 30 * MS), vec![7]);
    }

    #[test]
    fn past_deadline_fires_at_the_next_expire() {
        let t0 = Instant::now();
        let mut w = wheel(t0);
        assert!(expire_at(&mut w, t0 + 100 * MS).is_empty());
        w.schedule(3, t0 + 50 * MS);
        // Ticks up to 100 ms are done: the next one begins at 110 ms.
        assert_eq!(w.poll_timeout(), Some(t0 + 110 * MS));
        assert_eq!(expire_at(&mut w, t0 + 110 * MS), vec![3]);
    }

    #[test]
    fn entries_beyond_one_revolution_wait_until_due() {
        let t0 = Instant::now();
        let mut w = wheel(t0);
        // 2 s on a 640 ms wheel: lands in a slot visited three times before it is due.
        w.schedule(1, t0 + 2000 * MS);
        w.schedule(2, t0 + 100 * MS);
        assert_eq!(w.poll_timeout(), Some(t0 + 100 * MS));
        let mut now = t0;
        let mut fired = Vec::new();
        while now < t0 + 2100 * MS {
            now += 5 * MS;
            for key in expire_at(&mut w, now) {
                fired.push((key, now - t0));
            }
            if now == t0 + 105 * MS {
                assert_eq!(w.poll_timeout(), Some(t0 + 2000 * MS));
            }
        }
        assert_eq!(fired, vec![(2, 100 * MS), (1, 2000 * MS)]);
    }

    #[test]
    fn big_jumps_in_time_expire_everything_due() {
        let t0 = Instant::now();
        let mut w = wheel(t0);
        for key in 0..200u32 {
            w.schedule(key, t0 + key * 7 * MS);
        }
        // Jump 10 revolutions: all of them are due.
        assert_eq!(expire_at(&mut w, t0 + 6400 * MS).len(), 200);
        assert!(w.is_empty());
    }

    #[test]
    fn rescheduling_replaces_and_cancel_forgets() {
        let t0 = Instant::now();
        let mut w = wheel(t0);
        w.schedule(1, t0 + 10 * MS);
        w.schedule(1, t0 + 50 * MS); // an ACK moved the deadline
        w.schedule(2, t0 + 20 * MS);
        w.cancel(&2); // the transfer ended
        assert_eq!(w.len(), 1);
        assert!(w.is_scheduled(&1) && !w.is_scheduled(&2));
        assert_eq!(w.poll_timeout(), Some(t0 + 50 * MS));
        assert!(expire_at(&mut w, t0 + 40 * MS).is_empty());
        assert_eq!(expire_at(&mut w, t0 + 50 * MS), vec![1]);
        // Nothing fires twice.
        assert!(expire_at(&mut w, t0 + 5000 * MS).is_empty());
    }

    #[test]
    fn earlier_reschedule_fires_at_the_new_time_once() {
        let t0 = Instant::now();
        let mut w = wheel(t0);
        w.schedule(1, t0 + 500 * MS);
        w.schedule(1, t0 + 20 * MS);
        assert_eq!(expire_at(&mut w, t0 + 20 * MS), vec![1]);
        assert!(expire_at(&mut w, t0 + 600 * MS).is_empty());
    }

    #[test]
    fn poll_timeout_ignores_cancelled_entries() {
        let t0 = Instant::now();
        let mut w = wheel(t0);
        w.schedule(1, t0 + 10 * MS);
        w.schedule(2, t0 + 300 * MS);
        w.cancel(&1);
        assert_eq!(w.poll_timeout(), Some(t0 + 300 * MS));
        w.cancel(&2);
        assert_eq!(w.poll_timeout(), None);
    }

    #[test]
    fn poll_timeout_drops_the_stale_entries_it_passes() {
        let t0 = Instant::now();
        let mut w = wheel(t0);
        // A transfer rescheduling its timer on every ACK, 1000 ACKs within 500 ms.
        for i in 0..1000u32 {
            w.schedule(7, t0 + (i / 2) * MS + 300 * MS);
            assert!(w.poll_timeout().is_some());
        }
        assert_eq!(w.poll_timeout(), Some(t0 + 800 * MS));
        let stored: usize = w.slots.iter().map(Vec::len).sum();
        assert_eq!(stored, 1, "stale entries kept: {stored}");
    }

    #[test]
    fn poll_timeout_is_already_past_when_due() {
        let t0 = Instant::now();
        let mut w = wheel(t0);
        w.schedule(1, t0 + 10 * MS);
        assert!(w.poll_timeout().is_some_and(|at| at <= t0 + 25 * MS));
    }

    #[test]
    fn many_keys_same_slot_and_socket_addr_keys() {
        let t0 = Instant::now();
        let mut w: TimerWheel<std::net::SocketAddr> = TimerWheel::new(t0, 50 * MS, 512);
        for port in 1000..3000u16 {
            let addr = std::net::SocketAddr::from(([10, 0, 0, 1], port));
            w.schedule(addr, t0 + Duration::from_secs(1));
        }
        let mut out = Vec::new();
        w.expire(t0 + 999 * MS, &mut out);
        assert!(out.is_empty());
        w.expire(t0 + Duration::from_secs(1), &mut out);
        assert_eq!(out.len(), 2000);
    }

    #[test]
    fn degenerate_parameters_do_not_panic() {
        let t0 = Instant::now();
        let mut w: TimerWheel<u8> = TimerWheel::new(t0, Duration::ZERO, 0);
        w.schedule(1, t0 + 3 * MS);
        // Before the origin.
        w.schedule(2, t0.checked_sub(Duration::from_secs(1)).unwrap_or(t0));
        let mut out = Vec::new();
        w.expire(t0 + 3 * MS, &mut out);
        out.sort();
        assert_eq!(out, vec![1, 2]);
    }
}
