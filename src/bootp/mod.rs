//! BOOTP/DHCP/PXE: wire format, server logic (sans-IO), leases, and the mio service.

pub mod leases;
pub mod pxe;
pub mod server;
pub mod service;
pub mod wire;
