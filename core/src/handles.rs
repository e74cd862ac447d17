//! Opaque handle table: FFI callers hold a `u64`, never a pointer.
//!
//! A destroyed or made-up handle is a [`Code::BadHandle`] error, never a
//! dangling pointer. Handles are never reused within a process.

use crate::error::{Code, Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A table of `Arc<T>` keyed by never-reused non-zero handles.
pub struct HandleTable<T> {
    inner: Mutex<(u64, HashMap<u64, Arc<T>>)>,
}

impl<T> Default for HandleTable<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> HandleTable<T> {
    /// An empty table.
    pub fn new() -> Self {
        HandleTable { inner: Mutex::new((0, HashMap::new())) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, HashMap<u64, Arc<T>>)> {
        // A poisoned lock only means another thread panicked while holding
        // it; the map itself is always consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Insert and return the new handle.
    pub fn insert(&self, value: T) -> u64 {
        let mut g = self.lock();
        g.0 += 1;
        let h = g.0;
        g.1.insert(h, Arc::new(value));
        h
    }

    /// Look a handle up.
    pub fn get(&self, handle: u64) -> Result<Arc<T>> {
        self.lock()
            .1
            .get(&handle)
            .cloned()
            .ok_or_else(|| Error::new(Code::BadHandle, format!("unknown or closed handle {handle}")))
    }

    /// Remove a handle; the value lives on while other `Arc`s hold it.
    pub fn remove(&self, handle: u64) -> Result<Arc<T>> {
        self.lock()
            .1
            .remove(&handle)
            .ok_or_else(|| Error::new(Code::BadHandle, format!("unknown or closed handle {handle}")))
    }

    /// Number of live handles.
    pub fn len(&self) -> usize {
        self.lock().1.len()
    }

    /// True when no handle is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_unique_and_checked() {
        let t = HandleTable::new();
        let a = t.insert(1u32);
        let b = t.insert(2u32);
        assert_ne!(a, b);
        assert_eq!(*t.get(a).unwrap(), 1);
        assert_eq!(t.get(0).unwrap_err().code, Code::BadHandle);
        assert_eq!(t.get(999).unwrap_err().code, Code::BadHandle);
        t.remove(a).unwrap();
        assert_eq!(t.get(a).unwrap_err().code, Code::BadHandle);
        assert_eq!(t.remove(a).unwrap_err().code, Code::BadHandle);
        let c = t.insert(3u32);
        assert!(c > b, "handles are never reused");
        assert_eq!(t.len(), 2);
    }
}
