//! Small-integer id allocation with reuse: the lowest free id is handed
//! out first, so ids (irqfds, timers, level sources) and MSI GSIs stay
//! dense however many are created and freed over a VM's life.

use std::collections::BTreeSet;

/// Allocates ids in `[first, limit]`, lowest free first.
#[derive(Debug, Clone)]
pub struct IdAllocator {
    first: u32,
    limit: u32,
    /// One past the highest id ever handed out.
    next: u32,
    /// Freed ids below `next`.
    free: BTreeSet<u32>,
}

impl IdAllocator {
    /// Ids from `first` to `limit` inclusive.
    pub fn new(first: u32, limit: u32) -> Self {
        IdAllocator { first, limit, next: first, free: BTreeSet::new() }
    }

    /// The lowest free id, or None when all are in use.
    pub fn allocate(&mut self) -> Option<u32> {
        if let Some(id) = self.free.pop_first() {
            return Some(id);
        }
        if self.next > self.limit {
            return None;
        }
        self.next += 1;
        Some(self.next - 1)
    }

    /// Take a specific id out of the pool (e.g. a GSI used directly).
    /// Returns false if it was already in use or out of range.
    pub fn reserve(&mut self, id: u32) -> bool {
        if id < self.first || id > self.limit {
            return false;
        }
        if id < self.next {
            return self.free.remove(&id);
        }
        self.free.extend(self.next..id);
        self.next = id + 1;
        true
    }

    /// Return `id` to the pool; false if it was not allocated.
    pub fn release(&mut self, id: u32) -> bool {
        if id < self.first || id >= self.next || self.free.contains(&id) {
            return false;
        }
        if id + 1 == self.next {
            self.next = id;
            // Keep `free` strictly below `next`.
            while self.next > self.first && self.free.remove(&(self.next - 1)) {
                self.next -= 1;
            }
        } else {
            self.free.insert(id);
        }
        true
    }

    /// Ids in use.
    pub fn in_use(&self) -> usize {
        (self.next - self.first) as usize - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_first_and_reuse() {
        let mut a = IdAllocator::new(1, 4);
        assert_eq!([a.allocate(), a.allocate(), a.allocate()], [Some(1), Some(2), Some(3)]);
        assert!(a.release(2));
        assert!(!a.release(2), "double release");
        assert!(!a.release(9), "never allocated");
        assert_eq!(a.allocate(), Some(2));
        assert_eq!(a.allocate(), Some(4));
        assert_eq!(a.allocate(), None, "exhausted");
        for id in 1..=4 {
            assert!(a.release(id));
        }
        assert_eq!(a.in_use(), 0);
        assert_eq!(a.allocate(), Some(1));
    }

    #[test]
    fn reserve_skips_ids() {
        let mut a = IdAllocator::new(24, 30);
        assert!(a.reserve(26));
        assert!(!a.reserve(26));
        assert!(!a.reserve(31));
        assert_eq!([a.allocate(), a.allocate(), a.allocate()], [Some(24), Some(25), Some(27)]);
        assert!(a.release(26));
        assert_eq!(a.allocate(), Some(26));
        assert_eq!(a.in_use(), 4);
    }

    #[test]
    fn churn_stays_dense() {
        let mut a = IdAllocator::new(1, 1000);
        for _ in 0..10_000 {
            let x = a.allocate().unwrap();
            let y = a.allocate().unwrap();
            assert!(x <= 2 && y <= 2);
            a.release(x);
            a.release(y);
        }
    }
}
