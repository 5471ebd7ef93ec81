//! A slab of connections keyed by mio [`Token`]s that carry a generation.
//!
//! # Ground rules
//! - A token is `generation << INDEX_BITS | index`. Removing an entry bumps its slot's
//!   generation, so an event still queued for the old token (mio: "sporadic events happen")
//!   misses the new occupant of the slot instead of reaching the wrong connection.
//! - Tokens this table issues never have the top bit set: tokens `>= 1 << (usize::BITS - 1)`
//!   (see [`ConnTable::is_reserved_token`]) are free for listeners, wakers and timers.
//! - A slot whose generation is exhausted (2³¹ reuses on 64-bit) is retired rather than
//!   wrapped, so a stale token can never become valid again.
//! - No `unsafe`; lookups are O(1); removal pushes the slot on a free list.

use mio::{Registry, Token};

use crate::{Codec, Connection, Error, Transport};

const INDEX_BITS: u32 = usize::BITS / 2;
const GEN_BITS: u32 = usize::BITS / 2 - 1;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
const MAX_GEN: u32 = ((1u64 << GEN_BITS) - 1) as u32;
/// Indices are limited so that `index + 1` still fits and `MAX_INDEX` can mark "none".
const MAX_SLOTS: usize = INDEX_MASK;

/// A connection's key: slot index plus generation. Converts to and from a mio [`Token`].
///
/// ```
/// use wheelbeat_net::ConnTable;
/// let mut table = ConnTable::new();
/// let old = table.insert("first");
/// table.remove(old);
/// let new = table.insert("second"); // same slot, new generation
/// assert_eq!(old.index(), new.index());
/// assert_eq!(table.get(old.token()), None); // a stale event is ignored
/// assert_eq!(table.get(new.token()), Some(&"second"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnKey {
    index: u32,
    generation: u32,
}

impl ConnKey {
    /// The slot index (dense, small: usable to index side tables).
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// The slot's generation when this key was issued.
    pub fn generation(self) -> u32 {
        self.generation
    }

    /// The mio token for this key.
    pub fn token(self) -> Token {
        Token(((self.generation as usize) << INDEX_BITS) | self.index as usize)
    }

    /// Decodes any token; whether it names a live entry is decided by the table.
    pub fn from_token(token: Token) -> Self {
        ConnKey {
            index: (token.0 & INDEX_MASK) as u32,
            // Reserved tokens (top bit set) decode to a generation no slot ever has.
            generation: (token.0 >> INDEX_BITS) as u32,
        }
    }
}

impl From<Token> for ConnKey {
    fn from(t: Token) -> Self {
        ConnKey::from_token(t)
    }
}

impl From<ConnKey> for Token {
    fn from(k: ConnKey) -> Self {
        k.token()
    }
}

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// Connections (or anything per connection) keyed by generation-checked tokens.
///
/// All operations are O(1). A key from a removed entry never finds a later entry in the same
/// slot. See the [module docs](self).
#[derive(Debug)]
pub struct ConnTable<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for ConnTable<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> ConnTable<T> {
    /// An empty table.
    pub fn new() -> Self {
        ConnTable {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    /// An empty table with room for `n` entries before reallocating.
    pub fn with_capacity(n: usize) -> Self {
        ConnTable {
            slots: Vec::with_capacity(n),
            free: Vec::new(),
            len: 0,
        }
    }

    /// True if `token` can never be issued by a table (top bit set): use such tokens for
    /// listeners, wakers and the like.
    pub fn is_reserved_token(token: Token) -> bool {
        token.0 >> (usize::BITS - 1) == 1
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are no live entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Inserts `value`, returning its key.
    ///
    /// # Panics
    /// If the table already has 2³² − 1 slots (2¹⁶ − 1 on 32-bit targets).
    pub fn insert(&mut self, value: T) -> ConnKey {
        self.insert_with(|_| value)
    }

    /// Inserts the value `make` builds from the key it will have (to register a socket with
    /// the right token before storing it).
    ///
    /// # Panics
    /// As [`insert`](Self::insert).
    pub fn insert_with(&mut self, make: impl FnOnce(ConnKey) -> T) -> ConnKey {
        let index = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                assert!(self.slots.len() < MAX_SLOTS, "connection table full");
                self.slots.push(Slot {
                    generation: 0,
                    value: None,
                });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[index];
        let key = ConnKey {
            index: index as u32,
            generation: slot.generation,
        };
        slot.value = Some(make(key));
        self.len += 1;
        key
    }

    fn slot(&self, key: ConnKey) -> Option<&Slot<T>> {
        self.slots
            .get(key.index as usize)
            .filter(|s| s.generation == key.generation)
    }

    /// The entry for `key` (a [`ConnKey`] or a [`Token`]), if it is still live.
    pub fn get(&self, key: impl Into<ConnKey>) -> Option<&T> {
        self.slot(key.into())?.value.as_ref()
    }

    /// The entry for `key`, mutably, if it is still live.
    pub fn get_mut(&mut self, key: impl Into<ConnKey>) -> Option<&mut T> {
        let key = key.into();
        self.slots
            .get_mut(key.index as usize)
            .filter(|s| s.generation == key.generation)?
            .value
            .as_mut()
    }

    /// True if `key` names a live entry.
    pub fn contains(&self, key: impl Into<ConnKey>) -> bool {
        self.get(key).is_some()
    }

    /// Removes and returns the entry for `key`; `None` (and no change) for a stale key.
    pub fn remove(&mut self, key: impl Into<ConnKey>) -> Option<T> {
        let key = key.into();
        let slot = self
            .slots
            .get_mut(key.index as usize)
            .filter(|s| s.generation == key.generation)?;
        let value = slot.value.take()?;
        self.len -= 1;
        if slot.generation < MAX_GEN {
            slot.generation += 1;
            self.free.push(key.index);
        }
        // else: retired; its generation cannot advance without wrapping onto stale keys.
        Some(value)
    }

    /// Live entries with their keys, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (ConnKey, &T)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let key = ConnKey {
                index: i as u32,
                generation: s.generation,
            };
            s.value.as_ref().map(|v| (key, v))
        })
    }

    /// Live entries with their keys, mutably, in slot order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (ConnKey, &mut T)> + '_ {
        self.slots.iter_mut().enumerate().filter_map(|(i, s)| {
            let key = ConnKey {
                index: i as u32,
                generation: s.generation,
            };
            s.value.as_mut().map(|v| (key, v))
        })
    }

    /// The keys of all live entries (collected, so the table can be changed while walking).
    pub fn keys(&self) -> Vec<ConnKey> {
        self.iter().map(|(k, _)| k).collect()
    }
}

impl<C: Codec, S: Transport> ConnTable<Connection<C, S>> {
    /// Inserts `conn` and registers its socket with `registry` under the new key's token.
    /// If registering fails the connection is removed again (closing its socket) and the
    /// error returned, so the table never holds a connection the loop would not hear from.
    pub fn insert_registered(
        &mut self,
        registry: &Registry,
        conn: Connection<C, S>,
    ) -> Result<ConnKey, Error> {
        let mut registered = Ok(());
        let key = self.insert_with(|key| {
            let mut conn = conn;
            registered = conn.sync_interest(registry, key.token());
            conn
        });
        match registered {
            Ok(()) => Ok(key),
            Err(e) => {
                self.remove(key);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_token_after_close_and_slot_reuse_misses_the_new_connection() {
        let mut t = ConnTable::new();
        let a = t.insert(1);
        assert_eq!(t.remove(a.token()), Some(1));
        let b = t.insert(2);
        assert_eq!(a.index(), b.index());
        assert_ne!(a.token(), b.token());
        assert_eq!(t.get(a.token()), None);
        assert_eq!(t.get_mut(a), None);
        assert_eq!(t.remove(a), None);
        assert_eq!(t.get(b), Some(&2));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn issued_tokens_never_collide_with_reserved_ones() {
        let mut t = ConnTable::new();
        for _ in 0..1000 {
            let k = t.insert(());
            assert!(!ConnTable::<()>::is_reserved_token(k.token()));
            t.remove(k);
        }
        let reserved = Token(usize::MAX);
        assert!(ConnTable::<()>::is_reserved_token(reserved));
        t.insert(());
        assert_eq!(t.get(reserved), None);
    }

    #[test]
    fn exhausted_slot_is_retired_not_wrapped() {
        let mut t = ConnTable::new();
        let k = t.insert(0u8);
        t.slots[k.index()].generation = MAX_GEN;
        let k = ConnKey {
            index: k.index,
            generation: MAX_GEN,
        };
        t.remove(k);
        let fresh = t.insert(1u8);
        assert_ne!(fresh.index(), k.index());
        assert_eq!(t.get(k), None);
    }

    /// Guards the README's figure: a table slot costs the entry plus at most 8 bytes.
    #[test]
    fn slot_adds_at_most_eight_bytes_to_a_connection() {
        let conn = std::mem::size_of::<crate::Connection>();
        let slot = std::mem::size_of::<Slot<crate::Connection>>();
        eprintln!("Connection {conn} bytes, its table slot {slot}");
        assert!(slot <= conn + 8);
    }

    #[test]
    fn key_round_trips_through_token() {
        let k = ConnKey {
            index: 12345,
            generation: 77,
        };
        assert_eq!(ConnKey::from_token(k.token()), k);
    }
}
