//! Waking the engine thread from application threads, and the engine's one blocking call.
//!
//! Invariant (no lost wake-up, no syscall on the busy path): the engine raises `sleeping`, issues
//! a `SeqCst` fence and re-checks every source of work (rings, requests) before it blocks in
//! [`wait`]; a waker makes its work visible, issues a `SeqCst` fence and writes to the wake
//! socket only if it swaps `sleeping` from `true` to `false`. So either the engine's re-check sees
//! the work, or exactly one waker writes one byte and the engine's `poll` returns. While the engine
//! is running, waking it costs one fence and one load.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::time::Duration;

/// Shared half, used by application threads (and by the engine to announce it sleeps).
#[derive(Debug)]
pub(crate) struct EngineWaker {
    sleeping: AtomicBool,
    wake_tx: UnixDatagram,
}

/// Engine half: the socket [`wait`] listens on.
#[derive(Debug)]
pub(crate) struct WakeSignal {
    wake_rx: UnixDatagram,
}

/// A connected waker / signal pair.
pub(crate) fn wake_pair() -> io::Result<(EngineWaker, WakeSignal)> {
    let (wake_tx, wake_rx) = UnixDatagram::pair()?;
    wake_tx.set_nonblocking(true)?;
    wake_rx.set_nonblocking(true)?;
    Ok((
        EngineWaker {
            sleeping: AtomicBool::new(false),
            wake_tx,
        },
        WakeSignal { wake_rx },
    ))
}

impl EngineWaker {
    /// Makes sure the engine notices work made visible before this call.
    pub(crate) fn wake(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) && self.sleeping.swap(false, Ordering::SeqCst) {
            // A full socket buffer already holds a pending wake-up, so a failed send loses none.
            let _ = self.wake_tx.send(&[1]);
        }
    }

    /// Engine only: announces that it is about to block. The caller must re-check for work after
    /// this and call [`EngineWaker::awake`] if it finds some instead of waiting.
    pub(crate) fn about_to_sleep(&self) {
        self.sleeping.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Engine only: announces that it runs again.
    pub(crate) fn awake(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
    }
}

impl WakeSignal {
    /// Discards pending wake-up bytes.
    fn drain(&self) {
        let mut sink = [0u8; 16];
        while self.wake_rx.recv(&mut sink).is_ok() {}
    }
}

/// What the engine waits for besides a wake-up and the timeout.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Interest {
    /// A datagram to read on the group socket.
    pub(crate) readable: bool,
    /// Room in the group socket's send buffer.
    pub(crate) writable: bool,
}

/// Blocks until the group socket `socket` is ready for `interest`, a wake-up arrives, or
/// `timeout` passes (`None`: no timeout). Interruption by a signal counts as a wake-up.
pub(crate) fn wait(
    socket: RawFd,
    signal: &WakeSignal,
    interest: Interest,
    timeout: Option<Duration>,
) -> io::Result<()> {
    let mut events: libc::c_short = 0;
    if interest.readable {
        events |= libc::POLLIN;
    }
    if interest.writable {
        events |= libc::POLLOUT;
    }
    let mut fds = [
        libc::pollfd {
            fd: signal.wake_rx.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: socket,
            events,
            revents: 0,
        },
    ];
    let rc = poll(&mut fds, timeout);
    if fds[0].revents != 0 {
        signal.drain();
    }
    match rc {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::Interrupted => Ok(()),
        Err(err) => Err(err),
    }
}

/// `ppoll` with a nanosecond timeout (pacing deadlines are microseconds apart).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<()> {
    let spec = timeout.map(|timeout| libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        // Below 10^9, so it fits a c_long on every target.
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    });
    let spec_ptr = spec
        .as_ref()
        .map_or(std::ptr::null(), |spec| spec as *const libc::timespec);
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfd entries and
    // `spec_ptr` is null or points to `spec`, which outlives the call; no signal mask is passed.
    let rc = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            spec_ptr,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `poll` with the timeout rounded up to whole milliseconds.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<()> {
    let millis = timeout.map_or(-1, |timeout| {
        libc::c_int::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX)
    });
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfd entries.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::sync::Arc;

    #[expect(clippy::disallowed_methods, reason = "measuring a real blocking wait")]
    fn now() -> std::time::Instant {
        std::time::Instant::now()
    }

    fn idle_socket() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0").unwrap()
    }

    #[test]
    fn wait_returns_at_the_timeout_when_nothing_happens() {
        let (_waker, signal) = wake_pair().unwrap();
        let socket = idle_socket();
        let start = now();
        let interest = Interest {
            readable: true,
            writable: false,
        };
        wait(
            socket.as_raw_fd(),
            &signal,
            interest,
            Some(Duration::from_millis(30)),
        )
        .unwrap();
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(29), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }

    #[test]
    fn a_waker_interrupts_a_sleeping_engine_and_a_running_one_costs_no_write() {
        let (waker, signal) = wake_pair().unwrap();
        let waker = Arc::new(waker);
        // Not sleeping: wake() must not write (nothing pending afterwards).
        waker.wake();
        let mut byte = [0u8; 1];
        assert!(
            signal.wake_rx.recv(&mut byte).is_err(),
            "no write while running"
        );

        let socket = idle_socket();
        waker.about_to_sleep();
        let remote = Arc::clone(&waker);
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            remote.wake();
        });
        let start = now();
        let interest = Interest {
            readable: true,
            writable: false,
        };
        wait(
            socket.as_raw_fd(),
            &signal,
            interest,
            Some(Duration::from_secs(10)),
        )
        .unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "woken long before the timeout"
        );
        thread.join().unwrap();
        // The wake-up byte was consumed by wait().
        assert!(signal.wake_rx.recv(&mut byte).is_err());
    }
}
