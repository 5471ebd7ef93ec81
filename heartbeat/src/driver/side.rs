//! [`SideTable`]: what the driver keeps beside the endpoint's connection table, per key (the
//! sockets; a WebSocket loop's sessions).
//!
//! # Ground rules
//! - The endpoint issues the keys; a side table only mirrors them, at the key's index.
//! - Each entry stores its whole key, so a stale key (a generation that has moved on, or a
//!   token of a connection already gone) misses instead of reaching the slot's new occupant.

use wheelbeat_net::ConnKey;

/// Values indexed by the endpoint's [`ConnKey`]s, generation-checked.
pub(super) struct SideTable<T> {
    slots: Vec<Option<(ConnKey, T)>>,
}

impl<T> Default for SideTable<T> {
    fn default() -> Self {
        SideTable { slots: Vec::new() }
    }
}

impl<T> SideTable<T> {
    /// Puts `value` at `key` (replacing whatever held its index).
    pub(super) fn insert(&mut self, key: ConnKey, value: T) {
        let i = key.index();
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        self.slots[i] = Some((key, value));
    }

    pub(super) fn get(&self, key: ConnKey) -> Option<&T> {
        match self.slots.get(key.index()) {
            Some(Some((k, v))) if *k == key => Some(v),
            _ => None,
        }
    }

    pub(super) fn get_mut(&mut self, key: ConnKey) -> Option<&mut T> {
        match self.slots.get_mut(key.index()) {
            Some(Some((k, v))) if *k == key => Some(v),
            _ => None,
        }
    }

    pub(super) fn remove(&mut self, key: ConnKey) -> Option<T> {
        let slot = self.slots.get_mut(key.index())?;
        match slot {
            Some((k, _)) if *k == key => slot.take().map(|(_, v)| v),
            _ => None,
        }
    }
}
