//! Engine thread and sockets: the only place with real I/O and real time.
