//! SPM schedule and the RTT echoes SPMs carry.
//!
//! Schedule (PGM §5.1.5–6 heartbeat, with its ambient SPM folded in):
//! - Nothing is due before the first ODATA: a member that only receives never sends SPMs.
//! - After any ODATA the next SPM is due `min` later ("heartbeat"), so a lost tail packet is
//!   noticed within about `min` plus one trip. Each SPM sent doubles the interval, up to `max`.
//! - An SPM is never more than `max` after the previous one (or after the first data), even
//!   while data keeps flowing and keeps pushing the heartbeat back: ambient SPMs carry the
//!   echoes and the window edges that late joiners and RTT estimation need.
//! - A waiting echo makes an SPM due at most `min` after the report arrived, so receivers get
//!   RTT samples promptly even when the heartbeat has backed off to `max`; a full SPM's worth
//!   of waiting echoes makes the next SPM due at once (paced like data), so in a group of a
//!   thousand the first wave of reports is echoed within a few SPMs instead of mostly dropped
//!   — every receiver's NAK timer is scaled by the distance these echoes measure.
//!
//! Invariant: at most [`MAX_PENDING_ECHOES`] echoes wait, at most one per member (the newest);
//! a full buffer forgets its oldest echo.

use crate::wire::{Echo, MAX_ECHOES};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Most receiver reports held for echoing: 32 SPMs' worth (1,024 echoes, 16 KiB), enough for
/// the first report of every member of a thousand-member group. With more reporting receivers
/// than that at once, the oldest samples are dropped (they would carry a long hold anyway).
pub(super) const MAX_PENDING_ECHOES: usize = 32 * MAX_ECHOES;

/// Longest SPM interval honoured; a longer configured one is clamped to it.
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

#[derive(Clone, Copy, Debug)]
struct PendingEcho {
    member: u64,
    timestamp: u32,
    received_at: Instant,
}

/// What goes into one SPM besides the window edges.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Beat {
    /// The SPM's own sequence number.
    pub(super) spm_seq: u32,
    /// RTT echoes, at most [`MAX_ECHOES`].
    pub(super) echoes: Vec<Echo>,
}

/// The SPM timer and echo buffer.
#[derive(Debug)]
pub(super) struct Heartbeat {
    min: Duration,
    max: Duration,
    /// Current back-off interval; `min` after data, doubled by each SPM.
    interval: Duration,
    /// Heartbeat deadline; `None` before the first data.
    heartbeat_due: Option<Instant>,
    /// Last SPM (or first data): the ambient SPM is due `max` after it.
    last_beat: Option<Instant>,
    /// Set while echoes wait.
    echo_due: Option<Instant>,
    echoes: VecDeque<PendingEcho>,
    next_spm_seq: u32,
}

impl Heartbeat {
    /// A silent schedule: nothing due until [`Heartbeat::on_data`].
    pub(super) fn new(min: Duration, max: Duration) -> Heartbeat {
        // Zero intervals would make the SPM due forever; a microsecond is the wire resolution.
        // The upper clamp keeps `now + interval` far from overflowing an `Instant`.
        let min = min.clamp(Duration::from_micros(1), MAX_INTERVAL);
        let max = max.min(MAX_INTERVAL);
        Heartbeat {
            min,
            max: max.max(min),
            interval: min,
            heartbeat_due: None,
            last_beat: None,
            echo_due: None,
            echoes: VecDeque::new(),
            next_spm_seq: 0,
        }
    }

    /// Whether any data was ever sent (SPMs are allowed).
    pub(super) fn is_started(&self) -> bool {
        self.heartbeat_due.is_some()
    }

    /// ODATA was just sent: the heartbeat restarts at `min`.
    pub(super) fn on_data(&mut self, now: Instant) {
        self.interval = self.min;
        self.heartbeat_due = Some(now + self.min);
        self.last_beat.get_or_insert(now);
    }

    /// A receiver report arrived: hold its timestamp for the next SPM. Ignored before the
    /// stream started (no SPM would carry it).
    pub(super) fn on_report(&mut self, now: Instant, member: u64, timestamp: u32) {
        if !self.is_started() {
            return;
        }
        let echo = PendingEcho {
            member,
            timestamp,
            received_at: now,
        };
        if let Some(existing) = self.echoes.iter_mut().find(|e| e.member == member) {
            *existing = echo;
        } else {
            if self.echoes.len() >= MAX_PENDING_ECHOES {
                self.echoes.pop_front();
            }
            self.echoes.push_back(echo);
        }
        self.echo_due.get_or_insert(now + self.min);
    }

    /// When the next SPM is due, if any.
    pub(super) fn due(&self) -> Option<Instant> {
        let heartbeat = self.heartbeat_due?;
        let ambient = self.last_beat.map(|at| at + self.max);
        [Some(heartbeat), ambient, self.echo_due]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether an SPM is due at `now`.
    pub(super) fn is_due(&self, now: Instant) -> bool {
        self.due().is_some_and(|due| due <= now)
    }

    /// An SPM is being sent at `now`: returns its number and echoes and backs the schedule off.
    pub(super) fn take_beat(&mut self, now: Instant) -> Beat {
        let take = self.echoes.len().min(MAX_ECHOES);
        let echoes = self
            .echoes
            .drain(..take)
            .map(|e| Echo {
                member: e.member,
                timestamp: e.timestamp,
                hold_us: u32::try_from(now.saturating_duration_since(e.received_at).as_micros())
                    .unwrap_or(u32::MAX),
            })
            .collect();
        let spm_seq = self.next_spm_seq;
        self.next_spm_seq = self.next_spm_seq.wrapping_add(1);
        self.interval = (self.interval * 2).min(self.max);
        self.heartbeat_due = Some(now + self.interval);
        self.last_beat = Some(now);
        self.echo_due = if self.echoes.len() >= MAX_ECHOES {
            Some(now)
        } else {
            (!self.echoes.is_empty()).then(|| now + self.min)
        };
        Beat { spm_seq, echoes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::source::test_support::base_instant;

    const MS: Duration = Duration::from_millis(1);

    /// Runs the schedule from `start` to `end`, sending every SPM exactly when due; returns
    /// the send instants as offsets from `origin`.
    fn beats(hb: &mut Heartbeat, origin: Instant, end: Instant) -> Vec<Duration> {
        let mut out = Vec::new();
        while let Some(due) = hb.due() {
            if due > end {
                break;
            }
            hb.take_beat(due);
            out.push(due - origin);
            assert!(out.len() < 10_000);
        }
        out
    }

    #[test]
    fn silent_before_data() {
        let t0 = base_instant();
        let mut hb = Heartbeat::new(2 * MS, 1000 * MS);
        assert_eq!(hb.due(), None);
        hb.on_report(t0, 9, 123);
        assert_eq!(
            hb.due(),
            None,
            "a report before any data must not start SPMs"
        );
        assert!(!hb.is_due(t0 + Duration::from_secs(3600)));
    }

    #[test]
    fn backs_off_from_min_to_max_and_resets_on_data() {
        let t0 = base_instant();
        let mut hb = Heartbeat::new(2 * MS, 64 * MS);
        hb.on_data(t0);
        let sent = beats(&mut hb, t0, t0 + 300 * MS);
        // Gaps 2, 4, 8, 16, 32, 64, 64, 64 ms.
        let ms: Vec<u128> = sent.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, vec![2, 6, 14, 30, 62, 126, 190, 254]);
        // New data resets the interval to min.
        let t1 = t0 + 300 * MS;
        hb.on_data(t1);
        let sent = beats(&mut hb, t1, t1 + 7 * MS);
        let ms: Vec<u128> = sent.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, vec![2, 6]);
    }

    #[test]
    fn ambient_spm_while_data_keeps_flowing() {
        let t0 = base_instant();
        let mut hb = Heartbeat::new(2 * MS, 10 * MS);
        hb.on_data(t0);
        let mut sent = Vec::new();
        // Data every 1 ms keeps pushing the heartbeat back; the ambient bound still fires.
        for i in 1..=25u32 {
            let now = t0 + i * MS;
            if hb.is_due(now) {
                hb.take_beat(now);
                sent.push(i);
            }
            hb.on_data(now);
        }
        assert_eq!(sent, vec![10, 20]);
    }

    #[test]
    fn echo_makes_spm_due_soon_with_hold() {
        let t0 = base_instant();
        let mut hb = Heartbeat::new(2 * MS, 1000 * MS);
        hb.on_data(t0);
        hb.take_beat(t0 + 2 * MS);
        hb.take_beat(t0 + 6 * MS);
        // Backed off: the next heartbeat is 8 ms later.
        assert_eq!(hb.due(), Some(t0 + 14 * MS));
        let at = t0 + 7 * MS;
        hb.on_report(at, 42, 0xdead_beef);
        hb.on_report(at + Duration::from_micros(300), 43, 5);
        assert_eq!(hb.due(), Some(at + 2 * MS));
        let beat = hb.take_beat(at + 2 * MS);
        assert_eq!(beat.spm_seq, 2);
        assert_eq!(
            beat.echoes,
            vec![
                Echo {
                    member: 42,
                    timestamp: 0xdead_beef,
                    hold_us: 2000
                },
                Echo {
                    member: 43,
                    timestamp: 5,
                    hold_us: 1700
                },
            ]
        );
        assert_eq!(hb.due(), Some(at + 2 * MS + 16 * MS));
    }

    #[test]
    fn newest_report_per_member_wins_and_buffer_is_bounded() {
        let t0 = base_instant();
        let mut hb = Heartbeat::new(2 * MS, 1000 * MS);
        hb.on_data(t0);
        hb.on_report(t0, 1, 100);
        hb.on_report(t0 + MS, 1, 200);
        let beat = hb.take_beat(t0 + 2 * MS);
        assert_eq!(beat.echoes.len(), 1);
        assert_eq!(beat.echoes[0].timestamp, 200);
        assert_eq!(beat.echoes[0].hold_us, 1000);

        for member in 0..(MAX_PENDING_ECHOES as u64 + 10) {
            hb.on_report(t0 + 3 * MS, member, member as u32);
        }
        let mut members = Vec::new();
        let mut at = t0 + 3 * MS;
        while hb.echo_due.is_some() {
            at = hb.due().expect("echoes pending");
            let beat = hb.take_beat(at);
            assert!(beat.echoes.len() <= MAX_ECHOES);
            members.extend(beat.echoes.iter().map(|e| e.member));
        }
        assert!(
            at <= t0 + 3 * MS + 4 * 2 * MS,
            "four SPMs at min spacing drain the buffer"
        );
        let expected: Vec<u64> = (10..MAX_PENDING_ECHOES as u64 + 10).collect();
        assert_eq!(members, expected, "the oldest 10 were forgotten");
    }
}
