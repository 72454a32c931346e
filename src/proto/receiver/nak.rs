//! `NakScheduler`: the NAK state machine of every missing packet of one source (PGM RFC 3208
//! §6.3 states, SRM timers).
//!
//! ```text
//!            detect gap                expiry: NAK sent
//!   (none) ────────────▶ BackOff ───────────────────────▶ WaitNcf
//!                          │  ▲                             │   │
//!   foreign NAK or NCF     │  │ expiry (retry; gives up     │   │ expiry (retry; gives up
//!   heard: suppressed      │  │ past nak_data_retries)      │   │ past nak_ncf_retries)
//!                          ▼  │                     NCF     │   │
//!                        WaitData ◀─────────────────────────┘   └──────▶ BackOff
//! ```
//!
//! Data for a position removes its state; an NCF marked `gone`, or the source's trailing edge
//! passing it, makes it unrecoverable at once (the caller takes it out with `take_*`).
//!
//! Packets detected missing together share one backoff draw, so a burst loss goes out as one
//! NAK with merged ranges instead of one NAK per packet.
//!
//! Retry budget. `nak_ncf_retries` counts NAK repeats *without hearing an NCF* (an NCF for the
//! packet resets it); `nak_data_retries` counts confirmed repairs that never arrived. A wait
//! that expires while the source was visibly answering this receiver is charged to neither:
//! for an NCF wait, an NCF to one of its NAKs, an SPM echoing one of its reports, or a repair
//! of one of its gaps since the wait began; for a data wait, a repair of one of its gaps. The
//! source is then alive and repairing, so the miss is plain loss — at 30 % loss each way four
//! NAK rounds in a row fail often enough to give up on data the source still holds. Such
//! rounds are still bounded, by `MAX_ROUNDS_FACTOR` times the whole budget, and the source's
//! trailing edge ends every cycle at the latest when the data leaves its window. This differs
//! from PGM, whose counters do not know whether the source answers; the simulator's 30 %-loss
//! scenarios are the reason. Finally, an exhausted budget gives a packet up only once
//! `give_up_after` (default 1 s) has passed since it was found missing: with a loopback RTT of
//! ~100 µs, or a receiver whose socket backlog delays every NCF, the counts alone ran out in
//! milliseconds on data the source still held (loopback demo at 1 Gbit/s under load; simulator
//! seed 6799215417662882587 at 30 % loss). Only the source (NCF `gone`, its trailing edge) can
//! make a packet unrecoverable sooner.
//!
//! Adaptive spread (the `Srm` strategy). The backoff spread `C2·d` that makes suppression work grows with the
//! number of receivers that share a loss: with the default C2 = 2 and 20 receivers in a tree,
//! about 8 of them NAK each shared loss (simulated and Monte-Carlo alike), because a NAK takes
//! about as long to reach the other receivers as the spread lasts. So each scheduler learns a
//! factor on C2, as PGM's NAK_BO_IVL auto-tuning (RFC 3208 App. E) and adaptive SRM do: a
//! foreign NAK duplicating one this receiver already sent multiplies it by
//! [`SPREAD_GROWTH`], each NAK this receiver sends multiplies it by [`SPREAD_DECAY`], and it
//! stays within `1..=`[`MAX_SPREAD`]. It starts at [`INITIAL_SPREAD`], assuming a group: the
//! first losses of a stream typically hit every receiver at once (a burst at start-up, before
//! anything is learned), and a NAK storm at the source is worse than a few milliseconds of
//! extra latency. Alone or with independent losses no duplicate is ever heard and the factor
//! decays to 1 (the plain SRM timer) within about a dozen NAK rounds; in a large group it
//! settles where about 1.6 NAKs go out per shared loss.
//!
//! Strategies. The backoff draw is one of [`BackoffStrategy`]'s: the default `Scaled` (RFC 5401
//! truncated exponential over `T = 3·λ·d·f`, `λ = ln G + 1` of the estimated group size, `d` the
//! one-way distance), `Srm` (the uniform timer and spread above), and the `PgmLike` (uniform
//! over a fixed 50 ms) and `NormLike` (truncated exponential over `4·RTT`, G = 1000) baselines;
//! the cycle, retries and the give-up floor are the same for all. The scaled strategy learns
//! differently from SRM's spread: a repair of a packet this receiver NAKed without anyone
//! duplicating the NAK drops its factor `f` to the floor `1/(3λ)` (a window of one distance:
//! it becomes the group's requester and its NAK suppresses everyone's next time), and a packet
//! whose NAK was duplicated doubles `f` (once per packet), up to [`MAX_SCALED_FACTOR`]. Without
//! `adaptive` nothing is learned. See `docs/suppression.md` for the reasoning and the numbers.
//!
//! Invariant: `deadlines` holds exactly one `(deadline, pos)` entry per state in `states`, so
//! the next expiry is the first entry of an ordered set — `next_deadline` costs O(log n) however
//! many gaps are open.

use super::backoff::{self, BackoffParams, BackoffStrategy};
use super::gaps::{Pos, runs, seq_of};
use crate::wire::{MAX_RANGES, SeqRange};
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::{Duration, Instant};

/// Where one missing packet is in its NAK cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting a random backoff before NAKing, listening for others' NAKs and NCFs.
    BackOff,
    /// NAK sent; waiting for the source's NCF.
    WaitNcf,
    /// Repair promised (NCF) or requested by someone else; waiting for the data.
    WaitData,
}

#[derive(Clone, Copy, Debug)]
struct NakState {
    phase: Phase,
    deadline: Instant,
    /// When the current NCF or data wait began.
    waiting_since: Instant,
    /// NCF waits expired since the last NCF for this packet, while the source was silent.
    ncf_timeouts: u32,
    /// Data waits expired while the source was silent.
    data_timeouts: u32,
    /// Waits expired in total, whatever the source did.
    rounds: u32,
    /// This receiver has NAKed the packet (so a foreign NAK for it is a duplicate).
    naked: bool,
    /// A foreign NAK for the packet was heard after this receiver NAKed it.
    duplicated: bool,
    /// Foreign NAKs heard for the packet (saturating).
    foreign_naks: u8,
    /// When the packet was found missing; it is never given up before `give_up_after` from here.
    detected_at: Instant,
    /// When the current backoff began, and its uniform draw: the backoff is the draw's
    /// quantile of the strategy's distribution, re-timed by [`NakScheduler::retime`].
    drawn_at: Instant,
    unit: f64,
}

/// Factor on the spread for each foreign NAK that duplicates one of ours.
pub(crate) const SPREAD_GROWTH: f64 = 1.2;
/// Factor on the spread for each round of NAKs this receiver sends.
pub(crate) const SPREAD_DECAY: f64 = 0.9;
/// Largest spread factor: C2 at most this many times its setting.
pub(crate) const MAX_SPREAD: f64 = 8.0;
/// Spread factor of a new source: with C2 = 2 it makes the spread 8 one-way distances, which
/// keeps a 20-receiver tree with 1 ms hops under 4 NAKs per shared loss (Monte-Carlo).
pub(crate) const INITIAL_SPREAD: f64 = 4.0;

/// [`BackoffStrategy::Scaled`]: factor on the window for each packet whose NAK by this
/// receiver was duplicated by another's (SRM's exponential backoff on duplicates).
pub(crate) const SCALED_GROWTH: f64 = 2.0;
/// [`BackoffStrategy::Scaled`]: largest factor on the window.
pub(crate) const MAX_SCALED_FACTOR: f64 = 4.0;
/// [`BackoffStrategy::Scaled`]: group size assumed before any member of the group is known. An
/// order of magnitude either way costs little (λ is logarithmic); the estimate replaces it as
/// soon as one SPM echo or foreign NAK names a member.
pub(crate) const GROUP_SIZE_PRIOR: f64 = 100.0;

/// Hard cap on NAK rounds per packet, as a multiple of the configured retry budget.
const MAX_ROUNDS_FACTOR: u32 = 4;

/// When the source last answered this receiver, as evidence that a missed NCF or repair was
/// loss rather than a source that cannot help.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Answers {
    /// Last NCF answering one of this receiver's NAKs, or SPM echoing one of its reports.
    pub(crate) ncf_at: Option<Instant>,
    /// Last repair (RDATA) that filled one of this receiver's gaps.
    pub(crate) repair_at: Option<Instant>,
}

/// Fixed parameters of the NAK cycle.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NakParams {
    /// Backoff constants.
    pub(crate) backoff: BackoffParams,
    /// NCF waits that may expire before the packet is given up.
    pub(crate) ncf_retries: u32,
    /// Data waits that may expire before the packet is given up.
    pub(crate) data_retries: u32,
    /// Spread factor to start with ([`INITIAL_SPREAD`] in service).
    pub(crate) initial_spread: f64,
    /// Least time between finding a packet missing and giving it up on exhausted retries.
    pub(crate) give_up_after: Duration,
    /// How backoffs are drawn.
    pub(crate) strategy: BackoffStrategy,
    /// Whether the factor on the backoff window learns from duplicate NAKs (self-tuning).
    pub(crate) adaptive: bool,
}

/// What an expiry round produced; both lists sorted by position.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Expired {
    /// Positions to NAK now.
    pub(crate) nak: Vec<Pos>,
    /// Positions whose retries are exhausted: unrecoverable.
    pub(crate) lost: Vec<Pos>,
}

/// NAK state of the missing packets of one source.
#[derive(Debug)]
pub(crate) struct NakScheduler {
    params: NakParams,
    /// Learned factor on the backoff window (C2 for SRM), see the module doc.
    spread: f64,
    /// Group size driving [`BackoffStrategy::Scaled`]: the estimate, or the prior.
    group_size: f64,
    /// [`BackoffStrategy::Scaled`]: the last shared loss this receiver saw repaired was asked
    /// for by exactly one other member's NAK — the group has a requester, see [`Draw::defer`].
    requester_heard: bool,
    /// The window factor or `requester_heard` changed since pending backoffs were last
    /// re-timed (see [`NakScheduler::retime_if_learned`]).
    learned: bool,
    states: BTreeMap<Pos, NakState>,
    deadlines: BTreeSet<(Instant, Pos)>,
}

/// The inputs of one backoff draw.
#[derive(Clone, Copy, Debug)]
struct Draw {
    strategy: BackoffStrategy,
    /// SRM constants, C2 already scaled by the learned spread.
    srm: BackoffParams,
    /// Learned factor on the window.
    factor: f64,
    group_size: f64,
    /// [`BackoffStrategy::Scaled`]: another member is the group's requester and this one is
    /// not, so its backoff starts [`DEFER_DISTANCES`] distances late: the requester fires
    /// within one distance and its NAK needs about one more to arrive, and a receiver drawing
    /// from the bottom of the window before then would duplicate it — which also doubles the
    /// requester's window and costs the group its fast requester.
    defer: bool,
}

/// [`BackoffStrategy::Scaled`]: distances a non-requester waits for the requester's NAK
/// before its own backoff begins (see [`Draw::defer`]).
pub(crate) const DEFER_DISTANCES: f64 = 2.0;

impl Draw {
    /// Time to wait before NAKing for the uniform draw `unit` (one per backoff, whatever the
    /// strategy).
    fn backoff(&self, unit: f64, rtt: Duration) -> Duration {
        match self.strategy {
            BackoffStrategy::Srm => backoff::nak_backoff_at(unit, rtt, self.srm),
            BackoffStrategy::Scaled => {
                let draw =
                    backoff::truncated_exponential_at(unit, self.window(rtt), self.group_size);
                if self.defer {
                    let distance = backoff::one_way_distance(rtt);
                    draw.saturating_add(distance.mul_f64(DEFER_DISTANCES))
                        .min(backoff::MAX_NAK_TIMER)
                } else {
                    draw
                }
            }
            BackoffStrategy::PgmLike => {
                backoff::scale(backoff::PGM_BACKOFF_WINDOW, unit, backoff::MAX_NAK_TIMER)
            }
            BackoffStrategy::NormLike => {
                backoff::truncated_exponential_at(unit, self.window(rtt), backoff::NORM_GROUP_SIZE)
            }
        }
    }

    /// The random part of the draw: within it other receivers' NAKs for the same loss arrive
    /// (for SRM the spread `C2·d` above the fixed `C1·d`).
    fn window(&self, rtt: Duration) -> Duration {
        let distance = backoff::one_way_distance(rtt);
        let cap = backoff::MAX_NAK_TIMER;
        match self.strategy {
            BackoffStrategy::Srm => backoff::scale(distance, self.srm.c2, cap),
            BackoffStrategy::Scaled => backoff::scale(
                distance,
                backoff::SCALED_WINDOW_FACTOR * backoff::lambda(self.group_size) * self.factor,
                cap,
            ),
            BackoffStrategy::PgmLike => backoff::PGM_BACKOFF_WINDOW,
            // K·GRTT; this receiver's own RTT stands in for the group's (equal in a star).
            BackoffStrategy::NormLike => backoff::scale(rtt, backoff::NORM_BACKOFF_FACTOR, cap),
        }
    }
}

/// `now + wait`, saturating far in the future instead of overflowing.
pub(crate) fn later(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait)
        .or_else(|| now.checked_add(Duration::from_secs(1 << 30)))
        .unwrap_or(now)
}

impl NakScheduler {
    /// An empty scheduler.
    pub(crate) fn new(params: NakParams) -> NakScheduler {
        NakScheduler {
            params,
            spread: match params.strategy {
                BackoffStrategy::Srm => params.initial_spread.clamp(1.0, MAX_SPREAD),
                // The window already accounts for the group: start from it as computed.
                _ => 1.0,
            },
            group_size: GROUP_SIZE_PRIOR,
            requester_heard: false,
            learned: false,
            states: BTreeMap::new(),
            deadlines: BTreeSet::new(),
        }
    }

    /// Sets the group size the [`BackoffStrategy::Scaled`] window is computed for (at least 1).
    pub(crate) fn set_group_size(&mut self, group_size: f64) {
        self.group_size = group_size.max(1.0);
        let floor = self.min_factor();
        self.spread = self.spread.max(floor);
    }

    /// The group size the scaled window is computed for.
    pub(crate) fn group_size(&self) -> f64 {
        self.group_size
    }

    /// Smallest learned factor: 1 for SRM (the plain timer), `1/λ` for the scaled window (a
    /// window of `SCALED_WINDOW_FACTOR·d`, as if alone).
    fn min_factor(&self) -> f64 {
        match self.params.strategy {
            BackoffStrategy::Scaled => {
                1.0 / (backoff::SCALED_WINDOW_FACTOR * backoff::lambda(self.group_size))
            }
            _ => 1.0,
        }
    }

    /// What a backoff draw needs, copied out so it can be drawn while states are borrowed.
    fn draw(&self) -> Draw {
        Draw {
            strategy: self.params.strategy,
            srm: self.backoff_params(),
            factor: self.spread,
            group_size: self.group_size,
            defer: self.requester_heard && self.spread > self.min_factor(),
        }
    }

    /// The backoff constants in use: C2 scaled by the learned spread.
    fn backoff_params(&self) -> BackoffParams {
        BackoffParams::new(self.params.backoff.c1, self.params.backoff.c2 * self.spread)
    }

    /// The learned factor on C2.
    #[cfg(test)]
    pub(crate) fn spread(&self) -> f64 {
        self.spread
    }

    /// Number of missing packets tracked.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.states.len()
    }

    /// Phase of a missing packet, `None` if it is not missing.
    #[cfg(test)]
    pub(crate) fn phase(&self, pos: Pos) -> Option<Phase> {
        self.states.get(&pos).map(|state| state.phase)
    }

    /// Earliest timer.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(deadline, _)| deadline)
    }

    /// Starts the NAK cycle for newly missing positions, all with one backoff draw.
    pub(crate) fn add_missing(
        &mut self,
        range: Range<Pos>,
        now: Instant,
        rng: &mut impl Rng,
        rtt: Duration,
    ) {
        if range.is_empty() {
            return;
        }
        let unit: f64 = rng.random();
        let deadline = later(now, self.draw().backoff(unit, rtt));
        for pos in range {
            let state = NakState {
                phase: Phase::BackOff,
                deadline,
                waiting_since: now,
                ncf_timeouts: 0,
                data_timeouts: 0,
                rounds: 0,
                naked: false,
                duplicated: false,
                foreign_naks: 0,
                detected_at: now,
                drawn_at: now,
                unit,
            };
            if let Some(old) = self.states.insert(pos, state) {
                self.deadlines.remove(&(old.deadline, pos));
            }
            self.deadlines.insert((deadline, pos));
        }
    }

    /// Data for `pos` arrived: its cycle ends. Returns whether it was missing.
    ///
    /// With the scaled strategy, a repair of a packet this receiver NAKed without anyone
    /// duplicating the NAK makes it the group's requester: its window drops to the floor, so
    /// its next NAK for a shared loss goes out before anyone else's timer and suppresses them
    /// all. A duplicate (two requesters) doubles the window again.
    pub(crate) fn remove(&mut self, pos: Pos) -> bool {
        match self.states.remove(&pos) {
            Some(state) => {
                self.deadlines.remove(&(state.deadline, pos));
                if self.params.adaptive && self.params.strategy == BackoffStrategy::Scaled {
                    self.learn_requester(&state);
                }
                true
            }
            None => false,
        }
    }

    /// What a repaired packet says about who asks for shared losses (scaled strategy, adaptive):
    /// this receiver's NAK alone makes it the requester; one other member's NAK alone says the
    /// group has another requester; several NAKs from others say it has none. (A collision
    /// with this receiver's own NAK was settled when it was heard, by member id.)
    fn learn_requester(&mut self, state: &NakState) {
        let before = (self.spread, self.requester_heard);
        if state.naked {
            if !state.duplicated {
                self.spread = self.min_factor();
            }
        } else {
            match state.foreign_naks {
                0 => {}
                1 => self.requester_heard = true,
                _ => self.requester_heard = false,
            }
        }
        self.learned |= before != (self.spread, self.requester_heard);
    }

    /// Re-times pending backoffs if this receiver just became or stopped being the requester,
    /// or learned of another: a shared loss found before the election would otherwise keep a
    /// timer drawn without it (star, 1,000 receivers: the second loss of a run waited 27 ms
    /// for its NAK while the newly elected requester's own timer for it was still pending).
    pub(crate) fn retime_if_learned(&mut self, now: Instant, rtt: Duration) {
        if std::mem::take(&mut self.learned) {
            self.retime(now, rtt);
        }
    }

    /// The source confirmed (NCF) repairs for `range`. Returns how many pending NAKs this
    /// suppressed (packets still in backoff).
    pub(crate) fn on_ncf(&mut self, range: Range<Pos>, now: Instant, rtt: Duration) -> u64 {
        if range.is_empty() {
            // Also keeps `range_mut` from panicking on a reversed range.
            return 0;
        }
        let deadline = later(now, backoff::repair_wait(rtt));
        let mut suppressed = 0;
        for (&pos, state) in self.states.range_mut(range) {
            if state.phase == Phase::BackOff {
                suppressed += 1;
            }
            // In every phase the repair is now on its way: wait for it from now.
            self.deadlines.remove(&(state.deadline, pos));
            state.phase = Phase::WaitData;
            state.deadline = deadline;
            state.waiting_since = now;
            state.ncf_timeouts = 0;
            self.deadlines.insert((deadline, pos));
        }
        suppressed
    }

    /// Another receiver's NAK asked for `ranges`. Packets still in backoff wait for the repair
    /// instead of NAKing too; if it repeats a NAK of ours, the spread grows. Returns how many
    /// were suppressed.
    #[cfg(test)]
    pub(crate) fn on_foreign_nak(
        &mut self,
        ranges: &[Range<Pos>],
        now: Instant,
        rtt: Duration,
    ) -> u64 {
        self.on_foreign_nak_from(ranges, now, rtt, true)
    }

    /// [`NakScheduler::on_foreign_nak`] from a member that `precedes` this one (scaled
    /// strategy). Two requesters whose NAKs collide would otherwise both double their windows,
    /// collide again loss after loss and hand the group's latency to the windows' growth
    /// (star, 1,000 receivers: two requesters colliding on five losses in a row); instead the
    /// member with the higher id yields — its window doubles and it defers to the other, which
    /// keeps its window.
    pub(crate) fn on_foreign_nak_from(
        &mut self,
        ranges: &[Range<Pos>],
        now: Instant,
        rtt: Duration,
        precedes: bool,
    ) -> u64 {
        let deadline = later(now, backoff::data_wait(rtt));
        let mut suppressed = 0;
        let mut duplicate = false;
        let every_duplicate = self.params.strategy == BackoffStrategy::Srm;
        for range in ranges.iter().filter(|range| !range.is_empty()) {
            for (&pos, state) in self.states.range_mut(range.clone()) {
                state.foreign_naks = state.foreign_naks.saturating_add(1);
                if state.phase != Phase::BackOff {
                    if state.naked {
                        // The scaled strategy counts a packet once: a storm of a thousand
                        // duplicates is one signal, not a thousand. SRM's spread grows per NAK.
                        duplicate |= !state.duplicated || every_duplicate;
                        state.duplicated = true;
                    }
                    continue;
                }
                suppressed += 1;
                self.deadlines.remove(&(state.deadline, pos));
                state.phase = Phase::WaitData;
                state.deadline = deadline;
                state.waiting_since = now;
                self.deadlines.insert((deadline, pos));
            }
        }
        if duplicate && self.params.adaptive {
            match self.params.strategy {
                BackoffStrategy::Scaled if precedes => {
                    self.spread = (self.spread * SCALED_GROWTH).min(MAX_SCALED_FACTOR);
                    self.requester_heard = true;
                    self.learned = true;
                }
                BackoffStrategy::Scaled => {}
                _ => self.spread = (self.spread * SPREAD_GROWTH).min(MAX_SPREAD),
            }
        }
        suppressed
    }

    /// The scaled strategy's window follows what is known: when the RTT or the group size
    /// changes, every pending backoff moves to the same quantile (its uniform draw) of the new
    /// distribution, counted from when it began (from now if that is past). Without
    /// this, a loss found before the first RTT echo and before any member is heard keeps a
    /// timer drawn for the initial RTT and the prior group size of 100: 50 ms and more in a
    /// ten-receiver group, the p99 of the small cells of the table. Receivers learn together
    /// (the same SPM echo, the same reports), so the order of their timers, and with it
    /// suppression, is kept. The baselines keep their draws, as PGM and NORM do.
    pub(crate) fn retime(&mut self, now: Instant, rtt: Duration) {
        if self.params.strategy != BackoffStrategy::Scaled {
            return;
        }
        let draw = self.draw();
        for (&pos, state) in &mut self.states {
            if state.phase != Phase::BackOff {
                continue;
            }
            let wait = draw.backoff(state.unit, rtt);
            let mut deadline = later(state.drawn_at, wait);
            if deadline <= now {
                // Overdue under the new window: restart the backoff from now with the same
                // draw instead of firing at once — every receiver learns at the same instant,
                // and all of the overdue ones firing together would be a NAK storm.
                state.drawn_at = now;
                deadline = later(now, wait);
            }
            if deadline != state.deadline {
                self.deadlines.remove(&(state.deadline, pos));
                state.deadline = deadline;
                self.deadlines.insert((deadline, pos));
            }
        }
    }

    /// Removes and returns (sorted) every missing position before `pos`.
    pub(crate) fn take_below(&mut self, pos: Pos) -> Vec<Pos> {
        let kept = self.states.split_off(&pos);
        let taken = std::mem::replace(&mut self.states, kept);
        self.unindex(taken)
    }

    /// Removes and returns (sorted) every missing position in `range`.
    pub(crate) fn take_range(&mut self, range: Range<Pos>) -> Vec<Pos> {
        if range.is_empty() {
            return Vec::new();
        }
        let mut tail = self.states.split_off(&range.start);
        let mut after = tail.split_off(&range.end);
        self.states.append(&mut after);
        self.unindex(tail)
    }

    /// Removes and returns (sorted) every missing position.
    pub(crate) fn take_all(&mut self) -> Vec<Pos> {
        let taken = std::mem::take(&mut self.states);
        self.unindex(taken)
    }

    fn unindex(&mut self, taken: BTreeMap<Pos, NakState>) -> Vec<Pos> {
        taken
            .into_iter()
            .map(|(pos, state)| {
                self.deadlines.remove(&(state.deadline, pos));
                pos
            })
            .collect()
    }

    /// Runs every timer due at `now`: backoffs that end are NAKed, waits that end are retried
    /// (back to backoff, one fresh draw shared by all) or, past their retry limit, given up.
    /// Waits during which the source answered this receiver (`answers`) do not use up the
    /// retry budget, only the hard cap.
    pub(crate) fn expire(
        &mut self,
        now: Instant,
        rng: &mut impl Rng,
        rtt: Duration,
        answers: Answers,
    ) -> Expired {
        let mut out = Expired::default();
        let draw = self.draw();
        let ncf_deadline = later(now, backoff::ncf_wait(rtt, draw.window(rtt)));
        let mut retry_deadline: Option<(Instant, f64)> = None;
        let params = self.params;
        let max_rounds = params
            .ncf_retries
            .saturating_add(params.data_retries)
            .saturating_add(1)
            .saturating_mul(MAX_ROUNDS_FACTOR);
        // Terminates: a BackOff that expires moves to WaitNcf, whose deadline is after `now`
        // (ncf_wait is positive), so each position is visited at most three times.
        while let Some(&(deadline, pos)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            let Some(state) = self.states.get_mut(&pos) else {
                continue;
            };
            let retry = match state.phase {
                Phase::BackOff => {
                    out.nak.push(pos);
                    state.naked = true;
                    state.phase = Phase::WaitNcf;
                    state.deadline = ncf_deadline;
                    state.waiting_since = now;
                    self.deadlines.insert((ncf_deadline, pos));
                    continue;
                }
                phase => {
                    state.rounds += 1;
                    let since = state.waiting_since;
                    let repaired = answers.repair_at.is_some_and(|at| at >= since);
                    let confirmed = answers.ncf_at.is_some_and(|at| at >= since);
                    let source_answered = repaired || (phase == Phase::WaitNcf && confirmed);
                    let within_budget = if source_answered {
                        true
                    } else if phase == Phase::WaitNcf {
                        state.ncf_timeouts += 1;
                        state.ncf_timeouts <= params.ncf_retries
                    } else {
                        state.data_timeouts += 1;
                        state.data_timeouts <= params.data_retries
                    };
                    // Retry counts alone can run out within milliseconds when the RTT is
                    // tiny or this receiver is busy; the time floor keeps a packet the source
                    // still holds from being abandoned that fast.
                    let floor_reached =
                        now.saturating_duration_since(state.detected_at) >= params.give_up_after;
                    (within_budget && state.rounds <= max_rounds) || !floor_reached
                }
            };
            if retry {
                let (deadline, unit) = *retry_deadline.get_or_insert_with(|| {
                    let unit: f64 = rng.random();
                    (later(now, draw.backoff(unit, rtt)), unit)
                });
                state.phase = Phase::BackOff;
                state.deadline = deadline;
                state.drawn_at = now;
                state.unit = unit;
                self.deadlines.insert((deadline, pos));
            } else {
                self.states.remove(&pos);
                out.lost.push(pos);
            }
        }
        if !out.nak.is_empty()
            && self.params.adaptive
            && self.params.strategy == BackoffStrategy::Srm
        {
            self.spread = (self.spread * SPREAD_DECAY).max(self.min_factor());
        }
        out.nak.sort_unstable();
        out.lost.sort_unstable();
        out
    }
}

/// Splits sorted, distinct positions into NAK range lists, oldest first: consecutive positions
/// merge into one range (split at `u16::MAX`), and each list holds at most [`MAX_RANGES`].
pub(crate) fn nak_range_lists(sorted: &[Pos]) -> Vec<Vec<SeqRange>> {
    let mut ranges = Vec::new();
    for run in runs(sorted) {
        let mut first = run.start;
        while first < run.end {
            let count = (run.end - first).min(u64::from(u16::MAX));
            ranges.push(SeqRange {
                first: seq_of(first),
                // Bounded by u16::MAX just above.
                count: count as u16,
            });
            first += count;
        }
    }
    ranges
        .chunks(MAX_RANGES)
        .map(<[SeqRange]>::to_vec)
        .collect()
}

/// The positions of a wire range, unwrapped near `reference`.
pub(crate) fn positions_of(reference: Pos, range: SeqRange) -> Range<Pos> {
    let first = super::gaps::unwrap(reference, range.first);
    first..first + u64::from(range.count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::SeqNum;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    const RTT: Duration = Duration::from_millis(10);

    fn params() -> NakParams {
        NakParams {
            backoff: BackoffParams::new(1.0, 2.0),
            ncf_retries: 2,
            data_retries: 1,
            initial_spread: 1.0,
            give_up_after: Duration::ZERO,
            strategy: BackoffStrategy::Srm,
            adaptive: true,
        }
    }

    /// A one-range list, as a foreign NAK with a single range gives.
    fn one(range: Range<Pos>) -> [Range<Pos>; 1] {
        [range]
    }

    #[expect(
        clippy::disallowed_methods,
        reason = "one real base instant per test; every later time is base + a Duration"
    )]
    fn base() -> Instant {
        Instant::now()
    }

    #[test]
    fn backoff_expiry_naks_all_due_positions_together() {
        let mut rng = SmallRng::seed_from_u64(1);
        let t0 = base();
        let mut naks = NakScheduler::new(params());
        naks.add_missing(10..13, t0, &mut rng, RTT);
        naks.add_missing(20..21, t0, &mut rng, RTT);
        assert_eq!(naks.len(), 4);
        let first = naks.next_deadline().unwrap();
        assert!(first >= t0 + Duration::from_millis(5) && first <= t0 + Duration::from_millis(15));
        assert_eq!(
            naks.expire(
                t0 + Duration::from_millis(4),
                &mut rng,
                RTT,
                Answers::default()
            ),
            Expired::default()
        );
        let out = naks.expire(
            t0 + Duration::from_millis(15),
            &mut rng,
            RTT,
            Answers::default(),
        );
        assert_eq!(out.nak, vec![10, 11, 12, 20]);
        assert!(out.lost.is_empty());
        assert_eq!(naks.phase(11), Some(Phase::WaitNcf));
    }

    #[test]
    fn retries_exhausted_gives_up() {
        let mut rng = SmallRng::seed_from_u64(2);
        let t0 = base();
        let mut naks = NakScheduler::new(params());
        naks.add_missing(5..6, t0, &mut rng, RTT);
        let mut now = t0;
        let mut sent = 0;
        let mut lost = Vec::new();
        for _ in 0..100 {
            let Some(deadline) = naks.next_deadline() else {
                break;
            };
            now = now.max(deadline);
            let out = naks.expire(now, &mut rng, RTT, Answers::default());
            sent += out.nak.len();
            lost.extend(out.lost);
        }
        assert_eq!(sent, 3, "one NAK plus ncf_retries = 2 repeats");
        assert_eq!(lost, vec![5]);
        assert_eq!(naks.len(), 0);
        assert_eq!(naks.next_deadline(), None);
    }

    #[test]
    fn ncf_moves_to_wait_data_and_data_retries_are_bounded() {
        let mut rng = SmallRng::seed_from_u64(3);
        let t0 = base();
        let mut naks = NakScheduler::new(params());
        naks.add_missing(1..3, t0, &mut rng, RTT);
        let t1 = t0 + Duration::from_millis(20);
        assert_eq!(
            naks.expire(t1, &mut rng, RTT, Answers::default()).nak,
            vec![1, 2]
        );
        assert_eq!(
            naks.on_ncf(1..3, t1, RTT),
            0,
            "already NAKed: nothing suppressed"
        );
        assert_eq!(naks.phase(1), Some(Phase::WaitData));
        assert_eq!(naks.next_deadline(), Some(t1 + backoff::repair_wait(RTT)));
        // Data wait expires: back to backoff (retry 1 of 1), NAK again, NCF, expire again: lost.
        let mut lost = Vec::new();
        for _ in 0..10 {
            let Some(now) = naks.next_deadline() else {
                break;
            };
            let out = naks.expire(now, &mut rng, RTT, Answers::default());
            if !out.nak.is_empty() {
                naks.on_ncf(1..3, now, RTT);
            }
            lost.extend(out.lost);
        }
        assert_eq!(lost, vec![1, 2]);
    }

    #[test]
    fn foreign_nak_suppresses_only_backoff() {
        let mut rng = SmallRng::seed_from_u64(4);
        let t0 = base();
        let mut naks = NakScheduler::new(params());
        naks.add_missing(1..5, t0, &mut rng, RTT);
        assert_eq!(naks.on_foreign_nak(&one(2..4), t0, RTT), 2);
        assert_eq!(naks.on_foreign_nak(&one(2..4), t0, RTT), 0, "counted once");
        assert_eq!(naks.phase(2), Some(Phase::WaitData));
        assert_eq!(naks.phase(1), Some(Phase::BackOff));
        let out = naks.expire(
            t0 + Duration::from_millis(16),
            &mut rng,
            RTT,
            Answers::default(),
        );
        assert_eq!(out.nak, vec![1, 4]);
    }

    #[test]
    fn duplicate_naks_widen_the_spread_and_own_naks_narrow_it() {
        let mut rng = SmallRng::seed_from_u64(8);
        let t0 = base();
        let mut naks = NakScheduler::new(params());
        naks.add_missing(1..3, t0, &mut rng, RTT);
        // A foreign NAK before ours suppresses but is no duplicate.
        naks.on_foreign_nak(&one(2..3), t0, RTT);
        assert_eq!(naks.spread(), 1.0);
        let t1 = t0 + Duration::from_millis(15);
        assert_eq!(
            naks.expire(t1, &mut rng, RTT, Answers::default()).nak,
            vec![1]
        );
        naks.on_foreign_nak(&one(1..2), t1, RTT);
        naks.on_foreign_nak(&one(1..2), t1, RTT);
        assert!((naks.spread() - SPREAD_GROWTH * SPREAD_GROWTH).abs() < 1e-9);
        // A wider spread means later backoffs: [C1·d, (C1 + C2·spread)·d].
        let wide: Vec<Duration> = (0..2_000)
            .map(|_| backoff::nak_backoff(&mut rng, RTT, naks.backoff_params()))
            .collect();
        let limit = Duration::from_secs_f64(0.005 * (1.0 + 2.0 * naks.spread()));
        assert!(wide.iter().all(|d| *d <= limit));
        assert!(wide.iter().any(|d| *d > Duration::from_millis(15)));
        for _ in 0..100 {
            naks.on_foreign_nak(&one(1..2), t1, RTT);
        }
        assert_eq!(naks.spread(), MAX_SPREAD);
        // Each round of own NAKs decays it, down to 1.
        for i in 0..100u64 {
            naks.add_missing(10 + i..11 + i, t1, &mut rng, RTT);
            let now = naks.next_deadline().unwrap();
            naks.expire(now, &mut rng, RTT, Answers::default());
        }
        assert_eq!(naks.spread(), 1.0);
    }

    #[test]
    #[expect(
        clippy::reversed_empty_ranges,
        reason = "reversed ranges are what this test feeds in"
    )]
    fn reversed_or_empty_ranges_are_harmless() {
        let mut rng = SmallRng::seed_from_u64(9);
        let t0 = base();
        let mut naks = NakScheduler::new(params());
        naks.add_missing(5..8, t0, &mut rng, RTT);
        assert_eq!(naks.on_ncf(7..5, t0, RTT), 0);
        assert_eq!(naks.on_foreign_nak(&one(7..5), t0, RTT), 0);
        assert!(naks.take_range(7..5).is_empty());
        assert_eq!(naks.len(), 3);
    }

    #[test]
    fn take_and_remove_keep_the_index_consistent() {
        let mut rng = SmallRng::seed_from_u64(5);
        let t0 = base();
        let mut naks = NakScheduler::new(params());
        naks.add_missing(0..10, t0, &mut rng, RTT);
        assert!(naks.remove(3));
        assert!(!naks.remove(3));
        assert_eq!(naks.take_below(2), vec![0, 1]);
        assert_eq!(naks.take_range(5..7), vec![5, 6]);
        assert_eq!(naks.len(), 5);
        assert_eq!(naks.deadlines.len(), 5);
        assert_eq!(naks.take_all(), vec![2, 4, 7, 8, 9]);
        assert_eq!(naks.next_deadline(), None);
    }

    /// Drives one packet through NAK rounds where every NAK is lost; `answered` says whether
    /// the source is meanwhile answering this receiver about other packets.
    fn rounds_until_given_up(answered: bool) -> usize {
        let mut rng = SmallRng::seed_from_u64(6);
        let t0 = base();
        let mut naks = NakScheduler::new(params());
        naks.add_missing(1..2, t0, &mut rng, RTT);
        let mut sent = 0;
        for _ in 0..1_000 {
            let Some(now) = naks.next_deadline() else {
                return sent;
            };
            let answers = Answers {
                ncf_at: answered.then_some(now),
                repair_at: answered.then_some(now),
            };
            sent += naks.expire(now, &mut rng, RTT, answers).nak.len();
        }
        panic!("never gave up");
    }

    #[test]
    fn silence_uses_the_budget_but_answered_rounds_only_the_hard_cap() {
        // ncf_retries = 2: one NAK and two repeats when the source says nothing.
        assert_eq!(rounds_until_given_up(false), 3);
        // The source answers other NAKs of ours: plain loss, retried up to the hard cap of
        // MAX_ROUNDS_FACTOR · (2 + 1 + 1) = 16 expired waits, so one NAK and 16 repeats.
        assert_eq!(rounds_until_given_up(true), 17);
    }

    #[test]
    fn exhausted_retries_wait_for_the_give_up_floor() {
        let mut rng = SmallRng::seed_from_u64(8);
        let t0 = base();
        let floor = Duration::from_secs(1);
        let mut naks = NakScheduler::new(NakParams {
            give_up_after: floor,
            ..params()
        });
        naks.add_missing(1..2, t0, &mut rng, RTT);
        let mut sent = 0;
        for _ in 0..10_000 {
            let now = naks.next_deadline().expect("still pending");
            let out = naks.expire(now, &mut rng, RTT, Answers::default());
            sent += out.nak.len();
            if !out.lost.is_empty() {
                let elapsed = now - t0;
                assert!(
                    elapsed >= floor,
                    "given up after {elapsed:?}, before the floor"
                );
                // The budget (3 NAKs) ran out long before; the floor kept the packet asked for.
                assert!(sent > 3, "only {sent} NAKs before giving up");
                return;
            }
        }
        panic!("never gave up");
    }

    #[test]
    fn an_ncf_resets_the_ncf_budget() {
        let mut rng = SmallRng::seed_from_u64(7);
        let t0 = base();
        let mut naks = NakScheduler::new(NakParams {
            backoff: BackoffParams::new(1.0, 2.0),
            ncf_retries: 1,
            data_retries: 10,
            initial_spread: 1.0,
            give_up_after: Duration::ZERO,
            strategy: BackoffStrategy::Srm,
            adaptive: true,
        });
        naks.add_missing(1..2, t0, &mut rng, RTT);
        let mut ncf_every_other = false;
        let mut sent = 0;
        for _ in 0..200 {
            let Some(now) = naks.next_deadline() else {
                break;
            };
            let out = naks.expire(now, &mut rng, RTT, Answers::default());
            assert!(
                out.lost.is_empty() || sent > 6,
                "gave up too early after {sent} NAKs"
            );
            if !out.lost.is_empty() {
                break;
            }
            if !out.nak.is_empty() {
                sent += 1;
                // Every second NAK is confirmed (and the data then lost): the NCF budget of 1
                // never runs out, the data budget of 10 does.
                if ncf_every_other {
                    naks.on_ncf(1..2, now, RTT);
                }
                ncf_every_other = !ncf_every_other;
            }
        }
        assert_eq!(naks.len(), 0, "given up in the end");
        assert!(sent > 10, "{sent} NAKs");
    }

    fn scaled(adaptive: bool) -> NakParams {
        NakParams {
            strategy: BackoffStrategy::Scaled,
            adaptive,
            ..params()
        }
    }

    /// The backoff of one new gap, drawn by a scheduler in its current state.
    fn one_draw(naks: &mut NakScheduler, rng: &mut SmallRng, at: Instant, pos: Pos) -> Duration {
        naks.add_missing(pos..pos + 1, at, rng, RTT);
        let deadline = naks.states[&pos].deadline;
        naks.remove(pos);
        deadline - at
    }

    #[test]
    fn scaled_window_grows_with_log_group_size() {
        let mut rng = SmallRng::seed_from_u64(11);
        let t0 = base();
        let d = RTT / 2;
        for (group, lambda) in [(1.0, 1.0), (1000.0, 1000f64.ln() + 1.0)] {
            let mut naks = NakScheduler::new(scaled(false));
            naks.set_group_size(group);
            let window = d.mul_f64(backoff::SCALED_WINDOW_FACTOR * lambda);
            let draws: Vec<Duration> = (0..2_000)
                .map(|i| one_draw(&mut naks, &mut rng, t0, i))
                .collect();
            assert!(
                draws.iter().all(|t| *t <= window),
                "{group}: beyond {window:?}"
            );
            assert!(draws.iter().any(|t| *t > window.mul_f64(0.95)));
        }
    }

    #[test]
    fn a_solo_requester_drops_to_the_floor_and_a_duplicate_doubles_it() {
        let mut rng = SmallRng::seed_from_u64(12);
        let t0 = base();
        let mut naks = NakScheduler::new(scaled(true));
        naks.set_group_size(1000.0);
        assert_eq!(naks.spread(), 1.0);
        // NAK packet 1; nobody duplicates it; the repair arrives: this receiver leads.
        naks.add_missing(1..2, t0, &mut rng, RTT);
        let now = naks.next_deadline().unwrap();
        assert_eq!(
            naks.expire(now, &mut rng, RTT, Answers::default()).nak,
            vec![1]
        );
        assert!(naks.remove(1));
        let floor = 1.0 / (backoff::SCALED_WINDOW_FACTOR * backoff::lambda(1000.0));
        assert!((naks.spread() - floor).abs() < 1e-12);
        // Its timers now end within one distance: before anyone else's in a large group.
        for pos in 10..200 {
            assert!(one_draw(&mut naks, &mut rng, now, pos) <= RTT / 2);
        }
        // Packet 2 is NAKed and duplicated (twice: counted once): the window doubles.
        naks.add_missing(2..3, now, &mut rng, RTT);
        let later_now = naks.next_deadline().unwrap();
        naks.expire(later_now, &mut rng, RTT, Answers::default());
        naks.on_foreign_nak(&one(2..3), later_now, RTT);
        naks.on_foreign_nak(&one(2..3), later_now, RTT);
        assert!((naks.spread() - floor * SCALED_GROWTH).abs() < 1e-12);
        // Its repair does not make it the leader again: the NAK was not alone.
        naks.remove(2);
        assert!((naks.spread() - floor * SCALED_GROWTH).abs() < 1e-12);
    }

    #[test]
    fn pending_backoffs_follow_the_group_size_and_rtt_learned() {
        let mut rng = SmallRng::seed_from_u64(15);
        let t0 = base();
        let mut naks = NakScheduler::new(scaled(true));
        naks.add_missing(1..2, t0, &mut rng, RTT);
        let unit = naks.states[&1].unit;
        let drawn = naks.states[&1].deadline - t0;
        // Drawn for the prior of 100 members and the initial RTT.
        assert_eq!(drawn, naks.draw().backoff(unit, RTT));
        // Ten members and a 4 ms RTT become known 1 ms later: the same quantile of the new,
        // narrower distribution, still counted from detection.
        let now = t0 + Duration::from_millis(1);
        let rtt = Duration::from_millis(4);
        naks.set_group_size(10.0);
        naks.retime(now, rtt);
        let expected = naks.draw().backoff(unit, rtt);
        assert!(expected < drawn);
        assert_eq!(naks.next_deadline(), Some((t0 + expected).max(now)));
        // Learned long after it would have fired: the backoff restarts from then with the same
        // draw rather than firing at once (every receiver learns at the same instant).
        naks.add_missing(2..3, now, &mut rng, Duration::from_secs(1));
        let unit = naks.states[&2].unit;
        let much_later = now + Duration::from_millis(500);
        naks.retime(much_later, rtt);
        let wait = naks.draw().backoff(unit, rtt);
        assert_eq!(naks.states[&2].deadline, much_later + wait);
        assert!(wait > Duration::ZERO);
        // Only backoffs move: a NAKed packet keeps its NCF wait.
        let ncf_wait_until = naks
            .states
            .values()
            .map(|state| state.deadline)
            .max()
            .unwrap();
        naks.expire(ncf_wait_until, &mut rng, rtt, Answers::default());
        let waits: Vec<Instant> = naks.deadlines.iter().map(|&(at, _)| at).collect();
        naks.retime(ncf_wait_until, Duration::from_millis(40));
        let after: Vec<Instant> = naks.deadlines.iter().map(|&(at, _)| at).collect();
        assert!(
            naks.states
                .values()
                .all(|state| state.phase != Phase::BackOff)
        );
        assert_eq!(waits, after);
    }

    #[test]
    fn baselines_are_not_retimed() {
        let mut rng = SmallRng::seed_from_u64(16);
        let t0 = base();
        let mut norm = NakScheduler::new(NakParams {
            strategy: BackoffStrategy::NormLike,
            adaptive: false,
            ..params()
        });
        norm.add_missing(1..2, t0, &mut rng, RTT);
        let before = norm.next_deadline();
        norm.retime(t0, Duration::from_millis(1));
        assert_eq!(norm.next_deadline(), before);
    }

    /// One shared loss repaired after `foreign` NAKs from other members suppressed ours.
    fn suppressed_loss(
        naks: &mut NakScheduler,
        rng: &mut SmallRng,
        at: Instant,
        pos: Pos,
        foreign: usize,
    ) {
        naks.add_missing(pos..pos + 1, at, rng, RTT);
        for _ in 0..foreign {
            naks.on_foreign_nak(&one(pos..pos + 1), at, RTT);
        }
        assert!(naks.remove(pos));
    }

    #[test]
    fn others_defer_to_a_requester_heard_alone() {
        let mut rng = SmallRng::seed_from_u64(17);
        let t0 = base();
        let d = RTT / 2;
        let mut naks = NakScheduler::new(scaled(true));
        // A small group: its window is a few distances wide, so draws below 2·d are common.
        naks.set_group_size(2.0);
        let undeferred: Vec<Duration> = (100..600)
            .map(|pos| one_draw(&mut naks, &mut rng, t0, pos))
            .collect();
        assert!(undeferred.iter().any(|t| *t < d * 2));
        // One other member asked alone: it is the requester, and this receiver's backoffs now
        // start two distances late, after the requester's NAK has had time to arrive.
        suppressed_loss(&mut naks, &mut rng, t0, 1, 1);
        for pos in 100..600 {
            assert!(one_draw(&mut naks, &mut rng, t0, pos) >= d.mul_f64(DEFER_DISTANCES));
        }
        // Two NAKs for the next loss: no single requester, no deferring.
        suppressed_loss(&mut naks, &mut rng, t0, 2, 2);
        assert!(
            (100..600)
                .map(|pos| one_draw(&mut naks, &mut rng, t0, pos))
                .any(|t| t < d * 2)
        );
        // A requester itself never defers, even having heard another alone before.
        suppressed_loss(&mut naks, &mut rng, t0, 3, 1);
        naks.add_missing(4..5, t0, &mut rng, RTT);
        let now = naks.next_deadline().unwrap();
        assert_eq!(
            naks.expire(now, &mut rng, RTT, Answers::default()).nak,
            vec![4]
        );
        assert!(naks.remove(4));
        for pos in 100..600 {
            assert!(one_draw(&mut naks, &mut rng, now, pos) <= d);
        }
    }

    #[test]
    fn of_two_colliding_requesters_the_higher_id_yields() {
        let mut rng = SmallRng::seed_from_u64(18);
        let t0 = base();
        let d = RTT / 2;
        let floor = 1.0 / (backoff::SCALED_WINDOW_FACTOR * backoff::lambda(1000.0));
        let requester = |rng: &mut SmallRng| {
            let mut naks = NakScheduler::new(scaled(true));
            naks.set_group_size(1000.0);
            naks.add_missing(1..2, t0, rng, RTT);
            let now = naks.next_deadline().unwrap();
            naks.expire(now, rng, RTT, Answers::default());
            assert!(naks.remove(1));
            assert!((naks.spread() - floor).abs() < 1e-12);
            // Both NAK the next shared loss and hear each other.
            naks.add_missing(2..3, now, rng, RTT);
            let now = naks.next_deadline().unwrap();
            assert_eq!(naks.expire(now, rng, RTT, Answers::default()).nak, vec![2]);
            (naks, now)
        };
        // The other member's id is higher: this one keeps its window, and leads on.
        let (mut keeps, now) = requester(&mut rng);
        keeps.on_foreign_nak_from(&one(2..3), now, RTT, false);
        assert!(keeps.remove(2));
        assert!((keeps.spread() - floor).abs() < 1e-12);
        assert!((10..200).all(|pos| one_draw(&mut keeps, &mut rng, now, pos) <= d));
        // The other's id is lower: this one yields — a wider window, started two distances
        // late, so it no longer races the requester.
        let (mut yields, now) = requester(&mut rng);
        yields.on_foreign_nak_from(&one(2..3), now, RTT, true);
        assert!(yields.remove(2));
        assert!((yields.spread() - floor * SCALED_GROWTH).abs() < 1e-12);
        for pos in 10..200 {
            assert!(one_draw(&mut yields, &mut rng, now, pos) >= d.mul_f64(DEFER_DISTANCES));
        }
    }

    #[test]
    fn becoming_the_requester_shortens_pending_backoffs() {
        let mut rng = SmallRng::seed_from_u64(19);
        let t0 = base();
        let mut naks = NakScheduler::new(scaled(true));
        naks.set_group_size(1000.0);
        // Packet 1 NAKed alone; packet 2 found missing before its repair, on the wide window.
        naks.add_missing(1..2, t0, &mut rng, RTT);
        let now = naks.next_deadline().unwrap();
        naks.expire(now, &mut rng, RTT, Answers::default());
        naks.add_missing(2..3, now, &mut rng, RTT);
        let wide = naks.states[&2].deadline;
        assert!(wide > now + RTT / 2);
        // The repair of 1 elects this receiver: 2 moves to the requester's window of one
        // distance (from when it was found missing, or from now if that is past).
        assert!(naks.remove(1));
        naks.retime_if_learned(now, RTT);
        assert!(naks.states[&2].deadline <= now + RTT / 2);
        // Nothing new learned: nothing moves.
        let before = naks.states[&2].deadline;
        naks.retime_if_learned(now + RTT, Duration::from_millis(40));
        assert_eq!(naks.states[&2].deadline, before);
    }

    #[test]
    fn without_self_tuning_nothing_is_learned() {
        let mut rng = SmallRng::seed_from_u64(13);
        let t0 = base();
        let mut naks = NakScheduler::new(scaled(false));
        naks.add_missing(1..2, t0, &mut rng, RTT);
        let now = naks.next_deadline().unwrap();
        naks.expire(now, &mut rng, RTT, Answers::default());
        naks.on_foreign_nak(&one(1..2), now, RTT);
        naks.remove(1);
        assert_eq!(naks.spread(), 1.0);
    }

    #[test]
    fn baselines_ignore_distance_or_group() {
        let mut rng = SmallRng::seed_from_u64(14);
        let t0 = base();
        let mut pgm = NakScheduler::new(NakParams {
            strategy: BackoffStrategy::PgmLike,
            adaptive: false,
            ..params()
        });
        pgm.set_group_size(5.0);
        let draws: Vec<Duration> = (0..2_000)
            .map(|i| one_draw(&mut pgm, &mut rng, t0, i))
            .collect();
        // 50 ms whatever the 10 ms RTT says.
        assert!(draws.iter().all(|t| *t <= backoff::PGM_BACKOFF_WINDOW));
        assert!(draws.iter().any(|t| *t > Duration::from_millis(45)));
        assert!(draws.iter().any(|t| *t < Duration::from_millis(5)));
        let mut norm = NakScheduler::new(NakParams {
            strategy: BackoffStrategy::NormLike,
            adaptive: false,
            ..params()
        });
        // The group size setting does not move NORM's fixed 1000.
        norm.set_group_size(2.0);
        let draws: Vec<Duration> = (0..2_000)
            .map(|i| one_draw(&mut norm, &mut rng, t0, i))
            .collect();
        assert!(draws.iter().all(|t| *t <= RTT * 4));
        // Truncated exponential for G = 1000: the mass piles up near the top (mean ≈ 0.87·T).
        let mean = draws.iter().sum::<Duration>() / draws.len() as u32;
        assert!(
            mean > RTT * 4 * 8 / 10 && mean < RTT * 4 * 95 / 100,
            "mean {mean:?}"
        );
    }

    #[test]
    fn range_lists_merge_split_and_chunk() {
        let lists = nak_range_lists(&[3, 4, 5, 9]);
        assert_eq!(
            lists,
            vec![vec![
                SeqRange {
                    first: SeqNum(3),
                    count: 3
                },
                SeqRange {
                    first: SeqNum(9),
                    count: 1
                },
            ]]
        );
        let long: Vec<Pos> = (0..70_000).collect();
        let lists = nak_range_lists(&long);
        assert_eq!(lists.len(), 1);
        assert_eq!(lists[0][0].count, u16::MAX);
        assert_eq!(lists[0][1].first, SeqNum(u32::from(u16::MAX)));
        assert_eq!(u32::from(lists[0][1].count), 70_000 - u32::from(u16::MAX));
        let sparse: Vec<Pos> = (0..150).map(|i| i * 2).collect();
        let lists = nak_range_lists(&sparse);
        assert_eq!(
            lists.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![64, 64, 22]
        );
        assert_eq!(lists[1][0].first, SeqNum(128));
    }
}
