//! TFTP: wire format, transfer state machine (sans-IO), timer wheel, sources, the shared file cache, filters, and the mio service.

pub mod busy_poll;
pub mod file_cache;
pub mod filters;
pub mod path;
pub mod service;
pub mod source;
pub mod timer;
pub mod transfer;
pub mod wire;
