//! Memory of recent clients with a fixed bound: a map that holds at most `limit`
//! keys and forgets the least recently used first, so a flood of made-up MACs
//! cannot make bootd grow.
//!
//! Two generations: new and used keys go to the young one; when it is full the
//! old one is dropped whole and the young one takes its place. A key survives as
//! long as it is used at least once per half of the limit's worth of other new
//! keys; every operation costs O(1) and nothing is scanned.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

#[derive(Debug, Clone)]
pub struct RecentMap<K, V> {
    young: HashMap<K, V>,
    old: HashMap<K, V>,
    /// Keys per generation: half the limit.
    generation: usize,
}

impl<K: Eq + Hash, V> RecentMap<K, V> {
    /// A map of at most `limit` keys (at least 2).
    pub fn new(limit: usize) -> RecentMap<K, V> {
        RecentMap {
            young: HashMap::new(),
            old: HashMap::new(),
            generation: (limit / 2).max(1),
        }
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.young.get(key).or_else(|| self.old.get(key))
    }

    /// The value of `key`, which counts as used.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V>
    where
        K: Clone,
    {
        if !self.young.contains_key(key) {
            let value = self.old.remove(key)?;
            self.insert(key.clone(), value);
        }
        self.young.get_mut(key)
    }

    /// Sets `key`, which counts as used; returns its previous value.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let previous = self.old.remove(&key);
        if self.young.len() >= self.generation && !self.young.contains_key(&key) {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, value).or(previous)
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.young.remove(key).or_else(|| self.old.remove(key))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_holds_more_than_its_limit_and_keeps_what_is_used() {
        let mut map = RecentMap::new(100);
        map.insert(u32::MAX, "kept");
        for n in 0..10_000 {
            assert_eq!(map.insert(n, "flood"), None);
            assert!(map.len() <= 100, "{} keys", map.len());
            if n % 40 == 0 {
                assert_eq!(map.get_mut(&u32::MAX).copied(), Some("kept"));
            }
        }
        assert_eq!(map.get(&u32::MAX), Some(&"kept"));
        // The least recently used went first.
        assert_eq!(map.get(&0), None);
        assert_eq!(map.get(&9_999), Some(&"flood"));
    }

    #[test]
    fn insert_returns_the_previous_value_from_either_generation() {
        let mut map = RecentMap::new(4);
        map.insert(1, 'a');
        map.insert(2, 'b');
        map.insert(3, 'c'); // 1 and 2 are now the old generation
        assert_eq!(map.insert(1, 'z'), Some('a'));
        assert_eq!(map.remove(&2), Some('b'));
        assert_eq!(map.remove(&2), None);
        assert_eq!((map.len(), map.is_empty()), (2, false));
    }
}
