//! The NBD service: disk images served to diskless machines over the Network
//! Block Device protocol, each machine's writes to a `cow` export kept in an
//! overlay of its own.
//!
//! `wire` parses and emits the protocol's messages and `connection` is one
//! client's state machine (both sans-IO); `endpoint` (sans-IO) holds every
//! connection, knows which machine each one is and which overlay it uses, and when
//! overlays expire; `overlay` is the storage (images, copy-on-write overlays);
//! `service` is the thread's mio shell.

pub(crate) mod connection;
pub(crate) mod endpoint;
pub(crate) mod overlay;
pub(crate) mod service;
pub(crate) mod wire;
