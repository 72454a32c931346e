//! Oracles: what must hold in every simulated run, checked online as events come out of the
//! members and once more when the run ends.
//!
//! Per (receiver, source), with messages numbered in the order the source's application sent
//! them: delivered messages are exactly the sent ones, byte for byte, in order, each at most
//! once; every message skipped was covered by an `Unrecoverable` report *before* the next
//! delivery (never a silent hole); no report covers data already delivered or never sent; and
//! by the end every message was delivered (or, where the scenario allows loss, reported lost;
//! or the source crashed and was declared lost). Packet sequence numbers are mapped to message
//! numbers by watching each source's ODATA as it leaves the source: a first fragment starts the
//! next message. Invariant: a violation is recorded with the virtual time it was seen, and a
//! run passes only with none.

use super::node::MessageHeader;
use crate::proto::{Event, LostRange, SourceId};
use bytes::Bytes;
use std::fmt;
use std::time::Duration;

/// How much loss a scenario tolerates from sources that stay up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Every receiver delivers every message; any `Unrecoverable` report is a violation (the
    /// window and timers were sized so that everything can be repaired).
    Complete,
    /// Every message is delivered or covered by an `Unrecoverable` report; only silent holes,
    /// duplicates, reordering and corruption are violations.
    CompleteOrReported,
}

/// One broken oracle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Virtual time since the start of the run.
    pub at: Duration,
    /// What went wrong, naming hosts as `h<index>`.
    pub what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {:?}: {}", self.at, self.what)
    }
}

/// Most violations kept per run; the rest are only counted.
const MAX_VIOLATIONS: usize = 20;

/// What the oracles know about one source: its messages and its sequence-number layout.
struct SourceRecord {
    planned: u32,
    /// Messages accepted by `send`, by index.
    sent: Vec<Bytes>,
    first_seq: Option<u32>,
    /// Sequence offset (from `first_seq`) of each message's first packet.
    starts: Vec<u32>,
    /// Offset after the newest ODATA.
    next_offset: u32,
    crashed: bool,
}

impl SourceRecord {
    /// Offsets `start..end` of message `index`'s packets, as far as they have been sent.
    fn span(&self, index: u32) -> (u32, u32) {
        let i = index as usize;
        let start = self.starts[i];
        let end = self.starts.get(i + 1).copied().unwrap_or(self.next_offset);
        (start, end)
    }

    fn offset(&self, seq: u32) -> Option<u32> {
        self.first_seq.map(|first| seq.wrapping_sub(first))
    }
}

/// One receiver's view of one source.
#[derive(Default)]
struct Tracker {
    next_message: u32,
    /// Offset after the last delivered message: no loss report may reach below it.
    delivered_end: u32,
    /// Reported lost offsets `(first, last)` not yet behind `next_message`.
    lost: Vec<(u32, u32)>,
    delivered: u32,
    lost_messages: u32,
    lost_packets: u64,
    source_lost: bool,
    completed_at: Option<Duration>,
}

/// Per-receiver totals for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ReceiverTotals {
    pub(crate) delivered: u64,
    pub(crate) lost_messages: u64,
    pub(crate) lost_packets: u64,
    pub(crate) completed_at: Option<Duration>,
}

/// All oracles of one run.
pub(crate) struct Checker {
    mode: Delivery,
    sources: Vec<Option<SourceRecord>>,
    /// `trackers[receiver][source]`.
    trackers: Vec<Vec<Option<Tracker>>>,
    /// `(member id, host)`, sorted by id for binary search (cheaper than hashing per packet).
    ids: Vec<(SourceId, usize)>,
    incomplete: usize,
    violations: Vec<Violation>,
    violations_seen: usize,
}

impl Checker {
    /// `plans[h]` is the number of messages host `h` will send (0 for pure receivers).
    pub(crate) fn new(mode: Delivery, plans: &[u32], mut ids: Vec<(SourceId, usize)>) -> Checker {
        ids.sort_unstable();
        let hosts = plans.len();
        let sources: Vec<Option<SourceRecord>> = plans
            .iter()
            .map(|&planned| {
                (planned > 0).then(|| SourceRecord {
                    planned,
                    sent: Vec::with_capacity(planned as usize),
                    first_seq: None,
                    starts: Vec::with_capacity(planned as usize),
                    next_offset: 0,
                    crashed: false,
                })
            })
            .collect();
        let trackers: Vec<Vec<Option<Tracker>>> = (0..hosts)
            .map(|receiver| {
                (0..hosts)
                    .map(|source| {
                        (source != receiver && sources[source].is_some()).then(Tracker::default)
                    })
                    .collect()
            })
            .collect();
        let incomplete = trackers.iter().flatten().filter(|t| t.is_some()).count();
        let mut checker = Checker {
            mode,
            sources,
            trackers,
            ids,
            incomplete,
            violations: Vec::new(),
            violations_seen: 0,
        };
        if checker.ids.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            checker.violate(
                Duration::ZERO,
                "two members drew the same source id".to_string(),
            );
        }
        checker
    }

    /// Host index of a source id.
    pub(crate) fn host_of(&self, id: SourceId) -> Option<usize> {
        let index = self
            .ids
            .binary_search_by(|(member, _)| member.cmp(&id))
            .ok()?;
        Some(self.ids[index].1)
    }

    /// The source host and sequence offsets of a delivered message, if it is a known one.
    pub(crate) fn message_offsets(
        &self,
        id: SourceId,
        data: &Bytes,
    ) -> Option<(usize, std::ops::Range<u32>)> {
        let source = self.host_of(id)?;
        let header = MessageHeader::parse(data)?;
        let record = self.sources.get(source)?.as_ref()?;
        ((header.index as usize) < record.starts.len()).then(|| {
            let (start, end) = record.span(header.index);
            (source, start..end)
        })
    }

    pub(crate) fn violate(&mut self, at: Duration, what: String) {
        self.violations_seen += 1;
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations.push(Violation { at, what });
        }
    }

    /// Every tracker reached its goal.
    pub(crate) fn all_complete(&self) -> bool {
        self.incomplete == 0
    }

    /// The application of `source` handed message `index` to its member.
    pub(crate) fn on_sent(&mut self, source: usize, index: u32, message: Bytes) {
        if let Some(record) = self.sources[source].as_mut() {
            debug_assert_eq!(record.sent.len(), index as usize);
            record.sent.push(message);
        }
    }

    /// `source` transmitted ODATA `seq` (`message_start`: first fragment bytes). Returns the
    /// sequence offset.
    pub(crate) fn on_odata(
        &mut self,
        now: Duration,
        source: usize,
        seq: u32,
        message_start: Option<&Bytes>,
    ) -> Option<u32> {
        let Some(record) = self.sources[source].as_mut() else {
            self.violate(now, format!("h{source} sent ODATA but has no send plan"));
            return None;
        };
        let first = *record.first_seq.get_or_insert(seq);
        let offset = seq.wrapping_sub(first);
        let expected = record.next_offset;
        let mut problems = Vec::new();
        if offset != expected {
            problems.push(format!("h{source} sent ODATA offset {offset}, expected {expected} (ODATA must be consecutive)"));
        }
        if offset >= expected && offset < 1 << 31 {
            record.next_offset = offset + 1;
        }
        if let Some(bytes) = message_start {
            match MessageHeader::parse(bytes) {
                Some(header)
                    if header.index as usize == record.starts.len()
                        && header.source as usize == source =>
                {
                    record.starts.push(offset);
                }
                Some(header) => problems.push(format!(
                    "h{source} started message {} of h{} at offset {offset}, expected message {}",
                    header.index,
                    header.source,
                    record.starts.len()
                )),
                None => problems.push(format!(
                    "h{source} ODATA offset {offset} starts a message without a valid header"
                )),
            }
        }
        for problem in problems {
            self.violate(now, problem);
        }
        Some(offset)
    }

    /// Sequence offset of `seq` in `source`'s stream, if it has sent data.
    pub(crate) fn offset(&self, source: usize, seq: u32) -> Option<u32> {
        self.sources.get(source)?.as_ref()?.offset(seq)
    }

    pub(crate) fn on_crash(&mut self, host: usize) {
        if let Some(record) = self.sources[host].as_mut() {
            record.crashed = true;
        }
    }

    /// An event from `receiver`'s member.
    pub(crate) fn on_event(&mut self, now: Duration, receiver: usize, event: &Event) {
        let result = match event {
            Event::Message { source, data } => self.on_message(now, receiver, *source, data),
            Event::Unrecoverable { source, range } => {
                self.on_unrecoverable(now, receiver, *source, *range)
            }
            Event::SourceLost { source } => self.on_source_lost(now, receiver, *source),
            Event::SourceRestarted { source } => Err(format!(
                "h{receiver} saw source {source} restart, but no member restarts"
            )),
            Event::SourceJoined { .. } => Ok(()),
        };
        if let Err(what) = result {
            self.violate(now, what);
        }
    }

    fn source_of(&self, receiver: usize, id: SourceId) -> Result<usize, String> {
        let source = self
            .host_of(id)
            .ok_or_else(|| format!("h{receiver} got an event for unknown source {id}"))?;
        if self.trackers[receiver][source].is_none() {
            return Err(format!(
                "h{receiver} got an event for h{source}, which sends nothing to it"
            ));
        }
        Ok(source)
    }

    fn on_message(
        &mut self,
        now: Duration,
        receiver: usize,
        id: SourceId,
        data: &Bytes,
    ) -> Result<(), String> {
        let source = self.source_of(receiver, id)?;
        let header = MessageHeader::parse(data).ok_or_else(|| {
            format!(
                "h{receiver} delivered a message from h{source} without a valid header ({} bytes)",
                data.len()
            )
        })?;
        if header.source as usize != source {
            return Err(format!(
                "h{receiver} delivered h{}'s message {} as coming from h{source}",
                header.source, header.index
            ));
        }
        let (record, tracker) = self.pair(receiver, source);
        let index = header.index;
        let problem = if index < tracker.next_message {
            Some(format!(
                "h{receiver} delivered h{source}'s message {index} again or out of order (next expected {})",
                tracker.next_message
            ))
        } else if index > tracker.next_message {
            Some(format!(
                "silent hole: h{receiver} skipped h{source}'s messages {}..{index} with no Unrecoverable report",
                tracker.next_message
            ))
        } else {
            None
        };
        let problem = if record.sent.get(index as usize) == Some(data) {
            problem
        } else {
            let corrupt =
                format!("h{receiver} delivered h{source}'s message {index} with different content");
            Some(problem.map_or(corrupt.clone(), |p| format!("{p}; {corrupt}")))
        };
        if (index as usize) < record.starts.len() {
            tracker.delivered_end = record.span(index).1;
        }
        if index >= tracker.next_message {
            tracker.next_message = index + 1;
            tracker.delivered += 1;
        }
        let delivered_end = tracker.delivered_end;
        tracker.lost.retain(|&(_, last)| last >= delivered_end);
        self.update_completion(now, receiver, source);
        problem.map_or(Ok(()), Err)
    }

    fn on_unrecoverable(
        &mut self,
        now: Duration,
        receiver: usize,
        id: SourceId,
        range: LostRange,
    ) -> Result<(), String> {
        let source = self.source_of(receiver, id)?;
        let mode = self.mode;
        let (record, tracker) = self.pair(receiver, source);
        let first = record.offset(range.first).ok_or_else(|| {
            format!(
                "h{receiver} reported loss of h{source}'s {range:?} before h{source} sent any data"
            )
        })?;
        let count = u32::try_from(range.len()).unwrap_or(u32::MAX);
        let last = first.wrapping_add(count - 1);
        let mut problems = Vec::new();
        // Offsets in the upper half stand for sequence numbers before the stream's start.
        if first >= 1 << 31 || last < first || last >= record.next_offset {
            problems.push(format!(
                "h{receiver} reported loss of h{source}'s offsets {first}..={last}, but h{source} sent only 0..{}",
                record.next_offset
            ));
        } else if first < tracker.delivered_end {
            problems.push(format!(
                "h{receiver} reported loss of h{source}'s offsets {first}..={last} after delivering up to offset {}",
                tracker.delivered_end
            ));
        }
        if mode == Delivery::Complete && !record.crashed {
            problems.push(format!(
                "h{receiver} gave up on h{source}'s offsets {first}..={last}, but this scenario keeps all data repairable"
            ));
        }
        tracker.lost_packets += u64::from(count);
        tracker.lost.push((first, last));
        // Messages touched by a reported range are lost: move past them.
        while (tracker.next_message as usize) < record.starts.len() {
            let (start, end) = record.span(tracker.next_message);
            if !tracker.lost.iter().any(|&(a, b)| a < end && start <= b) {
                break;
            }
            tracker.next_message += 1;
            tracker.lost_messages += 1;
        }
        self.update_completion(now, receiver, source);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    fn on_source_lost(
        &mut self,
        now: Duration,
        receiver: usize,
        id: SourceId,
    ) -> Result<(), String> {
        let Ok(source) = self.source_of(receiver, id) else {
            // Pure receivers may be declared lost too (they send reports); nothing to check.
            return Ok(());
        };
        let mode = self.mode;
        let (record, tracker) = self.pair(receiver, source);
        tracker.source_lost = true;
        let alive = !record.crashed;
        self.update_completion(now, receiver, source);
        if alive && mode == Delivery::Complete {
            return Err(format!(
                "h{receiver} declared h{source} lost, but it is alive"
            ));
        }
        Ok(())
    }

    fn pair(&mut self, receiver: usize, source: usize) -> (&SourceRecord, &mut Tracker) {
        let record = self.sources[source]
            .as_ref()
            .expect("invariant: trackers exist only for sources with a record");
        let tracker = self.trackers[receiver][source]
            .as_mut()
            .expect("invariant: source_of checked the tracker exists");
        (record, tracker)
    }

    fn update_completion(&mut self, now: Duration, receiver: usize, source: usize) {
        let (record, tracker) = self.pair(receiver, source);
        if tracker.completed_at.is_some() {
            return;
        }
        let all_accounted = tracker.next_message >= record.planned;
        let dead_and_buried = record.crashed && tracker.source_lost;
        if all_accounted || dead_and_buried {
            tracker.completed_at = Some(now);
            self.incomplete -= 1;
        }
    }

    /// End-of-run checks: every tracker finished.
    pub(crate) fn finish(&mut self, now: Duration) {
        let mut unfinished = Vec::new();
        for (receiver, row) in self.trackers.iter().enumerate() {
            for (source, tracker) in row.iter().enumerate() {
                let (Some(tracker), Some(record)) = (tracker, &self.sources[source]) else {
                    continue;
                };
                if tracker.completed_at.is_none() {
                    unfinished.push(format!(
                        "h{receiver} has not finished h{source}'s stream: delivered {}, reported lost {}, of {} planned ({} sent by the app, {} ODATA){}",
                        tracker.delivered,
                        tracker.lost_messages,
                        record.planned,
                        record.sent.len(),
                        record.next_offset,
                        if record.crashed { "; the source crashed and was never declared lost" } else { "" }
                    ));
                }
            }
        }
        for what in unfinished {
            self.violate(now, what);
        }
    }

    pub(crate) fn totals(&self, receiver: usize) -> ReceiverTotals {
        let mut totals = ReceiverTotals::default();
        let mut all_complete = true;
        let mut latest = None::<Duration>;
        for tracker in self.trackers[receiver].iter().flatten() {
            totals.delivered += u64::from(tracker.delivered);
            totals.lost_messages += u64::from(tracker.lost_messages);
            totals.lost_packets += tracker.lost_packets;
            match tracker.completed_at {
                Some(at) => latest = Some(latest.map_or(at, |l| l.max(at))),
                None => all_complete = false,
            }
        }
        totals.completed_at = latest.filter(|_| all_complete);
        totals
    }

    pub(crate) fn into_violations(self) -> (Vec<Violation>, usize) {
        (self.violations, self.violations_seen)
    }
}
