//! The public face: `ReliableGroup` (join, send, recv, stats, leave).
//!
//! A `ReliableGroup` is a handle on one engine thread (see `driver`): `send` pushes into the
//! bounded send ring, `recv` pops from the bounded event ring, both usable from any number of
//! threads at once (`ReliableGroup` is `Send + Sync`). Invariant: once the engine has stopped
//! (after `leave`, on drop, or if it failed), `send` returns `Closed` and `recv` returns the
//! events still queued, then `Closed` — nothing blocks forever.

use crate::config::GroupConfig;
use crate::driver::{self, Shared, Shutdown};
use crate::error::{JoinError, RecvError, SendError};
use crate::proto::{Event, SourceId};
use crate::ring::{PopError, PushError};
use crate::stats::Stats;
use bytes::Bytes;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A membership of one multicast group: send whole messages to every member and receive
/// theirs, reliably and in order per source.
///
/// ```
/// use rmcast::{Event, GroupConfig, ReliableGroup};
/// use std::time::Duration;
///
/// // Two members of one group on this host (loopback only: interface 127.0.0.1, TTL 0).
/// let group = "239.255.74.1:47400".parse()?;
/// let alice = ReliableGroup::join(GroupConfig::on_loopback(group))?;
/// let bob = ReliableGroup::join(GroupConfig::on_loopback(group))?;
/// alice.send(&b"hello"[..])?;
/// loop {
///     match bob.recv_timeout(Duration::from_secs(5))? {
///         Event::Message { source, data } => {
///             assert_eq!((source, &data[..]), (alice.id(), &b"hello"[..]));
///             break;
///         }
///         _other => {} // e.g. Event::SourceJoined
///     }
/// }
/// alice.leave();
/// bob.leave();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ReliableGroup {
    shared: Arc<Shared>,
    /// `None` once the engine was stopped and joined.
    engine: Option<JoinHandle<()>>,
    id: SourceId,
    max_message_len: usize,
}

// Many application threads share one group.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ReliableGroup>();
};

impl ReliableGroup {
    /// Joins the group described by `config` and starts its engine thread.
    ///
    /// Fails with [`JoinError::Config`] for an invalid configuration, [`JoinError::Socket`]
    /// naming the step that failed (bind, join on the interface, buffer sizes…), or
    /// [`JoinError::Thread`].
    pub fn join(config: GroupConfig) -> Result<ReliableGroup, JoinError> {
        let started = driver::start(&config)?;
        Ok(ReliableGroup {
            shared: started.shared,
            engine: Some(started.thread),
            id: started.id,
            max_message_len: started.max_message_len,
        })
    }

    /// This member's source id.
    #[must_use]
    pub fn id(&self) -> SourceId {
        self.id
    }

    /// Sends a message to the group, blocking while the send queue is full.
    pub fn send(&self, message: impl Into<Bytes>) -> Result<(), SendError> {
        let message = self.check(message.into())?;
        match self.shared.messages.push(message, None) {
            Ok(()) => {
                self.shared.message_pushed();
                Ok(())
            }
            Err(PushError::Closed(_)) => Err(SendError::Closed),
            // Without a deadline a push only returns once pushed or closed.
            Err(PushError::Full(_)) => Err(SendError::Full),
        }
    }

    /// Sends without blocking; `Err(SendError::Full)` when the queue is full.
    pub fn try_send(&self, message: impl Into<Bytes>) -> Result<(), SendError> {
        let message = self.check(message.into())?;
        match self.shared.messages.try_push(message) {
            Ok(()) => {
                self.shared.message_pushed();
                Ok(())
            }
            Err(PushError::Closed(_)) => Err(SendError::Closed),
            Err(PushError::Full(_)) => Err(SendError::Full),
        }
    }

    fn check(&self, message: Bytes) -> Result<Bytes, SendError> {
        if message.len() > self.max_message_len {
            return Err(SendError::TooLarge {
                len: message.len(),
                max: self.max_message_len,
            });
        }
        Ok(message)
    }

    /// Waits for the next event.
    pub fn recv(&self) -> Result<Event, RecvError> {
        self.popped(self.shared.events.pop(None))
    }

    /// Waits at most `timeout` for the next event.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Event, RecvError> {
        let deadline = driver::now().checked_add(timeout);
        match self.popped(self.shared.events.pop(deadline)) {
            Err(RecvError::Empty) => Err(RecvError::Timeout),
            other => other,
        }
    }

    /// Returns the next event if one is waiting.
    pub fn try_recv(&self) -> Result<Event, RecvError> {
        self.popped(self.shared.events.try_pop())
    }

    fn popped(&self, popped: Result<Event, PopError>) -> Result<Event, RecvError> {
        match popped {
            Ok(event) => {
                self.shared.event_popped();
                Ok(event)
            }
            Err(PopError::Empty) => Err(RecvError::Empty),
            Err(PopError::Closed) => Err(RecvError::Closed),
        }
    }

    /// A snapshot of the counters, fresh from the engine (or its last one if it stopped).
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Leaves the group: sends what is queued, keeps answering repairs for a linger, then
    /// stops the engine.
    ///
    /// Blocks until the engine has stopped: it stops accepting messages, sends those already
    /// queued, waits until the protocol has nothing left to send or repair, then keeps
    /// answering NAKs until none arrived for 200 ms (a member that never sent data skips this
    /// linger); all of it bounded by 30 s.
    pub fn leave(mut self) {
        self.stop(Shutdown::Leave);
    }

    /// Like [`ReliableGroup::leave`], with `linger` instead of
    /// [`GroupConfig::leave_linger`](crate::GroupConfig::leave_linger).
    ///
    /// For applications that know when the linger would serve nobody: once every receiver
    /// has confirmed the end of the stream (end to end, above rmcast), nobody will ask for a
    /// repair, and `Duration::ZERO` ends the member as soon as what was queued is sent. With
    /// a lost confirmation, keep the configured linger ([`ReliableGroup::leave`]).
    ///
    /// ```no_run
    /// # use rmcast::{GroupConfig, ReliableGroup};
    /// # use std::time::Duration;
    /// let group = ReliableGroup::join(GroupConfig::on_loopback("239.255.0.1:7400".parse()?))?;
    /// group.send(&b"last words"[..])?;
    /// // ... every receiver confirmed them ...
    /// group.leave_with_linger(Duration::ZERO);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn leave_with_linger(mut self, linger: Duration) {
        self.shared.override_linger(linger);
        self.stop(Shutdown::Leave);
    }

    fn stop(&mut self, how: Shutdown) {
        let Some(engine) = self.engine.take() else {
            return;
        };
        self.shared.request_shutdown(how);
        if engine.join().is_err() {
            tracing::error!("the rmcast engine thread panicked");
        }
    }
}

impl Drop for ReliableGroup {
    /// Like [`ReliableGroup::leave`], bounded by 5 s.
    fn drop(&mut self) {
        self.stop(Shutdown::Drop);
    }
}

impl std::fmt::Debug for ReliableGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReliableGroup")
            .field("id", &self.id)
            .field("running", &self.engine.is_some())
            .finish_non_exhaustive()
    }
}
