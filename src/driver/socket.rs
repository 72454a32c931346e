//! The group socket: multicast set-up with socket2 and batched I/O with quinn-udp.
//!
//! Set-up ([`GroupSocket::open`]) binds the group address itself (so the kernel delivers only
//! this group's datagrams, even when other groups share the port), with `SO_REUSEADDR` and
//! `SO_REUSEPORT` so every member on the host can bind it; joins the group on the configured
//! interface; and always sets `IP_MULTICAST_IF`, the TTL and `IP_MULTICAST_LOOP` from the
//! configuration, so traffic leaves only where the configuration says. Buffers are asked for
//! with `SO_RCVBUFFORCE`/`SO_SNDBUFFORCE` (permitted with `CAP_NET_ADMIN`), falling back to the
//! `rmem_max`/`wmem_max`-capped plain options; what the kernel granted is reported.
//!
//! I/O: receive with quinn-udp (`recvmmsg`, and GRO where the kernel has it: one buffer may hold
//! many equal-size datagrams, split here by `stride`); send through [`TxBatch`], which packs
//! consecutive equal-size datagrams to one destination into one UDP GSO send (`UDP_SEGMENT`),
//! or sends them one by one where GSO is missing or was refused (quinn-udp then lowers
//! `max_gso_segments` to 1 for good).
//!
//! Invariants: the socket is non-blocking; no datagram is split or merged on the wire (GSO
//! segments are exactly the datagrams the core produced); a batch never exceeds the kernel's
//! segment count or the 64 KiB UDP GSO payload limit.

use crate::config::GroupConfig;
use crate::error::JoinError;
use bytes::Bytes;
use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};

/// Most UDP payload bytes one GSO send may carry (65,535 minus the IPv4 and UDP headers).
const MAX_GSO_PAYLOAD: usize = 65_507;
/// Receive slot size: one datagram, or one GRO-coalesced run, which the kernel caps at 64 KiB.
const RECV_SLOT: usize = 1 << 16;

/// What the kernel granted when the socket was opened.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Granted {
    /// `SO_RCVBUF` as read back (Linux reports twice the usable size: it counts bookkeeping).
    pub(crate) recv_buffer: u64,
    /// `SO_SNDBUF` as read back.
    pub(crate) send_buffer: u64,
    /// Most segments per GRO receive (1 = no GRO).
    pub(crate) gro_segments: u64,
}

/// The member's one socket, bound to the group address and port.
pub(crate) struct GroupSocket {
    socket: Socket,
    state: UdpSocketState,
    group: SocketAddr,
    granted: Granted,
    recv_buffers: Vec<u8>,
    recv_meta: Vec<RecvMeta>,
}

/// Builds the `JoinError` for a failed set-up step.
fn failed(action: impl Into<String>, group: SocketAddr) -> impl FnOnce(io::Error) -> JoinError {
    move |source| JoinError::Socket {
        action: action.into(),
        group,
        source,
    }
}

impl GroupSocket {
    /// Opens, configures and joins. `config` must have passed `validate_network`, so the group
    /// is IPv4 multicast and the interface IPv4.
    pub(crate) fn open(config: &GroupConfig) -> Result<GroupSocket, JoinError> {
        let group = config.group;
        let (SocketAddr::V4(group_v4), IpAddr::V4(interface)) = (group, config.interface) else {
            return Err(JoinError::Socket {
                action: "use an IPv6 group or interface (only IPv4 is supported)".into(),
                group,
                source: io::Error::from(io::ErrorKind::Unsupported),
            });
        };
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
            .map_err(failed("create a UDP socket", group))?;
        socket
            .set_reuse_address(true)
            .map_err(failed("set SO_REUSEADDR", group))?;
        socket
            .set_reuse_port(true)
            .map_err(failed("set SO_REUSEPORT", group))?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        socket
            .set_multicast_all_v4(false)
            .map_err(failed("clear IP_MULTICAST_ALL", group))?;
        set_buffer(&socket, Buffer::Receive, config.recv_buffer).map_err(failed(
            format!("set a receive buffer of {} bytes", config.recv_buffer),
            group,
        ))?;
        set_buffer(&socket, Buffer::Send, config.send_buffer).map_err(failed(
            format!("set a send buffer of {} bytes", config.send_buffer),
            group,
        ))?;
        socket.bind(&SocketAddr::V4(group_v4).into()).map_err(failed(
            format!(
                "bind {group_v4} (is the port free of non-reusing sockets, and the address a multicast group?)"
            ),
            group,
        ))?;
        socket
            .join_multicast_v4(group_v4.ip(), &interface)
            .map_err(failed(
                format!(
                    "join the group on interface {interface} (it must be the IPv4 address of an up, multicast-capable local interface)"
                ),
                group,
            ))?;
        socket.set_multicast_if_v4(&interface).map_err(failed(
            format!("send from interface {interface} (IP_MULTICAST_IF)"),
            group,
        ))?;
        let ttl = config.effective_ttl();
        socket
            .set_multicast_ttl_v4(ttl)
            .map_err(failed(format!("set multicast TTL {ttl} (0..=255)"), group))?;
        socket
            .set_multicast_loop_v4(config.loopback)
            .map_err(failed("set IP_MULTICAST_LOOP", group))?;
        let state = UdpSocketState::new((&socket).into())
            .map_err(failed("prepare batched I/O (quinn-udp)", group))?;
        let granted = Granted {
            recv_buffer: socket
                .recv_buffer_size()
                .map_err(failed("read back SO_RCVBUF", group))? as u64,
            send_buffer: socket
                .send_buffer_size()
                .map_err(failed("read back SO_SNDBUF", group))? as u64,
            gro_segments: state.gro_segments() as u64,
        };
        let slots = quinn_udp::BATCH_SIZE.max(1);
        Ok(GroupSocket {
            socket,
            state,
            group,
            granted,
            recv_buffers: vec![0; slots * RECV_SLOT],
            recv_meta: vec![RecvMeta::default(); slots],
        })
    }

    /// The group address and port this socket is bound to.
    pub(crate) fn group(&self) -> SocketAddr {
        self.group
    }

    /// Buffer sizes and GRO as granted by the kernel.
    pub(crate) fn granted(&self) -> Granted {
        self.granted
    }

    /// Most datagrams one GSO send may carry now (1 = no GSO).
    pub(crate) fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments().max(1)
    }

    /// The descriptor to wait on.
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Reads one batch (one `recvmmsg`) and hands every datagram to `deliver`, GRO runs split
    /// into their datagrams. Returns how many datagrams were delivered; 0 when nothing was
    /// waiting.
    ///
    /// Each run (one datagram, or one GRO-coalesced run) is copied once into its own allocation
    /// of exactly its length, and its datagrams are handed out as slices of it: one allocation
    /// per run instead of one per datagram, while a datagram the core keeps pins at most its
    /// run (≤ 64 KiB), never the receive buffers.
    pub(crate) fn recv_batch(
        &mut self,
        mut deliver: impl FnMut(SocketAddr, Bytes),
    ) -> io::Result<usize> {
        let mut slices: Vec<IoSliceMut<'_>> = self
            .recv_buffers
            .chunks_mut(RECV_SLOT)
            .map(IoSliceMut::new)
            .collect();
        let filled = match self
            .state
            .recv((&self.socket).into(), &mut slices, &mut self.recv_meta)
        {
            Ok(filled) => filled,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => return Ok(0),
            Err(err) => return Err(err),
        };
        let mut delivered = 0;
        for (meta, slice) in self.recv_meta[..filled].iter().zip(&slices) {
            let mut run = Bytes::copy_from_slice(&slice[..meta.len.min(slice.len())]);
            if meta.stride == 0 || meta.stride >= run.len() {
                deliver(meta.addr, run);
                delivered += 1;
            } else {
                while !run.is_empty() {
                    let datagram = run.split_to(meta.stride.min(run.len()));
                    deliver(meta.addr, datagram);
                    delivered += 1;
                }
            }
        }
        Ok(delivered)
    }

    /// Sends one datagram or GSO run. `Err(WouldBlock)` means nothing was sent.
    fn send(
        &self,
        destination: SocketAddr,
        contents: &[u8],
        segment_size: Option<usize>,
    ) -> io::Result<()> {
        let transmit = Transmit {
            destination,
            ecn: None,
            contents,
            segment_size,
            src_ip: None,
        };
        self.state.try_send((&self.socket).into(), &transmit)
    }
}

/// Which socket buffer.
#[derive(Clone, Copy)]
enum Buffer {
    Receive,
    Send,
}

/// Asks for `bytes` of buffer: the `FORCE` option first (ignores `rmem_max`/`wmem_max`, needs
/// `CAP_NET_ADMIN`), then the plain option, which the kernel silently caps.
fn set_buffer(socket: &Socket, buffer: Buffer, bytes: usize) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let option = match buffer {
            Buffer::Receive => libc::SO_RCVBUFFORCE,
            Buffer::Send => libc::SO_SNDBUFFORCE,
        };
        // The kernel doubles the value; half of c_int::MAX is already far beyond any sane size.
        let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX / 2);
        // SAFETY: the descriptor is open for the duration of the call; the option value is a
        // c_int that outlives the call and the length passed is its size.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&raw const value).cast::<libc::c_void>(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        // EPERM without CAP_NET_ADMIN: fall through to the capped option.
    }
    match buffer {
        Buffer::Receive => socket.set_recv_buffer_size(bytes),
        Buffer::Send => socket.set_send_buffer_size(bytes),
    }
}

/// Outcome of [`TxBatch::flush`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flushed {
    /// Everything handed to the kernel (or counted as a send error).
    Done,
    /// The send buffer is full: the batch is kept; wait for the socket to be writable.
    Blocked,
}

/// Datagrams waiting to be handed to the kernel: consecutive equal-size datagrams to one
/// destination, packed back to back for one GSO send (the last may be shorter).
///
/// The core writes each datagram straight into the batch ([`TxBatch::buffer`], then
/// [`TxBatch::commit`]), so sending costs no allocation and no copy per datagram. A datagram
/// that cannot join the run it was written after (another size or destination, or the run is
/// full) is set aside in `held` until that run is sent, then starts the next one.
pub(crate) struct TxBatch {
    buffer: Vec<u8>,
    destination: Option<SocketAddr>,
    segment_size: usize,
    segments: usize,
    /// A shorter datagram ended the run: nothing more may join it.
    sealed: bool,
    /// Destination of a datagram written after the run that could not join it; the datagram
    /// waits in `held_datagram` (its buffer reused, as with FEC this happens once a block).
    held: Option<SocketAddr>,
    held_datagram: Vec<u8>,
    /// Datagrams lost to send errors.
    pub(crate) errors: u64,
    /// Send calls made (one per run).
    pub(crate) sends: u64,
}

impl Default for TxBatch {
    fn default() -> Self {
        TxBatch {
            buffer: Vec::with_capacity(MAX_GSO_PAYLOAD),
            destination: None,
            segment_size: 0,
            segments: 0,
            sealed: false,
            held: None,
            held_datagram: Vec::new(),
            errors: 0,
            sends: 0,
        }
    }
}

impl TxBatch {
    /// Whether nothing waits to be sent.
    pub(crate) fn is_empty(&self) -> bool {
        self.segments == 0 && self.held.is_none()
    }

    /// Whether a datagram of up to `len` bytes written now would surely join the current run
    /// (or start one): when not, [`TxBatch::flush`] first, to keep the datagram out of `held`.
    #[cfg(test)]
    pub(crate) fn has_room(&self, socket: &GroupSocket, len: usize) -> bool {
        self.segments == 0
            || (self.held.is_none()
                && !self.sealed
                && len <= self.segment_size
                && self.segments < socket.max_gso_segments()
                && self.buffer.len() + len <= MAX_GSO_PAYLOAD)
    }

    /// Whether a datagram of at most `max_len` bytes, written now, may join the current run
    /// (or start one): the run has room for it and is not closed. Whether it does join depends
    /// on its length, which [`TxBatch::commit`] checks: one longer than the run's segments is
    /// held and sent after the run. The engine asks this with its largest datagram, not
    /// [`TxBatch::has_room`]: with FEC every ODATA is shorter than the largest datagram (its
    /// PARITY), so asking for a segment of the largest size flushed after every datagram —
    /// one `sendmsg` per datagram instead of one per run (198,113 against 4,623 for 256 MiB).
    pub(crate) fn may_join(&self, socket: &GroupSocket, max_len: usize) -> bool {
        self.segments == 0
            || (self.held.is_none()
                && !self.sealed
                && self.segments < socket.max_gso_segments()
                && self.buffer.len() + max_len <= MAX_GSO_PAYLOAD)
    }

    /// Where the next datagram is written: append it, then call [`TxBatch::commit`] with the
    /// length the buffer had before (or truncate back to it to drop the datagram).
    pub(crate) fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buffer
    }

    /// Takes the bytes appended since `start` as one datagram to `destination`. `Blocked`
    /// means the socket refused the run before it: the datagram is held, and goes once the
    /// socket is writable ([`TxBatch::flush`]); write nothing more until then.
    pub(crate) fn commit(
        &mut self,
        socket: &GroupSocket,
        start: usize,
        destination: SocketAddr,
    ) -> Flushed {
        debug_assert!(self.held.is_none() && start <= self.buffer.len());
        let len = self.buffer.len() - start;
        if self.segments == 0 {
            self.destination = Some(destination);
            self.segment_size = len;
            self.sealed = false;
        } else if self.sealed
            || self.destination != Some(destination)
            || len > self.segment_size
            || self.segments >= socket.max_gso_segments()
            || self.buffer.len() > MAX_GSO_PAYLOAD
        {
            // The engine checks `may_join` first, so only a datagram longer than the run's
            // segments (a PARITY after ODATA) lands here: set it aside, send the run.
            self.held_datagram.clear();
            self.held_datagram.extend_from_slice(&self.buffer[start..]);
            self.buffer.truncate(start);
            self.held = Some(destination);
            return self.flush(socket);
        } else if len < self.segment_size {
            self.sealed = true;
        }
        self.segments += 1;
        // A zero-length datagram cannot be a GSO segment: send it alone.
        if len == 0 {
            self.sealed = true;
        }
        Flushed::Done
    }

    /// Queues a copy of `datagram`, first sending the current run if it cannot join it.
    /// `Blocked` means the socket refused the current run: `datagram` was not queued, retry it
    /// once the socket is writable.
    #[cfg(test)]
    pub(crate) fn push(
        &mut self,
        socket: &GroupSocket,
        destination: SocketAddr,
        datagram: &[u8],
    ) -> Flushed {
        if !self.has_room(socket, datagram.len()) && self.flush(socket) == Flushed::Blocked {
            return Flushed::Blocked;
        }
        let start = self.buffer.len();
        self.buffer.extend_from_slice(datagram);
        // The run was flushed or has room, so the datagram joins or starts it.
        self.commit(socket, start, destination)
    }

    /// Hands the current run to the kernel, then the held datagram, if any.
    pub(crate) fn flush(&mut self, socket: &GroupSocket) -> Flushed {
        loop {
            if let Some(destination) = self.destination.filter(|_| self.segments > 0) {
                let segment_size = (self.segments > 1).then_some(self.segment_size);
                self.sends += 1;
                match socket.send(destination, &self.buffer, segment_size) {
                    Ok(()) => {}
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        return Flushed::Blocked;
                    }
                    Err(err) => {
                        tracing::debug!(%err, segments = self.segments, "send failed");
                        self.errors += self.segments as u64;
                    }
                }
            }
            self.buffer.clear();
            self.segments = 0;
            self.destination = None;
            let Some(destination) = self.held.take() else {
                return Flushed::Done;
            };
            self.buffer.extend_from_slice(&self.held_datagram);
            self.commit(socket, 0, destination);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn open(group: &str) -> GroupSocket {
        let config = GroupConfig::on_loopback(group.parse().unwrap()).recv_buffer(4 << 20);
        config.validate_network().unwrap();
        GroupSocket::open(&config).unwrap()
    }

    /// Receives until `want` datagrams arrived or 5 s passed.
    fn collect(socket: &mut GroupSocket, want: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        for _ in 0..5000 {
            socket
                .recv_batch(|_, datagram| got.push(datagram.to_vec()))
                .unwrap();
            if got.len() >= want {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        got
    }

    #[test]
    fn gso_runs_arrive_as_the_original_datagrams_in_order() {
        let sender = open("239.255.77.1:47001");
        let mut receiver = open("239.255.77.1:47001");
        let mut batch = TxBatch::default();
        let mut sent = Vec::new();
        // Equal sizes (one GSO run), a shorter tail, then an empty datagram and odd sizes.
        for i in 0..100u32 {
            let len = match i {
                0..=59 => 1200,
                60 => 700,
                61 => 0,
                _ => 1 + (i as usize * 37) % 1500,
            };
            let datagram: Vec<u8> = (0..len).map(|b| (b as u32 ^ i) as u8).collect();
            assert_eq!(
                batch.push(&sender, sender.group(), &datagram),
                Flushed::Done
            );
            sent.push(datagram);
        }
        assert_eq!(batch.flush(&sender), Flushed::Done);
        assert_eq!(batch.errors, 0);
        assert!(batch.is_empty());
        let got = collect(&mut receiver, sent.len());
        assert_eq!(got, sent);
    }

    #[test]
    fn a_datagram_written_in_place_that_cannot_join_the_run_is_held_and_sent_after_it() {
        let sender = open("239.255.77.6:47006");
        let mut receiver = open("239.255.77.6:47006");
        let mut batch = TxBatch::default();
        let mut sent = Vec::new();
        // Written without `has_room`: 800, 800, then 1000 (larger than the run's segments:
        // held, sent after the run), then 1000 again, joining the held one's run.
        for (i, len) in [800usize, 800, 1000, 1000].into_iter().enumerate() {
            let datagram: Vec<u8> = (0..len).map(|b| (b + i) as u8).collect();
            let start = batch.buffer().len();
            batch.buffer().extend_from_slice(&datagram);
            assert_eq!(batch.commit(&sender, start, sender.group()), Flushed::Done);
            sent.push(datagram);
        }
        assert!(!batch.is_empty());
        assert_eq!(batch.flush(&sender), Flushed::Done);
        assert!(batch.is_empty());
        assert_eq!(batch.errors, 0);
        assert_eq!(collect(&mut receiver, sent.len()), sent);
    }

    /// The engine's pattern: `may_join` with the largest datagram, then datagrams shorter than
    /// it (ODATA with FEC on), with a longer one (a PARITY) after every 32. Runs stay as long
    /// as GSO allows instead of one send per datagram, and everything arrives in order.
    #[test]
    fn datagrams_shorter_than_the_largest_still_share_a_run() {
        let sender = open("239.255.77.7:47007");
        let mut receiver = open("239.255.77.7:47007");
        let mut batch = TxBatch::default();
        let (largest, data_len) = (1_300usize, 1_200usize);
        let mut sent = Vec::new();
        for i in 0..99usize {
            let len = if i % 33 == 32 { largest } else { data_len };
            assert!(batch.may_join(&sender, largest) || batch.flush(&sender) == Flushed::Done);
            let datagram: Vec<u8> = (0..len).map(|b| (b ^ i) as u8).collect();
            let start = batch.buffer().len();
            batch.buffer().extend_from_slice(&datagram);
            assert_eq!(batch.commit(&sender, start, sender.group()), Flushed::Done);
            sent.push(datagram);
        }
        assert_eq!(batch.flush(&sender), Flushed::Done);
        assert_eq!(batch.errors, 0);
        let per_run = sender.max_gso_segments().min(MAX_GSO_PAYLOAD / largest);
        // Each parity is held and starts a run of its own with the data after it.
        let bound = 3 * (33usize.div_ceil(per_run) + 2);
        assert!(
            batch.sends <= bound as u64,
            "{} sends for 99 datagrams, {per_run} per run (bound {bound})",
            batch.sends
        );
        assert_eq!(collect(&mut receiver, sent.len()), sent);
    }

    #[test]
    fn groups_sharing_a_port_do_not_hear_each_other() {
        let sender = open("239.255.77.2:47002");
        let mut other = open("239.255.77.3:47002");
        let mut same = open("239.255.77.2:47002");
        let mut batch = TxBatch::default();
        batch.push(&sender, sender.group(), b"hello");
        batch.flush(&sender);
        assert_eq!(collect(&mut same, 1), vec![b"hello".to_vec()]);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            other
                .recv_batch(|_, _| panic!("foreign group heard"))
                .unwrap(),
            0
        );
    }

    #[test]
    fn buffers_are_granted_and_reported() {
        let socket = open("239.255.77.4:47004");
        // Asked 4 MiB: granted at least that much, or the plain option's cap if FORCE was refused.
        assert!(socket.granted().recv_buffer > 0);
        assert!(socket.granted().send_buffer > 0);
        assert!(socket.granted().gro_segments >= 1);
    }

    #[test]
    fn an_interface_that_is_not_local_is_a_join_error_naming_the_interface() {
        let config = GroupConfig::on_loopback("239.255.77.5:47005".parse().unwrap())
            .interface(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)));
        let err = GroupSocket::open(&config).err().expect("join must fail");
        let text = err.to_string();
        assert!(text.contains("203.0.113.7"), "{text}");
    }
}
