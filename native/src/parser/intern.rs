//! Device ids to small integers (record keys, groups), reused across bodies so a call allocates nothing here.
//!
//! Separate from the sink because it is a hash table of its own: open addressing over the ids already kept in
//! the output's key text, so an id's bytes are stored once and no per-device allocation is made.

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
        // A table grown by one huge body is not kept for every small one after it.
        if self.slots.len() > 1 << 16 {
            self.slots = Vec::new();
        }
    }

    /// The id of `device`, adding it to `text`/`ends` (the output's keys) when it is new.
    #[inline]
    pub(super) fn intern(&mut self, device: &[u8], text: &mut Vec<u8>, ends: &mut Vec<u32>) -> u32 {
        if !ends.is_empty() && key(text, ends, self.last) == device {
            return self.last;
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
            if key(text, ends, s - 1) == device {
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
        let mask = size - 1;
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
