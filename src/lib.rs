//! bootd: a network-boot daemon (BOOTP/DHCP/PXE and TFTP), successor of pybootd.
//!
//! Each protocol is split into a sans-IO core (parse/emit and state machines that
//! take `now`) and a thin mio shell running on its own thread. Imports run down the
//! layers: shells, then endpoints, then wire formats, then the shared nouns of `types`.

pub mod batch_receive;
pub mod bootp;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod event;
pub mod filters;
pub mod fuzzing;
pub mod limits;
pub mod logging;
pub mod net;
pub mod notify;
pub mod service_loop;
pub mod sockets;
pub mod supervisor;
pub mod syslog;
pub mod tftp;
pub mod types;
