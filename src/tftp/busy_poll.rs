//! When the TFTP loop polls briefly before it sleeps (`[tftp] busy_poll`).
//!
//! A lock-step transfer sends one block and waits for its ACK. When the client
//! answers within microseconds (a fast LAN, a virtual network), most of that wait is
//! the cost of putting the thread to sleep and waking it again, which on a virtual
//! machine can be tens of microseconds: the same order as the whole round trip.
//! Polling without sleeping for a short budget catches such an ACK as it arrives;
//! the kernel's own `busy_poll` does this for sockets, and VM guests' haltpoll
//! idle governor for the CPU.
//!
//! Spinning costs CPU when the answer does not come within the budget (a PXE ROM on
//! a slow link). So this policy only spins while transfers are in flight, never past
//! the next timer, and watches whether spinning pays: after every `SAMPLE` spins, if
//! fewer than half caught an event, it stops spinning for `PAUSE` and then tries
//! again. A server whose clients are slow thus spins for at most `SAMPLE × budget`
//! per `PAUSE` (64 × 50 µs = 3.2 ms a second, 0.3% of a core).
//!
//! The policy is pure (the caller passes `now` and reports each spin's outcome);
//! [`BusyPoll::spin`] applies it to the service's mio poll.

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Poll};

use crate::service_loop;

/// Spins per verdict on whether spinning pays.
pub const SAMPLE: u32 = 64;
/// How long spinning stays off after a sample where it did not pay.
pub const PAUSE: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct BusyPoll {
    budget: Duration,
    spins: u32,
    hits: u32,
    paused_until: Option<Instant>,
}

impl BusyPoll {
    /// `budget`: the longest spin before sleeping; zero turns spinning off.
    pub fn new(budget: Duration) -> BusyPoll {
        BusyPoll {
            budget,
            spins: 0,
            hits: 0,
            paused_until: None,
        }
    }

    /// How long to poll without sleeping before a blocking wait whose timeout is
    /// `timeout` (`None`: no timer pending). Zero: go straight to sleep.
    pub fn spin_for(
        &mut self,
        now: Instant,
        transfers_in_flight: bool,
        timeout: Option<Duration>,
    ) -> Duration {
        if self.budget.is_zero() || !transfers_in_flight {
            return Duration::ZERO;
        }
        if let Some(until) = self.paused_until {
            if now < until {
                return Duration::ZERO;
            }
            self.paused_until = None;
        }
        timeout.map_or(self.budget, |t| t.min(self.budget))
    }

    /// Reports how a spin that `spin_for` asked for ended: `caught` when an event
    /// arrived before the budget ran out.
    pub fn record(&mut self, now: Instant, caught: bool) {
        self.spins += 1;
        if caught {
            self.hits += 1;
        }
        if self.spins < SAMPLE {
            return;
        }
        if self.hits * 2 < self.spins {
            self.paused_until = Some(now + PAUSE);
        }
        self.spins = 0;
        self.hits = 0;
    }

    /// Polls `poll` without sleeping for as long as the policy allows, from `start`;
    /// true when events arrived (they are in `events`), false to go on to a sleeping
    /// poll.
    pub fn spin(
        &mut self,
        poll: &mut Poll,
        events: &mut Events,
        start: Instant,
        transfers_in_flight: bool,
        timeout: Option<Duration>,
    ) -> io::Result<bool> {
        let budget = self.spin_for(start, transfers_in_flight, timeout);
        if budget.is_zero() {
            return Ok(false);
        }
        loop {
            service_loop::poll(poll, events, Some(Duration::ZERO))?;
            let now = Instant::now();
            let caught = !events.is_empty();
            if caught || now.duration_since(start) >= budget {
                self.record(now, caught);
                return Ok(caught);
            }
            std::hint::spin_loop();
        }
    }

    /// Whether spinning is off for now because it has not been paying.
    #[cfg(test)]
    pub fn is_paused(&self, now: Instant) -> bool {
        self.paused_until.is_some_and(|until| now < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: Duration = Duration::from_micros(50);

    fn sample(policy: &mut BusyPoll, now: Instant, hits: u32) {
        for i in 0..SAMPLE {
            assert_eq!(policy.spin_for(now, true, None), BUDGET, "spin {i}");
            policy.record(now, i < hits);
        }
    }

    #[test]
    fn zero_budget_never_spins() {
        let now = Instant::now();
        let mut policy = BusyPoll::new(Duration::ZERO);
        assert_eq!(policy.spin_for(now, true, None), Duration::ZERO);
    }

    #[test]
    fn an_idle_server_sleeps_at_once() {
        let now = Instant::now();
        let mut policy = BusyPoll::new(BUDGET);
        assert_eq!(policy.spin_for(now, false, None), Duration::ZERO);
    }

    #[test]
    fn never_spins_past_the_next_timer() {
        let now = Instant::now();
        let mut policy = BusyPoll::new(BUDGET);
        let soon = Duration::from_micros(20);
        assert_eq!(policy.spin_for(now, true, Some(soon)), soon);
        assert_eq!(
            policy.spin_for(now, true, Some(Duration::ZERO)),
            Duration::ZERO
        );
        assert_eq!(
            policy.spin_for(now, true, Some(Duration::from_secs(1))),
            BUDGET
        );
    }

    #[test]
    fn spinning_that_pays_goes_on() {
        let now = Instant::now();
        let mut policy = BusyPoll::new(BUDGET);
        for _ in 0..10 {
            sample(&mut policy, now, SAMPLE / 2);
        }
        assert!(!policy.is_paused(now));
        assert_eq!(policy.spin_for(now, true, None), BUDGET);
    }

    #[test]
    fn spinning_that_does_not_pay_pauses_then_tries_again() {
        let start = Instant::now();
        let mut policy = BusyPoll::new(BUDGET);
        sample(&mut policy, start, SAMPLE / 2 - 1);
        assert!(policy.is_paused(start));
        assert_eq!(policy.spin_for(start, true, None), Duration::ZERO);
        let almost = start + PAUSE - Duration::from_millis(1);
        assert_eq!(policy.spin_for(almost, true, None), Duration::ZERO);
        // After the pause a fresh sample decides again.
        let later = start + PAUSE;
        sample(&mut policy, later, SAMPLE);
        assert!(!policy.is_paused(later));
    }

    #[test]
    fn slow_clients_cost_at_most_one_sample_of_spinning_per_pause() {
        // Every spin misses for ten simulated seconds, one loop turn per millisecond.
        let start = Instant::now();
        let mut policy = BusyPoll::new(BUDGET);
        let mut spent = Duration::ZERO;
        for ms in 0..10_000 {
            let now = start + Duration::from_millis(ms);
            let spin = policy.spin_for(now, true, None);
            if !spin.is_zero() {
                spent += spin;
                policy.record(now, false);
            }
        }
        assert!(spent <= BUDGET * SAMPLE * 10, "{spent:?}");
        assert!(spent >= BUDGET * SAMPLE * 9, "{spent:?}");
    }
}
