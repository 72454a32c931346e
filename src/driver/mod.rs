//! The engine: one thread per group that drives the protocol core with real sockets and real
//! time. This module and its children are the only place with I/O, threads and `Instant::now`.
//!
//! Each turn of the engine loop: take application messages from the send ring while the core
//! accepts them; read the socket in batches until it is drained (at most 64 `recvmmsg` calls,
//! none while the event ring is full); then run due timers, so they act on every answer already
//! queued; have the core write its transmits straight into GSO batches; push the core's events
//! into the event ring; serve
//! a pending stats request. When a turn made no progress, the engine announces it sleeps, checks
//! once more for work, and blocks in `ppoll` on the socket and a wake socket until the core's next
//! deadline.
//!
//! | from → to | mechanism | bounded | busy-path cost |
//! |---|---|---|---|
//! | app `send` → engine | [`Ring`] of `Bytes` + [`EngineWaker`] | `send_queue_messages` | lock + fence, no syscall unless the engine sleeps |
//! | engine → app `recv` | [`Ring`] of `Event` + `Notify` | `recv_queue_events` | lock + fence, no syscall unless a reader is parked |
//! | app `stats` → engine → app | request counter + `Notify` | one snapshot | wakes the engine |
//! | app `leave`/drop → engine | shutdown flag + [`EngineWaker`] | linger bounds below | — |
//!
//! Invariants:
//! - Delivered messages are never dropped: when the event ring is full the engine keeps the
//!   event, stops reading the socket (the kernel buffer, then the protocol's NAKs, absorb the
//!   overload) and sleeps until a reader has freed half of the ring.
//! - Every `now` given to the core comes from [`clock::now`] and never decreases.
//! - If the engine thread ends for any reason (leave, drop, panic), both rings are closed, so no
//!   application thread stays blocked.

mod clock;
mod socket;
mod waker;

use crate::config::GroupConfig;
use crate::error::JoinError;
use crate::proto::{Destination, Event, Session, SourceId};
use crate::ring::{PushError, Ring};
use crate::stats::{SocketStats, Stats};
use bytes::Bytes;
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use socket::{Flushed, GroupSocket, TxBatch};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use waker::{EngineWaker, Interest, WakeSignal};

pub(crate) use clock::now;

/// Most socket reads (each one `recvmmsg`, up to `quinn_udp::BATCH_SIZE` datagrams) per engine
/// turn. A turn normally drains the socket before running timers, so that a timer never acts on
/// stale news when the answer (a repair, an NCF) already waits in the queue; the cap keeps a flood
/// from starving sending and timers.
const RECV_BATCHES_PER_TURN: usize = 64;
/// Datagrams handed to the socket per engine turn, so that a large burst does not starve the
/// receive side (our own NAK-carrying peers) for long.
const TRANSMITS_PER_TURN: usize = 1024;
/// Shortest sleep when the core reports a deadline already due but the turn made no progress:
/// keeps a core that cannot act yet (e.g. a blocked socket) from spinning the CPU.
const MIN_SLEEP: Duration = Duration::from_micros(20);
/// Longest `leave()` may take to send what was queued and serve repairs.
const LEAVE_BOUND: Duration = Duration::from_secs(30);
/// Longest dropping a `ReliableGroup` without `leave()` may take.
const DROP_BOUND: Duration = Duration::from_secs(5);
/// Longest `stats()` waits for the engine to publish a fresh snapshot.
const STATS_WAIT: Duration = Duration::from_secs(1);

/// How the engine is asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shutdown {
    /// `ReliableGroup::leave`: drain and linger, bounded by [`LEAVE_BOUND`].
    Leave = 1,
    /// `Drop`: the same, bounded by [`DROP_BOUND`].
    Drop = 2,
}

/// State shared by the application threads and the engine.
pub(crate) struct Shared {
    /// Application → engine: messages to send.
    pub(crate) messages: Ring<Bytes>,
    /// Engine → application: delivered messages and other events.
    pub(crate) events: Ring<Event>,
    waker: EngineWaker,
    /// Set by the engine when it stalled on a full event ring.
    event_room_wanted: AtomicBool,
    /// 0 = run, else a [`Shutdown`] code.
    shutdown: AtomicU8,
    /// The linger `leave_with_linger` asked for, in nanoseconds; `u64::MAX` for the
    /// configured one. Written before `shutdown`, read after it.
    linger_override: AtomicU64,
    stats: Mutex<Stats>,
    stats_requested: AtomicU64,
    stats_published: AtomicU64,
    stats_ready: crate::ring::Notify,
    engine_running: AtomicBool,
}

impl Shared {
    /// Call after pushing a message: wakes the engine if it sleeps.
    pub(crate) fn message_pushed(&self) {
        self.waker.wake();
    }

    /// Call after popping an event: wakes an engine stalled on a full event ring once half of
    /// the ring is free.
    pub(crate) fn event_popped(&self) {
        if self.event_room_wanted.load(Ordering::Relaxed)
            && self.event_room_available()
            && self.event_room_wanted.swap(false, Ordering::SeqCst)
        {
            self.waker.wake();
        }
    }

    fn event_room_available(&self) -> bool {
        self.events.len() <= self.events.capacity() / 2
    }

    /// A fresh snapshot of the counters (waits for the engine, at most [`STATS_WAIT`]).
    pub(crate) fn stats(&self) -> Stats {
        let ticket = self.stats_requested.fetch_add(1, Ordering::SeqCst) + 1;
        self.waker.wake();
        self.stats_ready.wait_until(Some(now() + STATS_WAIT), || {
            self.stats_published.load(Ordering::Acquire) >= ticket
                || !self.engine_running.load(Ordering::Acquire)
        });
        *self.stats.lock()
    }

    /// Asks the engine to stop with this linger instead of the configured one (before
    /// [`Shared::request_shutdown`]).
    pub(crate) fn override_linger(&self, linger: Duration) {
        let nanos = u64::try_from(linger.as_nanos()).unwrap_or(u64::MAX - 1);
        self.linger_override.store(nanos, Ordering::SeqCst);
    }

    /// Asks the engine to stop (the first request wins).
    pub(crate) fn request_shutdown(&self, how: Shutdown) {
        let _ = self
            .shutdown
            .compare_exchange(0, how as u8, Ordering::SeqCst, Ordering::SeqCst);
        self.waker.wake();
    }

    fn shutdown_requested(&self) -> Option<Shutdown> {
        match self.shutdown.load(Ordering::Acquire) {
            0 => None,
            1 => Some(Shutdown::Leave),
            _ => Some(Shutdown::Drop),
        }
    }
}

/// A started engine: what `ReliableGroup` keeps.
pub(crate) struct Started {
    /// The rings and flags shared with the engine.
    pub(crate) shared: Arc<Shared>,
    /// The engine thread.
    pub(crate) thread: JoinHandle<()>,
    /// This member's source id.
    pub(crate) id: SourceId,
    /// Largest message `send` accepts.
    pub(crate) max_message_len: usize,
}

/// Joins made by this process so far: mixed into a fixed seed so that members joined with the
/// same seed (an easy mistake in tests and examples) still get distinct ids and backoff draws,
/// while a program that joins in a fixed order stays replayable.
static JOINS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The session seed for a configured seed: the seed mixed with this process's join count
/// (SplitMix64 finalizer, so consecutive counts give unrelated seeds).
fn seed_for_join(seed: u64) -> u64 {
    let n = JOINS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut z = seed ^ n.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Validates `config`, opens and joins the socket, and starts the engine thread.
pub(crate) fn start(config: &GroupConfig) -> Result<Started, JoinError> {
    let settings = config.validate_network()?;
    let socket = GroupSocket::open(config)?;
    let seed = match settings.rng_seed {
        Some(seed) => seed_for_join(seed),
        None => SmallRng::from_os_rng().next_u64(),
    };
    let max_message_len = settings.max_message_len;
    let max_datagram = settings.max_datagram;
    let session = Session::new(settings, seed, now());
    let id = session.id();
    let (waker, signal) = waker::wake_pair().map_err(|source| JoinError::Socket {
        action: "create the engine's wake-up socket pair".into(),
        group: config.group,
        source,
    })?;
    let shared = Arc::new(Shared {
        messages: Ring::with_capacity(config.send_queue_messages),
        events: Ring::with_capacity(config.recv_queue_events),
        waker,
        event_room_wanted: AtomicBool::new(false),
        shutdown: AtomicU8::new(0),
        linger_override: AtomicU64::new(u64::MAX),
        stats: Mutex::new(Stats::default()),
        stats_requested: AtomicU64::new(0),
        stats_published: AtomicU64::new(0),
        stats_ready: crate::ring::Notify::default(),
        engine_running: AtomicBool::new(true),
    });
    let granted = socket.granted();
    let socket_stats = SocketStats {
        recv_buffer: granted.recv_buffer,
        send_buffer: granted.send_buffer,
        gro_segments: granted.gro_segments,
        ..SocketStats::default()
    };
    let engine = Engine {
        session,
        socket,
        signal,
        shared: Arc::clone(&shared),
        tx: TxBatch::default(),
        tx_blocked: false,
        pending_event: None,
        loss: InjectedLoss {
            // A stream distinct from the core's, from the same seed.
            rng: SmallRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15),
            rx: config.inject_loss_rx,
            tx: config.inject_loss_tx,
        },
        socket_stats,
        max_datagram,
        linger_quiet: config.leave_linger,
        phase: Phase::Running,
    };
    let thread = std::thread::Builder::new()
        .name(format!("rmcast {}", config.group))
        .spawn(move || engine.run())
        .map_err(JoinError::Thread)?;
    Ok(Started {
        shared,
        thread,
        id,
        max_message_len,
    })
}

/// Testing-only loss (`GroupConfig::inject_loss`), drawn from a seeded stream.
struct InjectedLoss {
    rng: SmallRng,
    rx: f64,
    tx: f64,
}

impl InjectedLoss {
    fn drop_rx(&mut self) -> bool {
        self.rx > 0.0 && self.rng.random::<f64>() < self.rx
    }

    fn drop_tx(&mut self) -> bool {
        self.tx > 0.0 && self.rng.random::<f64>() < self.tx
    }
}

/// Where the engine is in its life.
#[derive(Clone, Copy, Debug)]
enum Phase {
    Running,
    /// Shutdown asked: sending what the application queued before it.
    Draining {
        give_up: Instant,
    },
    /// `Session::leave` called: waiting for the core to be idle.
    Flushing {
        give_up: Instant,
    },
    /// Idle: answering late NAKs until none came for `linger_quiet`.
    Lingering {
        give_up: Instant,
        quiet_since: Instant,
        naks_seen: u64,
    },
}

impl Phase {
    fn give_up(self) -> Option<Instant> {
        match self {
            Phase::Running => None,
            Phase::Draining { give_up }
            | Phase::Flushing { give_up }
            | Phase::Lingering { give_up, .. } => Some(give_up),
        }
    }
}

/// The engine thread's state.
struct Engine {
    session: Session,
    socket: GroupSocket,
    signal: WakeSignal,
    shared: Arc<Shared>,
    tx: TxBatch,
    /// The socket refused the current batch: wait for it to be writable.
    tx_blocked: bool,
    /// An event that did not fit in the full event ring.
    pending_event: Option<Event>,
    loss: InjectedLoss,
    socket_stats: SocketStats,
    max_datagram: usize,
    /// After leave, linger until no NAK came for this long (`GroupConfig::leave_linger`).
    linger_quiet: Duration,
    phase: Phase,
}

/// Closes the rings when the engine thread ends, even by panic, so no application thread waits
/// forever.
struct CloseOnExit(Arc<Shared>);

impl Drop for CloseOnExit {
    fn drop(&mut self) {
        self.0.engine_running.store(false, Ordering::Release);
        self.0.messages.close();
        self.0.events.close();
        self.0.stats_ready.notify_all();
    }
}

impl Engine {
    fn run(mut self) {
        let _close = CloseOnExit(Arc::clone(&self.shared));
        loop {
            let mut progress = self.accept_messages(now());
            if self.pending_event.is_none() {
                progress |= self.receive();
            }
            let now = now();
            if self.session.poll_timeout().is_some_and(|due| due <= now) {
                self.session.handle_timeout(now);
            }
            progress |= self.transmit(now);
            progress |= self.deliver_events();
            self.serve_stats_request();
            if self.shutdown_step(now) {
                break;
            }
            if !progress {
                self.sleep(now);
            }
        }
        self.publish_stats();
        tracing::debug!(group = %self.socket.group(), "engine stopped");
    }

    /// Moves application messages into the core while it accepts them.
    fn accept_messages(&mut self, now: Instant) -> bool {
        let mut accepted = false;
        while self.session.can_send() {
            let Ok(message) = self.shared.messages.try_pop() else {
                break;
            };
            accepted = true;
            if let Err(err) = self.session.send(now, message) {
                // Sizes were checked by `ReliableGroup::send`; this is a send after `leave`.
                tracing::debug!(%err, "message refused by the core");
            }
        }
        accepted
    }

    /// Reads batches into the core until the socket is drained, at most
    /// [`RECV_BATCHES_PER_TURN`].
    fn receive(&mut self) -> bool {
        let Engine {
            socket,
            session,
            loss,
            socket_stats,
            ..
        } = self;
        let mut received = false;
        for _ in 0..RECV_BATCHES_PER_TURN {
            let now = now();
            let result = socket.recv_batch(|from, datagram| {
                if loss.drop_rx() {
                    socket_stats.injected_rx_drops += 1;
                    return;
                }
                session.handle_datagram(now, from, datagram);
            });
            match result {
                Ok(0) => break,
                Ok(_) => received = true,
                Err(err) => {
                    tracing::debug!(%err, "receive failed");
                    break;
                }
            }
        }
        received
    }

    /// Drains the core's transmits into the socket, at most [`TRANSMITS_PER_TURN`]. The core
    /// writes each datagram straight into the GSO batch.
    fn transmit(&mut self, now: Instant) -> bool {
        if self.tx_blocked {
            if self.tx.flush(&self.socket) == Flushed::Blocked {
                return false;
            }
            self.tx_blocked = false;
        }
        let mut sent = false;
        for _ in 0..TRANSMITS_PER_TURN {
            if !self.tx.may_join(&self.socket, self.max_datagram)
                && self.tx.flush(&self.socket) == Flushed::Blocked
            {
                self.tx_blocked = true;
                return sent;
            }
            let start = self.tx.buffer().len();
            let Some(destination) = self.session.poll_transmit_into(now, self.tx.buffer()) else {
                break;
            };
            sent = true;
            if self.loss.drop_tx() {
                self.socket_stats.injected_tx_drops += 1;
                self.tx.buffer().truncate(start);
                continue;
            }
            let destination = match destination {
                Destination::Group => self.socket.group(),
                Destination::Peer(peer) => peer,
            };
            if self.tx.commit(&self.socket, start, destination) == Flushed::Blocked {
                self.tx_blocked = true;
                return sent;
            }
        }
        if self.tx.flush(&self.socket) == Flushed::Blocked {
            self.tx_blocked = true;
        }
        sent
    }

    /// Moves the core's events into the event ring until it is full.
    fn deliver_events(&mut self) -> bool {
        let mut delivered = false;
        loop {
            let Some(event) = self
                .pending_event
                .take()
                .or_else(|| self.session.poll_event())
            else {
                break;
            };
            if !matches!(self.phase, Phase::Running) {
                // Leaving: nobody can receive any more (leave and drop own the group).
                continue;
            }
            match self.shared.events.try_push(event) {
                Ok(()) => delivered = true,
                Err(PushError::Full(event)) => {
                    self.pending_event = Some(event);
                    self.shared.event_room_wanted.store(true, Ordering::SeqCst);
                    break;
                }
                Err(PushError::Closed(_)) => {}
            }
        }
        delivered
    }

    fn stats(&self) -> Stats {
        let mut stats = self.session.stats();
        let mut socket = self.socket_stats;
        socket.gso_segments = self
            .socket
            .max_gso_segments()
            .min((65_507 / self.max_datagram).max(1)) as u64;
        socket.send_errors = self.tx.errors;
        stats.socket = socket;
        stats
    }

    fn publish_stats(&self) {
        let requested = self.shared.stats_requested.load(Ordering::Acquire);
        *self.shared.stats.lock() = self.stats();
        self.shared
            .stats_published
            .store(requested, Ordering::Release);
        self.shared.stats_ready.notify_all();
    }

    fn serve_stats_request(&self) {
        if self.stats_request_pending() {
            self.publish_stats();
        }
    }

    fn stats_request_pending(&self) -> bool {
        self.shared.stats_requested.load(Ordering::Acquire)
            != self.shared.stats_published.load(Ordering::Acquire)
    }

    /// Advances the shutdown phases; `true` when the engine should stop.
    fn shutdown_step(&mut self, now: Instant) -> bool {
        match self.phase {
            Phase::Running => {
                let Some(how) = self.shared.shutdown_requested() else {
                    return false;
                };
                let bound = match how {
                    Shutdown::Leave => LEAVE_BOUND,
                    Shutdown::Drop => DROP_BOUND,
                };
                let linger = self.shared.linger_override.load(Ordering::SeqCst);
                if linger != u64::MAX {
                    self.linger_quiet = Duration::from_nanos(linger);
                }
                // No more messages accepted; those already queued are still sent.
                self.shared.messages.close();
                self.shared.events.close();
                self.phase = Phase::Draining {
                    give_up: now + bound,
                };
                false
            }
            Phase::Draining { give_up } => {
                if now >= give_up {
                    return true;
                }
                // The ring is closed, so once empty it stays empty.
                if self.shared.messages.len() == 0 {
                    self.session.leave(now);
                    self.phase = Phase::Flushing { give_up };
                }
                false
            }
            Phase::Flushing { give_up } => {
                if now >= give_up {
                    return true;
                }
                if self.session.is_idle() && self.tx.is_empty() {
                    // A member that never sent data has nothing anyone could ask it to repair.
                    if self.session.stats().tx.odata.packets == 0 {
                        return true;
                    }
                    self.phase = Phase::Lingering {
                        give_up,
                        quiet_since: now,
                        naks_seen: self.session.stats().recovery.naks_received,
                    };
                }
                false
            }
            Phase::Lingering {
                give_up,
                quiet_since,
                naks_seen,
            } => {
                let naks = self.session.stats().recovery.naks_received;
                if naks != naks_seen || !self.session.is_idle() {
                    self.phase = Phase::Lingering {
                        give_up,
                        quiet_since: now,
                        naks_seen: naks,
                    };
                    return now >= give_up;
                }
                now >= give_up || now.saturating_duration_since(quiet_since) >= self.linger_quiet
            }
        }
    }

    /// Whether work arrived that the next turn can act on (checked after announcing sleep).
    fn work_waiting(&self) -> bool {
        (self.session.can_send() && self.shared.messages.len() > 0)
            || (matches!(self.phase, Phase::Running) && self.shared.shutdown_requested().is_some())
            || self.stats_request_pending()
            || (self.pending_event.is_some() && self.shared.event_room_available())
    }

    /// Blocks until the socket is ready, a wake-up arrives, or the next deadline.
    fn sleep(&mut self, now: Instant) {
        let mut deadline = self.session.poll_timeout();
        let phase_deadline = match self.phase {
            Phase::Running => None,
            Phase::Draining { .. } => Some(now), // poll the closed ring again promptly
            Phase::Flushing { give_up } => Some(give_up),
            Phase::Lingering {
                give_up,
                quiet_since,
                ..
            } => Some(give_up.min(quiet_since + self.linger_quiet)),
        };
        if let Some(extra) = phase_deadline.or(self.phase.give_up()) {
            deadline = Some(deadline.map_or(extra, |due| due.min(extra)));
        }
        let timeout = deadline.map(|due| due.saturating_duration_since(now).max(MIN_SLEEP));
        self.shared.waker.about_to_sleep();
        if self.work_waiting() {
            self.shared.waker.awake();
            return;
        }
        let interest = Interest {
            readable: self.pending_event.is_none(),
            writable: self.tx_blocked,
        };
        if let Err(err) = waker::wait(self.socket.raw_fd(), &self.signal, interest, timeout) {
            tracing::warn!(%err, "engine wait failed");
            std::thread::sleep(MIN_SLEEP);
        }
        self.shared.waker.awake();
    }
}

#[cfg(test)]
mod tests {
    use super::seed_for_join;

    #[test]
    fn joins_with_one_fixed_seed_get_distinct_session_seeds() {
        let seeds: Vec<u64> = (0..64).map(|_| seed_for_join(7)).collect();
        let mut unique = seeds.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), seeds.len(), "two joins with seed 7 collided");
        assert!(
            seeds.iter().all(|&s| s != 7),
            "the seed must be mixed, not passed through"
        );
    }
}
