//! Which guest I/O-port and MMIO ranges the core handles itself and which
//! it forwards to TypeScript plugins.

use crate::error::{Error, Result};

/// Address space of a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Space {
    /// x86 I/O ports.
    Pio = 0,
    /// Guest-physical MMIO.
    Mmio = 1,
}

impl Space {
    /// Decode the FFI value.
    pub fn from_u32(v: u32) -> Result<Space> {
        match v {
            0 => Ok(Space::Pio),
            1 => Ok(Space::Mmio),
            _ => Err(Error::invalid(format!("bad address space {v}"))),
        }
    }
}

/// What the core does with an access in a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Return from `run()` so a TypeScript plugin handles it; `region` is
    /// the caller's tag, written into the exit record.
    Forward {
        /// Caller's region tag.
        region: u32,
    },
    /// Handle in the Rust fast path: writes are swallowed, reads return the
    /// low bytes of `read_value` (little-endian).
    Ignore {
        /// Value returned by reads.
        read_value: u64,
    },
}

/// One registered range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// First address.
    pub base: u64,
    /// Length in bytes (> 0).
    pub len: u64,
    /// What to do.
    pub action: Action,
}

/// Non-overlapping ranges of one space, sorted by base.
#[derive(Debug, Default, Clone)]
pub struct RangeTable {
    pio: Vec<Entry>,
    mmio: Vec<Entry>,
}

impl RangeTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn list(&self, space: Space) -> &Vec<Entry> {
        match space {
            Space::Pio => &self.pio,
            Space::Mmio => &self.mmio,
        }
    }

    fn list_mut(&mut self, space: Space) -> &mut Vec<Entry> {
        match space {
            Space::Pio => &mut self.pio,
            Space::Mmio => &mut self.mmio,
        }
    }

    /// Add a range; overlapping an existing one is an error.
    pub fn add(&mut self, space: Space, base: u64, len: u64, action: Action) -> Result<()> {
        let limit = match space {
            Space::Pio => 0x1_0000u64,
            Space::Mmio => 1u64 << 52,
        };
        let end = base.checked_add(len).filter(|&e| len > 0 && e <= limit).ok_or_else(|| {
            Error::invalid(format!("range {base:#x}+{len:#x} is empty or outside the {space:?} space"))
        })?;
        let list = self.list_mut(space);
        let idx = list.partition_point(|e| e.base < base);
        let overlaps_prev = idx > 0 && list[idx - 1].base + list[idx - 1].len > base;
        let overlaps_next = idx < list.len() && list[idx].base < end;
        if overlaps_prev || overlaps_next {
            return Err(Error::invalid(format!("range {base:#x}+{len:#x} overlaps a registered {space:?} range")));
        }
        list.insert(idx, Entry { base, len, action });
        Ok(())
    }

    /// Remove the range starting at `base`.
    pub fn remove(&mut self, space: Space, base: u64) -> Result<Entry> {
        let list = self.list_mut(space);
        match list.binary_search_by_key(&base, |e| e.base) {
            Ok(i) => Ok(list.remove(i)),
            Err(_) => Err(Error::invalid(format!("no {space:?} range starts at {base:#x}"))),
        }
    }

    /// The entry an access `[addr, addr + size)` belongs to, if any. Port
    /// I/O is decoded by its first port, as on the ISA bus (a 4-byte `out`
    /// to a 1-port device reaches that device, which sees the width); an
    /// MMIO access must lie wholly inside the range.
    #[inline]
    pub fn lookup(&self, space: Space, addr: u64, size: u64) -> Option<&Entry> {
        let size = if space == Space::Pio { 1 } else { size };
        let list = self.list(space);
        let idx = list.partition_point(|e| e.base <= addr);
        if idx == 0 {
            return None;
        }
        let e = &list[idx - 1];
        let end = addr.checked_add(size)?;
        (end <= e.base + e.len).then_some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_lookup_remove() {
        let mut t = RangeTable::new();
        t.add(Space::Pio, 0x3f8, 8, Action::Forward { region: 0 }).unwrap();
        t.add(Space::Pio, 0x80, 1, Action::Ignore { read_value: 0xff }).unwrap();
        t.add(Space::Mmio, 0xfec0_0000, 0x100, Action::Forward { region: 0 }).unwrap();
        assert_eq!(t.lookup(Space::Pio, 0x3f8, 1).unwrap().base, 0x3f8);
        assert_eq!(t.lookup(Space::Pio, 0x3ff, 1).unwrap().base, 0x3f8);
        assert_eq!(t.lookup(Space::Pio, 0x3ff, 4).unwrap().base, 0x3f8, "ports decode by first port");
        assert!(t.lookup(Space::Mmio, 0xfec0_00fe, 4).is_none(), "straddling MMIO access is unclaimed");
        assert!(t.lookup(Space::Pio, 0x400, 1).is_none());
        assert!(t.lookup(Space::Pio, 0x3f7, 1).is_none());
        assert!(t.lookup(Space::Mmio, 0x3f8, 1).is_none(), "spaces are separate");
        assert_eq!(t.lookup(Space::Pio, 0x80, 1).unwrap().action, Action::Ignore { read_value: 0xff });
        t.remove(Space::Pio, 0x3f8).unwrap();
        assert!(t.lookup(Space::Pio, 0x3f8, 1).is_none());
        assert!(t.remove(Space::Pio, 0x3f8).is_err());
    }

    #[test]
    fn rejects_overlap_and_bad_ranges() {
        let mut t = RangeTable::new();
        t.add(Space::Pio, 0x100, 0x10, Action::Forward { region: 0 }).unwrap();
        for (b, l) in [(0x100, 1), (0xff, 2), (0x10f, 1), (0xf0, 0x100)] {
            assert!(t.add(Space::Pio, b, l, Action::Forward { region: 0 }).is_err(), "{b:#x}+{l}");
        }
        t.add(Space::Pio, 0x110, 1, Action::Forward { region: 0 }).unwrap();
        t.add(Space::Pio, 0xff, 1, Action::Forward { region: 0 }).unwrap();
        assert!(t.add(Space::Pio, 0, 0, Action::Forward { region: 0 }).is_err());
        assert!(t.add(Space::Pio, 0xffff, 2, Action::Forward { region: 0 }).is_err());
        assert!(t.add(Space::Mmio, u64::MAX, 2, Action::Forward { region: 0 }).is_err());
    }
}
