//! TFTP: wire format, transfer state machine (sans-IO), timer wheel, sources, the shared file cache, filters, the transfer sockets, and the mio service.

pub mod busy_poll;
pub mod file_cache;
pub mod path;
pub mod service;
pub mod source;
pub mod tid_socket;
pub mod timer;
pub mod transfer;
pub mod wire;
