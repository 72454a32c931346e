//! Public errors, one enum per operation. Messages say what to do about them.

use std::net::{IpAddr, SocketAddr};

/// A `GroupConfig` value that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The group address is not a multicast address.
    #[error(
        "{0} is not a multicast address: use an IPv4 group such as 239.255.0.1 (239.255.0.0/16 is the site-local scope)"
    )]
    NotMulticast(SocketAddr),
    /// IPv6 groups are not supported yet.
    #[error("IPv6 group {0} is not supported yet: use an IPv4 group such as 239.255.0.1")]
    Ipv6Unsupported(SocketAddr),
    /// Port 0 cannot be joined by other members.
    #[error("group port 0 cannot be shared: choose a fixed port such as 7400")]
    ZeroPort,
    /// The interface address does not match the group's address family.
    #[error(
        "interface {0} is not an IPv4 address: give the IPv4 address of the interface to use (127.0.0.1 for loopback)"
    )]
    InterfaceFamily(IpAddr),
    /// A loss probability outside [0, 1).
    #[error("injected loss must be within 0.0..1.0, got {0}")]
    LossOutOfRange(f64),
    /// The datagram size cannot hold a header plus data, or exceeds what UDP carries.
    #[error(
        "max_datagram {0} is out of range: use 512..=65000 bytes (1400 fits a 1500-byte Ethernet MTU)"
    )]
    DatagramSize(usize),
    /// A numeric setting that must be positive is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// A message size limit beyond what the window could ever hold.
    #[error(
        "max_message_len {max_message_len} exceeds window_bytes {window_bytes}: raise window_bytes or lower max_message_len"
    )]
    MessageExceedsWindow {
        /// The configured message limit.
        max_message_len: usize,
        /// The configured window size.
        window_bytes: usize,
    },
    /// A protocol parameter out of its documented range.
    #[error("{name} = {value} is out of range: {hint}")]
    OutOfRange {
        /// Setting name.
        name: &'static str,
        /// The rejected value, printed.
        value: String,
        /// What range is allowed.
        hint: &'static str,
    },
}

/// Joining a group failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The configuration is invalid.
    #[error("invalid group configuration: {0}")]
    Config(#[from] ConfigError),
    /// A socket operation failed.
    #[error("could not {action} for group {group}: {source}")]
    Socket {
        /// What was being done, e.g. "bind port 7400" or "join the group on interface 127.0.0.1".
        action: String,
        /// The group being joined.
        group: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The engine thread could not be started.
    #[error("could not start the engine thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// `send` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The message is larger than the configured maximum.
    #[error(
        "message of {len} bytes exceeds max_message_len {max}: raise GroupConfig::max_message_len or split the message"
    )]
    TooLarge {
        /// Message length.
        len: usize,
        /// Configured limit.
        max: usize,
    },
    /// The group was left or its engine stopped.
    #[error("the group is closed: join again to send")]
    Closed,
    /// The send queue is full (only from `try_send`): retry later or use the blocking `send`.
    #[error("send queue full: retry later or use the blocking send")]
    Full,
}

/// `recv` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// Nothing arrived within the timeout.
    #[error("no event within the timeout")]
    Timeout,
    /// Nothing is waiting (only from `try_recv`).
    #[error("no event waiting")]
    Empty,
    /// The group was left or its engine stopped; no more events will come.
    #[error("the group is closed: no more events will arrive")]
    Closed,
}
