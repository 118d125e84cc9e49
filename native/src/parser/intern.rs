//! Device ids to small integers (record keys, groups), reused across bodies so a call allocates nothing here.
//!
//! Separate from the sink because it is a hash table of its own: open addressing over the ids already kept in
//! the output's key text, so an id's bytes are stored once and no per-device allocation is made.

use super::bytes::eq;
use std::hash::{BuildHasher, RandomState};

#[derive(Default)]
pub(super) struct Interner {
    /// SipHash with random keys, as `HashMap`'s: ids come from clients, so a fixed fast hash would invite
    /// collisions.
    hasher: RandomState,
    /// Linear probing; a slot holds id + 1, 0 is empty. A power of two, more than twice the ids.
    slots: Vec<u32>,
    /// The slots in use, to empty only those between bodies.
    used: Vec<u32>,
    /// The id of the previous event: a device's own batch repeats one id, which then skips the hash.
    last: u32,
    /// Direct-mapped cache in front of the table, by a cheap hash of the id's first and last 8 bytes: slot holds
    /// id + 1. An entry is only a guess, confirmed by comparing the bytes, so it need not be emptied between
    /// bodies and colliding ids cost one compare before the SipHash path (SipHash was ~5% of a 500-event parse).
    cache: Vec<u32>,
    /// Whether this body's ids are in `slots`: the first `LINEAR` are only compared one by one, so a small
    /// body (a single event, one device's batch) never hashes.
    hashed: bool,
}

const LINEAR: usize = 8;

const CACHE_SLOTS: usize = 256;

/// Cache slot of `d`: not collision-resistant, and need not be (see `Interner::cache`).
#[inline]
fn quick_slot(d: &[u8]) -> usize {
    let n = d.len();
    let mut a = [0u8; 8];
    let mut z = [0u8; 8];
    if n >= 8 {
        a.copy_from_slice(&d[..8]);
        z.copy_from_slice(&d[n - 8..]);
    } else {
        a[..n].copy_from_slice(d);
    }
    let h = (u64::from_le_bytes(a) ^ u64::from_le_bytes(z).rotate_left(31) ^ n as u64)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 56) as usize
}

#[inline]
fn key<'k>(text: &'k [u8], ends: &[u32], id: u32) -> &'k [u8] {
    let i = id as usize;
    let a = if i == 0 { 0 } else { ends[i - 1] as usize };
    &text[a..ends[i] as usize]
}

impl Interner {
    pub(super) fn reset(&mut self) {
        for &s in &self.used {
            self.slots[s as usize] = 0;
        }
        self.used.clear();
        self.last = 0;
        self.hashed = false;
        // A table grown by one huge body is not kept for every small one after it.
        if self.slots.len() > 1 << 16 {
            self.slots = Vec::new();
        }
    }

    /// The id of `device`, adding it to `text`/`ends` (the output's keys) when it is new.
    #[inline]
    pub(super) fn intern(&mut self, device: &[u8], text: &mut Vec<u8>, ends: &mut Vec<u32>) -> u32 {
        if !ends.is_empty() && eq(key(text, ends, self.last), device) {
            return self.last;
        }
        if self.cache.len() != CACHE_SLOTS {
            self.cache = vec![0; CACHE_SLOTS];
        }
        let c = quick_slot(device);
        let guess = self.cache[c];
        if guess != 0 && (guess as usize) <= ends.len() && eq(key(text, ends, guess - 1), device) {
            self.last = guess - 1;
            return guess - 1;
        }
        let id = self.intern_table(device, text, ends);
        self.cache[c] = id + 1;
        id
    }

    /// `intern` through the hash table.
    fn intern_table(&mut self, device: &[u8], text: &mut Vec<u8>, ends: &mut Vec<u32>) -> u32 {
        if !self.hashed {
            let n = ends.len() as u32;
            if let Some(id) = (0..n).find(|&id| eq(key(text, ends, id), device)) {
                self.last = id;
                return id;
            }
            if ends.len() < LINEAR {
                text.extend_from_slice(device);
                ends.push(text.len() as u32);
                self.last = n;
                return n;
            }
            // The table's slots are all empty here (`reset` emptied the ones in use).
            self.hashed = true;
            if self.slots.len() < 16 {
                self.slots = vec![0; 16];
            }
            self.insert_all(text, ends);
        }
        if (ends.len() + 1) * 2 > self.slots.len() {
            self.grow(text, ends);
        }
        let mask = self.slots.len() - 1;
        let mut i = self.hasher.hash_one(device) as usize & mask;
        loop {
            let s = self.slots[i];
            if s == 0 {
                let id = ends.len() as u32;
                text.extend_from_slice(device);
                ends.push(text.len() as u32);
                self.slots[i] = id + 1;
                self.used.push(i as u32);
                self.last = id;
                return id;
            }
            if eq(key(text, ends, s - 1), device) {
                self.last = s - 1;
                return s - 1;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self, text: &[u8], ends: &[u32]) {
        let size = (self.slots.len() * 2).max(16);
        self.slots.clear();
        self.slots.resize(size, 0);
        self.used.clear();
        self.insert_all(text, ends);
    }

    /// Puts every id into the table, whose slots must be empty.
    fn insert_all(&mut self, text: &[u8], ends: &[u32]) {
        let mask = self.slots.len() - 1;
        for id in 0..ends.len() as u32 {
            let mut i = self.hasher.hash_one(key(text, ends, id)) as usize & mask;
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = id + 1;
            self.used.push(i as u32);
        }
    }
}
