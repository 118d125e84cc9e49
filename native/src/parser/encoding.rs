//! What the parser produces: each valid event written in its canonical form, the events gathered into Kafka
//! records (one per event, or one per device), the rejected events' byte ranges for the dead-letter queue, and
//! the failed result of a body that cannot be parsed.
//!
//! Separate because it is the output side: the record layout handed to the binding and the canonical JSON the
//! consumers read are decided here, whatever the input looked like.

use super::bytes::{all_in, eq, put, NAME};
use super::events::Entry;
use super::intern::Interner;
use super::numbers::{parse_f64, write_js_number, write_number_text};
use super::scanner::{decode_append, Num, Val};

const MAX_METRIC_NAME: usize = 64;
const METRICS_COUNT: &str = "metrics: expected 1 to 64 entries";
const METRICS_NAME: &str = "metrics: invalid name (expected 1-64 characters of [A-Za-z0-9._-])";

/// An event that failed validation; `start`/`end` is its byte range in the body (for the DLQ).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedEvent {
    pub index: u32,
    pub error: String,
    pub start: u32,
    pub end: u32,
}

#[derive(Debug, Default, PartialEq)]
pub struct Output {
    pub ok: bool,
    pub error: Option<String>,
    pub offset: Option<u32>,
    pub too_many_events: bool,
    pub accepted: u32,
    /// Distinct device ids in order of first appearance, back to back: id k ends at `key_ends[k]` in
    /// `key_text`. Record i's key is id `key_ids[i]`: interned so the binding makes one JS string per device.
    pub key_text: Vec<u8>,
    pub key_ends: Vec<u32>,
    pub key_ids: Vec<u32>,
    pub values: Vec<u8>,
    pub value_ends: Vec<u32>,
    pub event_counts: Vec<u32>,
    pub rejected: Vec<RejectedEvent>,
}

impl Output {
    /// Kafka key of record `i`.
    pub fn key(&self, i: usize) -> &str {
        self.unique_key(self.key_ids[i] as usize)
    }

    /// Device id `k` (ids are validated ASCII).
    pub fn unique_key(&self, k: usize) -> &str {
        let a = if k == 0 {
            0
        } else {
            self.key_ends[k - 1] as usize
        };
        std::str::from_utf8(&self.key_text[a..self.key_ends[k] as usize]).unwrap_or("")
    }

    /// Empties every field, keeping the vectors' memory (a large body's is let go).
    fn clear(&mut self) {
        const KEEP: usize = 8 << 20;
        if self.values.capacity() > KEEP {
            self.values = Vec::new();
        }
        self.ok = true;
        self.error = None;
        self.offset = None;
        self.too_many_events = false;
        self.accepted = 0;
        self.key_text.clear();
        self.key_ends.clear();
        self.key_ids.clear();
        self.values.clear();
        self.value_ends.clear();
        self.event_counts.clear();
        self.rejected.clear();
    }

    /// Makes this the result of a body refused as a whole.
    pub(crate) fn fail(&mut self, error: String, offset: usize) {
        self.clear();
        self.ok = false;
        self.error = Some(error);
        self.offset = Some(offset as u32);
    }

    /// A body that is refused as a whole: nothing accepted, `error` at byte `offset`.
    #[cfg_attr(not(feature = "node"), allow(dead_code))]
    pub(crate) fn failed(error: String, offset: usize) -> Self {
        Output {
            ok: false,
            error: Some(error),
            offset: Some(offset as u32),
            ..Default::default()
        }
    }
}

/// Collects accepted events into Kafka records, grouped per device or one per event. Kept across bodies (see
/// `Workspace`) so its vectors are allocated once.
#[derive(Default)]
pub(super) struct Sink {
    group: bool,
    pub(super) out: Output,
    /// Device id -> index in the output's keys (and, grouped, the record index).
    devices: Interner,
    /// Grouped mode: each record's events so far (the first `groups` are this body's).
    group_values: Vec<Vec<u8>>,
    groups: usize,
}

impl Sink {
    pub(super) fn reset(&mut self, group: bool, body_len: usize) {
        self.group = group;
        self.out.clear();
        self.devices.reset();
        self.groups = 0;
        self.group_values.truncate(4096);
        if !group {
            // Canonical output is about the input's size (receivedAt added, whitespace dropped): one allocation
            // instead of a chain of reallocations, each copying what was written so far.
            let events = body_len / 64 + 1;
            self.out.values.reserve(body_len + body_len / 4 + 64);
            self.out.value_ends.reserve(events);
            self.out.event_counts.reserve(events);
            self.out.key_ids.reserve(events);
        }
    }

    /// Ungrouped, `parse` lends the output's value buffer to the encoder for the whole parse (swapping it in and
    /// back out), so events are encoded where they end up and never copied.
    pub(super) fn swap_values(&mut self, buf: &mut Vec<u8>) {
        if !self.group {
            std::mem::swap(&mut self.out.values, buf);
        }
    }

    fn intern(&mut self, device: &[u8]) -> u32 {
        self.devices
            .intern(device, &mut self.out.key_text, &mut self.out.key_ends)
    }

    /// Accepts the event just encoded at the end of `encoded` (the encoder's buffer).
    pub(super) fn accept(&mut self, device: &[u8], encoded: &mut Vec<u8>) {
        if self.group {
            self.accept_grouped(device, encoded);
            encoded.clear();
        } else {
            // Ungrouped, `encoded` is the output buffer itself (see `swap_values`): nothing to copy.
            self.accept_in_place(device, encoded.len());
        }
    }

    /// Ungrouped: the event is already in the output buffer, ending at `end`.
    fn accept_in_place(&mut self, device: &[u8], end: usize) {
        self.out.accepted += 1;
        let id = self.intern(device);
        self.out.value_ends.push(end as u32);
        self.out.event_counts.push(1);
        self.out.key_ids.push(id);
    }

    /// Grouped: appends the event to its device's record.
    fn accept_grouped(&mut self, device: &[u8], event: &[u8]) {
        self.out.accepted += 1;
        let id = self.intern(device);
        let idx = id as usize;
        if idx == self.groups {
            if idx == self.group_values.len() {
                self.group_values
                    .push(Vec::with_capacity(event.len() * 8 + 2));
            } else {
                self.group_values[idx].clear();
            }
            self.groups += 1;
            self.out.key_ids.push(id);
            self.out.event_counts.push(0);
        }
        let v = &mut self.group_values[idx];
        v.push(if v.is_empty() { b'[' } else { b',' });
        v.extend_from_slice(event);
        self.out.event_counts[idx] += 1;
    }

    pub(super) fn reject(&mut self, index: u32, error: String, start: usize, end: usize) {
        self.out.rejected.push(RejectedEvent {
            index,
            error,
            start: start as u32,
            end: end as u32,
        });
    }

    pub(super) fn finish(&mut self) {
        if self.group {
            let groups = &self.group_values[..self.groups];
            let total: usize = groups.iter().map(|v| v.len() + 1).sum();
            self.out.values.reserve(total);
            for v in groups {
                self.out.values.extend_from_slice(v);
                self.out.values.push(b']');
                self.out.value_ends.push(self.out.values.len() as u32);
            }
        }
    }
}

fn ascii(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

/// A valid `ts` as it is written: its text in the body when that is already canonical (an integer copied, not
/// reformatted), else epoch ms to format.
#[derive(Clone, Copy)]
pub(super) enum Ts {
    Text(Num),
    Ms(f64),
}

/// Writes valid events in canonical form, one after another, into one buffer.
#[derive(Default)]
pub(super) struct Encoder {
    /// The encoded events: ungrouped, the output's values themselves (see `Sink::swap_values`); grouped, the
    /// current event only (the sink copies it into its device's record).
    pub(super) out: Vec<u8>,
    /// The current event's escaped metric names, decoded one after another.
    names: Vec<u8>,
    /// The current event's validated metric names: range in `names` (decoded) or in the body.
    name_ranges: Vec<(usize, usize, bool)>,
    /// `,"receivedAt":` and the time, the same in every event, and the event's closing brace: formatted once
    /// per body.
    received_at: Vec<u8>,
    received_at_value: f64,
}

impl Encoder {
    /// Ready for a body whose events were received at `received_at`.
    pub(super) fn reset(&mut self, received_at: f64) {
        self.out.clear();
        // Formatting is most of a one-event body's fixed cost; bodies of the same millisecond share it.
        if self.received_at.is_empty() || received_at.to_bits() != self.received_at_value.to_bits()
        {
            self.received_at.clear();
            self.received_at.extend_from_slice(b",\"receivedAt\":");
            write_js_number(&mut self.received_at, received_at);
            self.received_at.push(b'}');
            self.received_at_value = received_at;
        }
    }

    /// Validates the metrics and appends the canonical event in the same pass; on an error nothing of the event
    /// stays in `out`. `device`, `ts` and `seq` are already validated.
    pub(super) fn event(
        &mut self,
        b: &[u8],
        device: &[u8],
        ts: Ts,
        seq: Option<Num>,
        entries: &[Entry],
        overflow: bool,
    ) -> Result<(), String> {
        let base = self.out.len();
        self.out.extend_from_slice(b"{\"deviceId\":\"");
        put(&mut self.out, device);
        self.out.extend_from_slice(b"\",\"ts\":");
        match ts {
            Ts::Text(n) => put(&mut self.out, n.text(b)),
            Ts::Ms(v) => write_js_number(&mut self.out, v),
        }
        self.out.extend_from_slice(b",\"metrics\":{");
        if let Err(e) = self.metrics(b, entries, overflow) {
            self.out.truncate(base);
            return Err(e);
        }
        if let Some(n) = seq {
            const KEY: &[u8] = b",\"seq\":";
            let at = n.start as usize;
            // In a compact body the member is already `,"seq":` and its canonical number: one copy.
            if n.canonical && at >= KEY.len() && &b[at - KEY.len()..at] == KEY {
                put(&mut self.out, &b[at - KEY.len()..n.end as usize]);
            } else {
                self.out.extend_from_slice(KEY);
                write_number_text(&mut self.out, n, b);
            }
        }
        put(&mut self.out, &self.received_at);
        Ok(())
    }

    /// The metrics object's members and its closing brace: only these can still make the event invalid.
    fn metrics(&mut self, b: &[u8], entries: &[Entry], overflow: bool) -> Result<(), String> {
        let Encoder {
            out,
            names,
            name_ranges,
            ..
        } = self;
        names.clear();
        name_ranges.clear();
        let mut seen = 0u64;
        for en in entries {
            // Escaped names are decoded onto the end of `names`; plain ones are used in place.
            let (a, z, esc) = if en.name.escaped {
                let a = names.len();
                decode_append(b, en.name, names);
                (a, names.len(), true)
            } else {
                (en.name.start as usize, en.name.end as usize, false)
            };
            let name: &[u8] = if esc { &names[a..z] } else { &b[a..z] };
            if name.is_empty() || name.len() > MAX_METRIC_NAME || !all_in(name, NAME) {
                return Err(METRICS_NAME.into());
            }
            // At most 64 names, so a linear duplicate scan is bounded; a bit per name's length and ends says
            // when it cannot find one (nearly always), and it is skipped.
            let bit = 1u64
                << ((name.len() * 7
                    + usize::from(name[0])
                    + usize::from(name[name.len() - 1]) * 3)
                    & 63);
            let dup = seen & bit != 0
                && name_ranges.iter().any(|&(x, y, e)| {
                    let other: &[u8] = if e { &names[x..y] } else { &b[x..y] };
                    eq(other, name)
                });
            seen |= bit;
            if dup {
                return Err(format!("metrics.{}: duplicate key", ascii(name)));
            }
            let n = match en.value {
                Val::Num(n) => n,
                _ => return Err(format!("metrics.{}: expected a number", ascii(name))),
            };
            let first = name_ranges.is_empty();
            // In a compact body the member is already `"name":number` (after a comma but for the first), with
            // the canonical number and the name as validated: one copy instead of five pieces.
            let from = (en.name.start as usize).saturating_sub(if first { 1 } else { 2 });
            if n.canonical
                && !esc
                && n.start == en.name.end + 2
                && b.get(en.name.end as usize + 1) == Some(&b':')
                && (first || b.get(from) == Some(&b','))
            {
                put(out, &b[from..n.end as usize]);
            } else if n.canonical {
                if !first {
                    out.push(b',');
                }
                out.push(b'"');
                put(out, name);
                out.extend_from_slice(b"\":");
                put(out, n.text(b));
            } else {
                if !first {
                    out.push(b',');
                }
                out.push(b'"');
                put(out, name);
                out.extend_from_slice(b"\":");
                let v = parse_f64(n.text(b));
                if !v.is_finite() {
                    return Err(format!("metrics.{}: expected a finite number", ascii(name)));
                }
                write_js_number(out, v);
            }
            name_ranges.push((a, z, esc));
        }
        if overflow || entries.is_empty() {
            return Err(METRICS_COUNT.into());
        }
        out.push(b'}');
        Ok(())
    }
}
