//! Deterministic multicast network simulator: group members ([`Member`], normally the real
//! protocol core through [`SessionMember`]) on a tree of routers and lossy links, in virtual
//! time, replayable from one seed.
//!
//! A run is a [`Scenario`] (topology + configurations + send plans + scripted actions + goals)
//! and a master seed. [`Sim`] keeps a heap of events keyed by `(virtual time, insertion order)`
//! — datagram arrivals at routers and hosts, member timers, application wake-ups, scripted
//! actions — and each step pops the earliest, feeds it to its vertex, and for a host drains the
//! member's outputs in contract order (transmits, events, next timeout). Multicast is copied at
//! every router onto every link but the one it came in on, so loss on a shared link removes a
//! datagram for the whole subtree below it. After every run the oracles (`sim/check.rs`, see
//! [`Delivery`]) decide whether it passed; [`Scenario::sweep`] runs many seeds and prints the
//! one to replay.
//!
//! Invariants: the only clock read is the epoch taken when a [`Sim`] is created, and reports
//! and traces use time since that epoch, so a run is a pure function of its scenario and seed;
//! every random choice comes from an RNG seeded by mixing the master seed with the chooser's
//! id; every loop is bounded (virtual deadline, step budget, drain limits).
//!
//! Besides the oracles, each run measures recovery latency as the network saw it
//! (`sim/recovery.rs`: how much later than its original each repaired packet arrived), and
//! [`table`] pools runs into the NAK-suppression comparison of `docs/suppression_table.md`.
//!
//! Environment: `RMCAST_SIM_SEED=<n>` replays one seed, `RMCAST_SIM_RUNS=<n>` sets the number of
//! seeds per sweep, `RMCAST_SIM_TRACE=1` prints the event trace of a failing run.

mod agenda;
mod check;
pub mod fec_table;
mod link;
mod node;
mod recovery;
mod report;
mod scenario;
pub mod table;
mod topology;

pub use crate::proto::{Destination, Transmit};
pub use check::{Delivery, Violation};
pub use link::{LinkModel, LinkStats, LossModel, PacketInfo, PacketKind, Script};
pub use node::{
    Inspected, MESSAGE_HEADER_LEN, Member, Pace, SendPlan, SessionMember, Sizes, Strategy,
};
pub use report::{HostReport, SimReport};
pub use scenario::{Action, Expect, Scenario, SweepSummary};
pub use topology::{Duplex, HostId, LinkId, RouterId, Topology};

use agenda::Agenda;
use bytes::Bytes;
use check::Checker;
use link::{LinkState, Transit};
use node::{App, MessageFactory};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use topology::{Routes, Vertex, host_addr};

/// SplitMix64's output function: a bijective mix so that neighbouring inputs give unrelated
/// outputs.
#[must_use]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Who draws from a derived RNG; part of the seed derivation so streams never coincide.
#[derive(Clone, Copy)]
enum SeedUse {
    Link = 1,
    Member = 2,
    App = 3,
    Bodies = 4,
}

/// The seed for the RNG of `user` number `index`, from the master seed.
fn derive_seed(master: u64, user: SeedUse, index: usize) -> u64 {
    let golden = 0x9e37_79b9_7f4a_7c15u64;
    mix64(master ^ mix64((user as u64) << 56 ^ (index as u64).wrapping_mul(golden)))
}

/// A datagram on the simulated network (each copy carries its own `Bytes` handle).
#[derive(Clone)]
struct InFlight {
    /// Sequential id of the original transmission (copies share it).
    id: u64,
    info: PacketInfo,
    /// Unicast destination vertex, `None` for the group.
    dest: Option<usize>,
    payload: Bytes,
}

enum What {
    /// A datagram reaches `vertex` over the link from `from`.
    Arrive {
        vertex: usize,
        from: usize,
        packet: InFlight,
    },
    /// A member timer.
    Timer { host: usize },
    /// A member's application has a message due.
    App { host: usize },
    /// A scripted action (index into the scenario's actions).
    Action { index: usize },
}

/// Running hash of everything that happened, plus optional readable lines.
struct Trace {
    hash: u64,
    lines: Option<Vec<String>>,
}

impl Trace {
    fn mix(&mut self, words: &[u64]) {
        for word in words {
            self.hash = mix64(self.hash ^ *word).wrapping_add(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn enabled(&self) -> bool {
        self.lines.is_some()
    }

    fn line(&mut self, now: Duration, text: impl FnOnce() -> String) {
        if let Some(lines) = self.lines.as_mut() {
            lines.push(format!("{:>12.6}ms {}", now.as_secs_f64() * 1e3, text()));
        }
    }
}

/// One simulated host: a member and its scripted application.
struct Host<M> {
    member: M,
    app: Option<App>,
    alive: bool,
    /// The earliest pending timer event, as virtual time (later ones are stale).
    timer: Option<Duration>,
    /// The application wake-up currently scheduled.
    app_wake: Option<Duration>,
    /// Timer firings at the current instant without time moving on (spin detection).
    spins: u32,
    last_fire: Duration,
    messages_sent: u32,
}

/// Bounds that keep a broken member from hanging or exhausting a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most events processed in one run.
    pub max_steps: u64,
    /// Most datagrams in flight at once (the network's buffers); at most 8,388,608.
    pub max_in_flight: usize,
    /// Most datagrams one drain of `poll_transmit` may return.
    pub max_transmits_per_drain: usize,
    /// Most events one drain of `poll_event` may return.
    pub max_events_per_drain: usize,
    /// Most timer firings of one host at one virtual instant.
    pub max_timer_spins: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_steps: 50_000_000,
            max_in_flight: 1_000_000,
            max_transmits_per_drain: 100_000,
            max_events_per_drain: 1_000_000,
            max_timer_spins: 10_000,
        }
    }
}

/// One simulation run in progress. Build with [`Sim::new`], then [`Sim::run`].
pub struct Sim<M: Member> {
    name: String,
    seed: u64,
    epoch: Instant,
    now: Duration,
    topology: Topology,
    routes: Routes,
    links: Vec<LinkState>,
    hosts: Vec<Host<M>>,
    addr_to_host: HashMap<SocketAddr, usize>,
    actions: Vec<(Duration, Action)>,
    expect: Expect,
    agenda: Agenda<What>,
    next_packet: u64,
    in_flight: usize,
    peak_in_flight: usize,
    unroutable: u64,
    steps: u64,
    checker: Checker,
    recovery: recovery::RecoveryTracker,
    factory: MessageFactory,
    trace: Trace,
    fatal: bool,
}

impl<M: Member> Sim<M> {
    /// Sets up `scenario` for master seed `seed`, creating each host's member with
    /// `make(host, config, member_seed, epoch)`.
    #[expect(
        clippy::disallowed_methods,
        reason = "the simulator's single epoch read; all later time is epoch + virtual duration"
    )]
    pub fn new(
        scenario: &Scenario,
        seed: u64,
        trace: bool,
        mut make: impl FnMut(HostId, &crate::GroupConfig, u64, Instant) -> M,
    ) -> Sim<M> {
        let epoch = Instant::now();
        let topology = scenario.topology.clone();
        let link_count = topology.link_specs().len();
        let links = topology
            .link_specs()
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                LinkState::new(spec.model.clone(), derive_seed(seed, SeedUse::Link, i))
            })
            .collect();
        let hosts: Vec<Host<M>> = (0..topology.hosts())
            .map(|h| {
                let config = scenario.config_of(HostId(h));
                let member = make(
                    HostId(h),
                    config,
                    derive_seed(seed, SeedUse::Member, h),
                    epoch,
                );
                Host {
                    member,
                    app: scenario
                        .plan_of(HostId(h))
                        .map(|plan| App::new(plan, h as u32, derive_seed(seed, SeedUse::App, h))),
                    alive: true,
                    timer: None,
                    app_wake: None,
                    spins: 0,
                    last_fire: Duration::ZERO,
                    messages_sent: 0,
                }
            })
            .collect();
        let plans: Vec<u32> = hosts
            .iter()
            .map(|h| h.app.as_ref().map_or(0, App::planned))
            .collect();
        let ids = hosts
            .iter()
            .enumerate()
            .map(|(h, host)| (host.member.id(), h))
            .collect();
        let addr_to_host = (0..topology.hosts()).map(|h| (host_addr(h), h)).collect();
        let mut sim = Sim {
            name: scenario.name.clone(),
            seed,
            epoch,
            now: Duration::ZERO,
            routes: topology.routes(),
            topology,
            links,
            hosts,
            addr_to_host,
            actions: scenario.actions.clone(),
            expect: scenario.expect,
            agenda: Agenda::new(link_count),
            next_packet: 0,
            in_flight: 0,
            peak_in_flight: 0,
            unroutable: 0,
            steps: 0,
            checker: Checker::new(scenario.expect.delivery, &plans, ids),
            recovery: recovery::RecoveryTracker::new(plans.len()),
            factory: MessageFactory::new(derive_seed(seed, SeedUse::Bodies, 0)),
            trace: Trace {
                hash: seed,
                lines: trace.then(Vec::new),
            },
            fatal: false,
        };
        for index in 0..sim.actions.len() {
            let at = sim.actions[index].0;
            sim.schedule(at, What::Action { index });
        }
        sim
    }

    fn schedule(&mut self, at: Duration, what: What) {
        self.agenda.push(at, what, None);
    }

    fn instant(&self) -> Instant {
        self.epoch + self.now
    }

    fn fail(&mut self, what: String) {
        self.checker.violate(self.now, what);
        self.fatal = true;
    }

    /// Runs to completion (plus the settle time) or the deadline, then applies the end-of-run
    /// oracles.
    pub fn run(mut self) -> SimReport {
        for host in 0..self.hosts.len() {
            self.service(host);
        }
        let mut stop_at = self.expect.deadline;
        let mut completed_at = None;
        while let Some((at, what)) = self.agenda.pop() {
            if at > stop_at {
                break;
            }
            self.now = at;
            self.steps += 1;
            if self.steps > self.expect.limits.max_steps {
                self.fail(format!(
                    "step budget of {} exhausted",
                    self.expect.limits.max_steps
                ));
                break;
            }
            match what {
                What::Arrive {
                    vertex,
                    from,
                    packet,
                } => {
                    self.in_flight -= 1;
                    self.arrive(vertex, from, packet);
                }
                What::Timer { host } => self.fire_timer(host, at),
                What::App { host } => {
                    if self.hosts[host].app_wake == Some(at) {
                        self.hosts[host].app_wake = None;
                        self.service(host);
                    }
                }
                What::Action { index } => self.act(index),
            }
            if self.fatal {
                break;
            }
            if completed_at.is_none() && self.checker.all_complete() {
                completed_at = Some(self.now);
                stop_at = self.now + self.expect.settle;
            }
        }
        if !self.fatal {
            self.checker.finish(self.now);
        }
        self.report(completed_at)
    }

    fn act(&mut self, index: usize) {
        let action = self.actions[index].1.clone();
        self.trace
            .mix(&[7, self.now.as_nanos() as u64, index as u64]);
        self.trace.line(self.now, || format!("action {action:?}"));
        match action {
            Action::Crash(host) => {
                self.hosts[host.0].alive = false;
                self.checker.on_crash(host.0);
            }
            Action::Leave(host) => {
                let now = self.instant();
                if self.hosts[host.0].alive {
                    self.hosts[host.0].member.leave(now);
                    self.service(host.0);
                }
            }
            Action::SetLink(link, model) => self.links[link.0].set_model(model),
        }
    }

    fn fire_timer(&mut self, host: usize, at: Duration) {
        let state = &mut self.hosts[host];
        if !state.alive || state.timer != Some(at) {
            return; // Superseded by an earlier timer event.
        }
        state.timer = None;
        let deadline = state
            .member
            .poll_timeout()
            .map(|d| d.saturating_duration_since(self.epoch));
        if deadline.is_none_or(|deadline| deadline > at) {
            // The deadline moved later since this event was scheduled: wait for it.
            self.reschedule_timer(host);
            return;
        }
        if state.last_fire == at {
            state.spins += 1;
            if state.spins > self.expect.limits.max_timer_spins {
                let spins = state.spins;
                self.fail(format!(
                    "h{host} timer spins: handle_timeout ran {spins} times at one instant and poll_timeout still returns it"
                ));
                return;
            }
        } else {
            state.spins = 0;
            state.last_fire = at;
        }
        self.trace.mix(&[2, at.as_nanos() as u64, host as u64]);
        self.trace.line(at, || format!("h{host} timeout"));
        let now = self.instant();
        self.hosts[host].member.handle_timeout(now);
        self.service(host);
    }

    /// Makes sure a timer event is pending no later than the member's deadline. A later
    /// deadline keeps the earlier event, which on firing finds nothing due and moves on; so a
    /// deadline that keeps moving later (as NAK and heartbeat timers do with every packet)
    /// costs no heap traffic.
    fn reschedule_timer(&mut self, host: usize) {
        let deadline = self.hosts[host]
            .member
            .poll_timeout()
            .map(|at| at.saturating_duration_since(self.epoch).max(self.now));
        if let Some(at) = deadline
            && self.hosts[host].timer.is_none_or(|pending| at < pending)
        {
            self.hosts[host].timer = Some(at);
            self.schedule(at, What::Timer { host });
        }
    }

    fn arrive(&mut self, vertex: usize, from: usize, packet: InFlight) {
        match self.topology.vertex(vertex) {
            Vertex::Router(_) => self.forward(vertex, Some(from), &packet),
            Vertex::Host(host) => {
                if !self.hosts[host].alive {
                    return;
                }
                if packet.dest.is_some_and(|dest| dest != vertex) {
                    // Unicast is routed, so this cannot happen; ignore rather than misdeliver.
                    return;
                }
                self.trace
                    .mix(&[1, self.now.as_nanos() as u64, host as u64, packet.id]);
                self.trace.line(self.now, || {
                    format!(
                        "h{host} <- h{} {:?} #{} seq+{:?} {}B",
                        packet.info.sender,
                        packet.info.kind,
                        packet.id,
                        packet.info.seq_offset,
                        packet.info.len
                    )
                });
                if let (PacketKind::Odata | PacketKind::Rdata, Some(source), Some(offset)) = (
                    packet.info.kind,
                    packet.info.stream_host,
                    packet.info.seq_offset,
                ) {
                    let repair = packet.info.kind == PacketKind::Rdata;
                    self.recovery
                        .on_arrival(host, source, offset, repair, self.now);
                }
                let now = self.instant();
                let from = host_addr(packet.info.sender);
                self.hosts[host]
                    .member
                    .handle_datagram(now, from, packet.payload);
                self.service(host);
            }
        }
    }

    /// Sends `packet` on from `vertex`: every link but the one back to `from` for the group,
    /// the next hop for unicast.
    fn forward(&mut self, vertex: usize, from: Option<usize>, packet: &InFlight) {
        match packet.dest {
            None => {
                for i in 0..self.topology.out_links(vertex).len() {
                    let link = self.topology.out_links(vertex)[i];
                    if Some(self.topology.link_specs()[link].to) != from {
                        self.send_on(vertex, link, packet);
                    }
                }
            }
            Some(dest) => {
                if let Some(link) = self.routes.next_link(vertex, dest) {
                    self.send_on(vertex, link, packet);
                }
            }
        }
    }

    fn send_on(&mut self, vertex: usize, link: usize, packet: &InFlight) {
        let to = self.topology.link_specs()[link].to;
        let transit = self.links[link].transit(self.now, &packet.info);
        match transit {
            Transit::Dropped(reason) => {
                self.trace.mix(&[5, packet.id, link as u64]);
                if self.trace.enabled() {
                    let name = self.topology.link_name(LinkId(link));
                    self.trace.line(self.now, || {
                        format!("  {name} drops #{} ({reason})", packet.id)
                    });
                }
            }
            Transit::Arrives { first, duplicate } => {
                self.trace
                    .mix(&[6, packet.id, link as u64, first.as_nanos() as u64]);
                for at in std::iter::once(first).chain(duplicate) {
                    self.in_flight += 1;
                    let what = What::Arrive {
                        vertex: to,
                        from: vertex,
                        packet: packet.clone(),
                    };
                    self.agenda.push(at, what, Some(link));
                }
                self.peak_in_flight = self.peak_in_flight.max(self.in_flight);
                let limit = self
                    .expect
                    .limits
                    .max_in_flight
                    .min(agenda::MAX_PENDING / 2);
                if self.in_flight > limit {
                    self.fail(format!("more than {limit} datagrams in flight"));
                }
            }
        }
    }

    /// After any input to `host`: lets its application send what is due, drains transmits
    /// and events, and reschedules its timer and wake-up.
    fn service(&mut self, host: usize) {
        if !self.hosts[host].alive || self.fatal {
            return;
        }
        let now = self.instant();
        loop {
            let sent = self.pump(host);
            let mut transmits = 0;
            while let Some(transmit) = self.hosts[host].member.poll_transmit(now) {
                transmits += 1;
                if transmits > self.expect.limits.max_transmits_per_drain {
                    let limit = self.expect.limits.max_transmits_per_drain;
                    self.fail(format!(
                        "h{host} poll_transmit returned more than {limit} datagrams in one drain"
                    ));
                    return;
                }
                self.originate(host, transmit);
            }
            let app_waiting = self.hosts[host]
                .app
                .as_ref()
                .and_then(App::next_due)
                .is_some_and(|due| due <= self.now);
            if self.fatal || (sent == 0 && !(transmits > 0 && app_waiting)) {
                break;
            }
        }
        let mut events = 0;
        while let Some(event) = self.hosts[host].member.poll_event() {
            events += 1;
            if events > self.expect.limits.max_events_per_drain {
                let limit = self.expect.limits.max_events_per_drain;
                self.fail(format!(
                    "h{host} poll_event returned more than {limit} events in one drain"
                ));
                return;
            }
            self.record_event(host, &event);
            self.checker.on_event(self.now, host, &event);
        }
        self.reschedule_timer(host);
        let due = self.hosts[host].app.as_ref().and_then(App::next_due);
        if let Some(due) = due.filter(|due| *due > self.now)
            && self.hosts[host].app_wake != Some(due)
        {
            self.hosts[host].app_wake = Some(due);
            self.schedule(due, What::App { host });
        }
    }

    /// Hands the application's due messages to the member while it accepts them.
    fn pump(&mut self, host: usize) -> u32 {
        let now = self.instant();
        let mut sent = 0;
        let state = &mut self.hosts[host];
        let Some(app) = state.app.as_mut() else {
            return 0;
        };
        while app.next_due().is_some_and(|due| due <= self.now) && state.member.can_send() {
            let (index, message) = app.take(&self.factory);
            let len = message.len();
            self.checker.on_sent(host, index, message.clone());
            if let Err(err) = state.member.send(now, message) {
                self.checker.violate(
                    self.now,
                    format!("h{host} refused message {index} ({len} bytes): {err}"),
                );
                self.fatal = true;
                break;
            }
            state.messages_sent += 1;
            sent += 1;
            self.trace.mix(&[
                3,
                self.now.as_nanos() as u64,
                host as u64,
                u64::from(index),
                len as u64,
            ]);
            self.trace.line(self.now, || {
                format!("h{host} app sends message {index} ({len}B)")
            });
        }
        sent
    }

    fn originate(&mut self, host: usize, transmit: Transmit) {
        let payload = transmit.payload;
        let inspected = M::inspect(&payload);
        let stream_host = inspected.stream.and_then(|id| self.checker.host_of(id));
        let seq_offset = match (inspected.kind, inspected.seq, stream_host) {
            (PacketKind::Odata, Some(seq), Some(source)) if source == host => self
                .checker
                .on_odata(self.now, host, seq, inspected.message_start.as_ref()),
            (_, Some(seq), Some(source)) => self.checker.offset(source, seq),
            _ => None,
        };
        let info = PacketInfo {
            kind: inspected.kind,
            stream_host,
            seq_offset,
            sender: host,
            len: payload.len(),
        };
        if let (PacketKind::Odata, Some(offset)) = (info.kind, seq_offset)
            && stream_host == Some(host)
        {
            self.recovery.on_sent(host, offset, self.now);
        }
        self.next_packet += 1;
        let id = self.next_packet;
        let head = payload
            .iter()
            .take(16)
            .fold(0u64, |acc, b| acc.rotate_left(8) ^ u64::from(*b));
        self.trace.mix(&[
            4,
            self.now.as_nanos() as u64,
            host as u64,
            payload.len() as u64,
            inspected.kind as u64,
            u64::from(seq_offset.unwrap_or(u32::MAX)),
            head,
        ]);
        let dest = match transmit.destination {
            Destination::Group => None,
            Destination::Peer(addr) => match self.addr_to_host.get(&addr) {
                Some(&dest) if dest != host => Some(self.topology.host_vertex(dest)),
                _ => {
                    self.unroutable += 1;
                    self.trace.line(self.now, || {
                        format!("h{host} -> {addr}: no such host, dropped")
                    });
                    return;
                }
            },
        };
        if self.trace.enabled() {
            let to = dest.map_or("group".to_string(), |d| {
                format!("{:?}", self.topology.vertex(d))
            });
            let text = format!(
                "h{host} -> {to} {:?} #{id} stream h{stream_host:?} seq+{seq_offset:?} {}B",
                info.kind, info.len
            );
            self.trace.line(self.now, || text);
        }
        let packet = InFlight {
            id,
            info,
            dest,
            payload,
        };
        let vertex = self.topology.host_vertex(host);
        self.forward(vertex, None, &packet);
    }

    fn record_event(&mut self, host: usize, event: &crate::Event) {
        if let crate::Event::Message { source, data } = event
            && let Some((source, offsets)) = self.checker.message_offsets(*source, data)
        {
            // Packets delivered without ever arriving were rebuilt from FEC parity.
            self.recovery.on_delivered(host, source, offsets, self.now);
        }
        let words: [u64; 3] = match event {
            crate::Event::Message { source, data } => [1, source.0, data.len() as u64],
            crate::Event::Unrecoverable { source, range } => [
                2,
                source.0,
                u64::from(range.first) << 32 | u64::from(range.last),
            ],
            crate::Event::SourceJoined { source } => [3, source.0, 0],
            crate::Event::SourceRestarted { source } => [4, source.0, 0],
            crate::Event::SourceLost { source } => [5, source.0, 0],
        };
        self.trace.mix(&[
            8,
            self.now.as_nanos() as u64,
            host as u64,
            words[0],
            words[1],
            words[2],
        ]);
        if self.trace.enabled() {
            let text = match event {
                crate::Event::Message { source, data } => {
                    let index = node::MessageHeader::parse(data).map(|h| h.index);
                    format!(
                        "h{host} event: message {index:?} from {:?} ({}B)",
                        self.checker.host_of(*source),
                        data.len()
                    )
                }
                other => format!("h{host} event: {other:?}"),
            };
            self.trace.line(self.now, || text);
        }
    }

    fn report(self, completed_at: Option<Duration>) -> SimReport {
        let hosts = self
            .hosts
            .iter()
            .enumerate()
            .map(|(h, host)| {
                let totals = self.checker.totals(h);
                HostReport {
                    host: HostId(h),
                    addr: host_addr(h),
                    stats: host.member.stats(),
                    messages_sent: host.messages_sent,
                    delivered: totals.delivered,
                    lost_messages: totals.lost_messages,
                    lost_packets: totals.lost_packets,
                    completed_at: totals.completed_at,
                    crashed: !host.alive,
                }
            })
            .collect();
        let links = self
            .links
            .iter()
            .enumerate()
            .map(|(i, link)| (self.topology.link_name(LinkId(i)), link.stats))
            .collect();
        let recovery = self.recovery.summary();
        let (violations, violation_count) = self.checker.into_violations();
        SimReport {
            scenario: self.name,
            seed: self.seed,
            completed_at,
            ended_at: self.now,
            steps: self.steps,
            trace_hash: self.trace.hash,
            hosts,
            links,
            peak_in_flight: self.peak_in_flight,
            unroutable: self.unroutable,
            recovery_delays: recovery.delays,
            max_path_delay: recovery.max_path_delay,
            violations,
            violation_count,
            trace: self.trace.lines,
        }
    }
}

#[cfg(test)]
mod tests;
