//! Lines said once per client. Firmware repeats a request every few seconds until it
//! is answered, and a warning or a refusal logged for each repetition would bury
//! everything else in the log. What has been said is remembered for as many clients
//! as the endpoint remembers ([`RecentMap`]'s bound); a client forgotten since may
//! hear a line again.

use std::hash::{BuildHasher, RandomState};

use super::recent::RecentMap;
use crate::types::MacAddr;

#[derive(Debug)]
pub struct SaidOnce {
    /// The hash of each (client, line) said.
    said: RecentMap<u64, ()>,
    hasher: RandomState,
}

impl SaidOnce {
    /// Remembers the lines said to at most `remembered` clients' worth of keys.
    pub fn new(remembered: usize) -> SaidOnce {
        SaidOnce {
            said: RecentMap::new(remembered),
            hasher: RandomState::new(),
        }
    }

    /// True the first time `line` is said about `mac`.
    pub fn first_time(&mut self, mac: MacAddr, line: &str) -> bool {
        let key = self.hasher.hash_one((mac, line));
        self.said.insert(key, ()).is_none()
    }

    /// How many (client, line) pairs are remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.said.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_said_once_per_client_and_other_lines_and_clients_still_are() {
        let mut said = SaidOnce::new(100);
        let (a, b) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]));
        assert!(said.first_time(a, "no boot file"));
        assert!(!said.first_time(a, "no boot file"));
        assert!(said.first_time(a, "refused"));
        assert!(said.first_time(b, "no boot file"));
        assert_eq!(said.len(), 3);
    }

    #[test]
    fn memory_stays_bounded_and_a_forgotten_client_hears_the_line_again() {
        let mut said = SaidOnce::new(10);
        let first = MacAddr([2, 0, 0, 0, 0, 0]);
        assert!(said.first_time(first, "line"));
        for n in 1..=50u8 {
            said.first_time(MacAddr([2, 0, 0, 0, 1, n]), "line");
            assert!(said.len() <= 10);
        }
        assert!(said.first_time(first, "line"));
    }
}
