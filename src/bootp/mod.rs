//! BOOTP/DHCP/PXE: wire format, server logic (sans-IO), leases, and the mio service.

pub mod acl;
pub mod auth_workers;
pub mod http_auth;
pub mod leases;
pub mod pxe;
pub mod server;
pub mod service;
pub mod wire;
