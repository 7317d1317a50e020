//! bootd: a network-boot daemon (BOOTP/DHCP/PXE, TFTP, HTTP and NBD), successor of pybootd.
//!
//! Each protocol is split into a sans-IO core (parse/emit and state machines that
//! take `now`) and a thin mio shell running on its own thread. Imports run down the
//! layers: shells, then endpoints, then wire formats, then the shared nouns of `types`.

pub(crate) mod batch_receive;
pub(crate) mod bootp;
pub mod cli;
pub mod config;
pub mod daemon;
pub(crate) mod event;
pub(crate) mod files;
pub(crate) mod filters;
pub mod fuzzing;
pub(crate) mod http;
pub(crate) mod http_client;
pub mod lease_list;
pub(crate) mod limits;
pub mod logging;
pub(crate) mod metrics;
pub(crate) mod nbd;
pub(crate) mod net;
pub(crate) mod notify;
pub mod privileges;
pub mod reload;
pub(crate) mod room;
pub(crate) mod send_batch;
pub(crate) mod service_loop;
pub(crate) mod sockets;
pub(crate) mod startup;
pub(crate) mod status;
pub(crate) mod status_page;
pub mod supervisor;
pub(crate) mod syslog;
pub(crate) mod systemd;
pub(crate) mod tftp;
pub(crate) mod types;
