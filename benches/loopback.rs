//! Loopback multicast throughput, measured in one run on one path (127.0.0.1, TTL 0, loop on):
//!
//! - `raw sendmsg`: a plain UDP socket sending one datagram per system call, a receiver
//!   reading with quinn-udp (`recvmmsg`, GRO where available);
//! - `raw GSO`: the same receiver, the sender packing datagrams into UDP GSO sends — the best
//!   the socket path allows, the baseline for rmcast;
//! - `rmcast`: one `ReliableGroup` sending 64 KiB messages to one receiving `ReliableGroup`,
//!   with `max_datagram` set to the datagram size; goodput is message bytes delivered per second,
//!   counted from the first send to the last delivery.
//!
//! Prints a table. `cargo bench --bench loopback` runs each row for 2 s
//! (`RMCAST_BENCH_SECS` overrides); run without `--bench` (e.g. by `cargo test --benches`) it
//! does a 0.2 s smoke run.

use bytes::Bytes;
use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use rmcast::{Event, GroupConfig, ReliableGroup, Stats};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::IoSliceMut;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const SIZES: [usize; 2] = [1400, 8192];
const MESSAGE: usize = 64 * 1024;
const RECV_BUFFER: usize = 32 << 20;

#[expect(
    clippy::disallowed_methods,
    reason = "a benchmark measures wall-clock time"
)]
fn now() -> Instant {
    Instant::now()
}

/// A socket bound to and joined on `group` over loopback, as the driver sets it up.
fn group_socket(group: SocketAddr) -> (Socket, UdpSocketState) {
    let SocketAddr::V4(group_v4) = group else {
        unreachable!("IPv4 groups only")
    };
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    socket.set_reuse_address(true).unwrap();
    socket.set_reuse_port(true).unwrap();
    let value: libc::c_int = RECV_BUFFER as libc::c_int;
    // SAFETY: open descriptor; a c_int option value that outlives the call, with its size.
    let forced = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    } == 0;
    if !forced {
        socket.set_recv_buffer_size(RECV_BUFFER).unwrap();
    }
    socket.bind(&group.into()).unwrap();
    socket
        .join_multicast_v4(group_v4.ip(), &Ipv4Addr::LOCALHOST)
        .unwrap();
    socket.set_multicast_if_v4(&Ipv4Addr::LOCALHOST).unwrap();
    socket.set_multicast_ttl_v4(0).unwrap();
    socket.set_multicast_loop_v4(true).unwrap();
    let state = UdpSocketState::new((&socket).into()).unwrap();
    (socket, state)
}

/// Waits until `socket` is readable (or writable), at most 10 ms.
fn wait(socket: &Socket, events: libc::c_short) {
    let mut fd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, exclusively borrowed for the call.
    unsafe { libc::poll(&mut fd, 1, 10) };
}

struct Row {
    path: String,
    size: usize,
    seconds: f64,
    sent: u64,
    received: u64,
    /// Bytes the application got (payload for raw, message bytes for rmcast).
    goodput_bytes: u64,
    note: String,
}

impl Row {
    fn print(&self) {
        let loss = if self.sent == 0 {
            0.0
        } else {
            100.0 * (self.sent.saturating_sub(self.received)) as f64 / self.sent as f64
        };
        println!(
            "{:<14} {:>6} {:>12.0} {:>12.0} {:>7.2} {:>10.2}  {}",
            self.path,
            self.size,
            self.sent as f64 / self.seconds,
            self.received as f64 / self.seconds,
            loss,
            self.goodput_bytes as f64 * 8.0 / self.seconds / 1e9,
            self.note
        );
    }
}

/// Raw UDP multicast for `duration`: one datagram per `sendmsg`, or GSO batches.
fn raw(group: SocketAddr, size: usize, gso: bool, duration: Duration) -> Row {
    let (rx_socket, rx_state) = group_socket(group);
    let (tx_socket, tx_state) = group_socket(group);
    let gro = rx_state.gro_segments() > 1;
    let sending = Arc::new(AtomicBool::new(true));
    let received = Arc::new(AtomicU64::new(0));
    let receiver = {
        let (sending, received) = (Arc::clone(&sending), Arc::clone(&received));
        thread::spawn(move || {
            let slots = quinn_udp::BATCH_SIZE;
            let mut buffers = vec![0u8; slots * 65_536];
            let mut meta = vec![RecvMeta::default(); slots];
            let mut idle_since = None;
            let mut last = now();
            loop {
                let mut slices: Vec<IoSliceMut<'_>> =
                    buffers.chunks_mut(65_536).map(IoSliceMut::new).collect();
                match rx_state.recv((&rx_socket).into(), &mut slices, &mut meta) {
                    Ok(n) => {
                        let datagrams: usize = meta[..n]
                            .iter()
                            .map(|m| m.len.div_ceil(m.stride.max(1)).max(1))
                            .sum();
                        received.fetch_add(datagrams as u64, Ordering::Relaxed);
                        last = now();
                        idle_since = None;
                    }
                    Err(_) => {
                        if !sending.load(Ordering::Relaxed) {
                            let since = *idle_since.get_or_insert_with(now);
                            if since.elapsed() > Duration::from_millis(200) {
                                return last;
                            }
                        }
                        wait(&rx_socket, libc::POLLIN);
                    }
                }
            }
        })
    };
    // Let the receiver start before the clock does.
    thread::sleep(Duration::from_millis(20));
    let segments = if gso {
        tx_state.max_gso_segments().min(65_507 / size).max(1)
    } else {
        1
    };
    let payload = vec![0xa5u8; size * segments];
    let start = now();
    let mut sent = 0u64;
    while start.elapsed() < duration {
        let transmit = Transmit {
            destination: group,
            ecn: None,
            contents: &payload,
            segment_size: (segments > 1).then_some(size),
            src_ip: None,
        };
        match tx_state.try_send((&tx_socket).into(), &transmit) {
            Ok(()) => sent += segments as u64,
            Err(_) => wait(&tx_socket, libc::POLLOUT),
        }
    }
    let send_end = now();
    sending.store(false, Ordering::Relaxed);
    let last = receiver.join().unwrap().max(send_end);
    let received = received.load(Ordering::Relaxed);
    Row {
        path: if gso { "raw GSO" } else { "raw sendmsg" }.into(),
        size,
        seconds: (last - start).as_secs_f64(),
        sent,
        received,
        goodput_bytes: received * size as u64,
        note: format!(
            "{segments} datagram(s) per send, GRO {}",
            if gro { "on" } else { "off" }
        ),
    }
}

/// rmcast: 64 KiB messages for `duration`, one receiver, datagrams of `size` bytes.
fn rmcast(group: SocketAddr, size: usize, rate: Option<u64>, duration: Duration) -> Row {
    let config = |seed| {
        GroupConfig::on_loopback(group)
            .rng_seed(Some(seed))
            .max_datagram(size)
            .rate_limit(rate)
            .initial_rtt(Duration::from_millis(1))
    };
    let receiver = ReliableGroup::join(config(1)).unwrap();
    let sender = ReliableGroup::join(config(2)).unwrap();
    let message = Bytes::from(vec![0x5au8; MESSAGE]);
    // Messages the sender sent, once it is done.
    let total = AtomicU64::new(u64::MAX);
    let start = now();
    let (sent, delivered, receiver_stats) = thread::scope(|scope| {
        let receiving = scope.spawn(|| {
            let (mut messages, mut bytes, mut last) = (0u64, 0u64, start);
            // Until every sent message arrived, or 10 s without any.
            while messages < total.load(Ordering::Acquire) {
                match receiver.recv_timeout(Duration::from_millis(50)) {
                    Ok(Event::Message { data, .. }) => {
                        messages += 1;
                        bytes += data.len() as u64;
                        last = now();
                    }
                    Ok(Event::Unrecoverable { range, .. }) => eprintln!("unrecoverable: {range:?}"),
                    Ok(_) => {}
                    Err(_) if last.elapsed() < Duration::from_secs(10) => {}
                    Err(_) => break,
                }
            }
            (messages, bytes, last)
        });
        let mut sent = 0u64;
        while start.elapsed() < duration {
            sender.send(message.clone()).unwrap();
            sent += 1;
        }
        total.store(sent, Ordering::Release);
        let delivered = receiving.join().unwrap();
        (sent, delivered, receiver.stats())
    });
    let sender_stats: Stats = sender.stats();
    let (messages, bytes, last) = delivered;
    sender.leave();
    receiver.leave();
    let rx = receiver_stats.rx;
    Row {
        path: match rate {
            None => "rmcast".into(),
            Some(bps) => format!("rmcast {}G", bps / 1_000_000_000),
        },
        size,
        seconds: (last - start).as_secs_f64(),
        sent: sender_stats.tx.odata.packets,
        received: rx.odata.packets,
        goodput_bytes: bytes,
        note: format!(
            "{messages}/{sent} msgs, {} NAKs, {} repairs, rcvbuf {} KiB, GSO {}",
            receiver_stats.recovery.naks_sent,
            sender_stats.recovery.repairs_sent,
            receiver_stats.socket.recv_buffer >> 10,
            sender_stats.socket.gso_segments
        ),
    }
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let seconds: f64 = std::env::var("RMCAST_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if full { 2.0 } else { 0.2 });
    let duration = Duration::from_secs_f64(seconds);
    println!(
        "{:<14} {:>6} {:>12} {:>12} {:>7} {:>10}  note",
        "path", "bytes", "sent dgram/s", "recv dgram/s", "loss %", "Gbit/s"
    );
    for (i, size) in SIZES.into_iter().enumerate() {
        let port = 47_200 + i as u16 * 10;
        let group = |n: u8| SocketAddr::from(([239, 255, 72, n], port));
        raw(group(1), size, false, duration).print();
        raw(group(2), size, true, duration).print();
        rmcast(group(3), size, None, duration).print();
        rmcast(group(4), size, Some(1_000_000_000), duration).print();
    }
}
