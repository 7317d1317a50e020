//! TFTP: the wire format, the sans-IO endpoint (every protocol decision and every
//! transfer's state, with the transfer state machine and its timer wheel), and the
//! I/O around them: sources, the shared file cache, the transfer sockets, busy
//! polling, and the mio service shell. Names are checked and files opened under the
//! root by `crate::files`, which the HTTP service shares.

pub mod busy_poll;
pub mod endpoint;
pub mod file_cache;
pub mod listener;
pub mod port;
pub mod service;
pub mod source;
pub mod tid_socket;
pub mod timer;
pub mod transfer;
pub mod wire;
