//! BOOTP/DHCP/PXE: wire format, the answer to one request, leases and the endpoint
//! (all sans-IO), the access policies, and the mio shell with its HTTP workers and
//! the lease file; and proxyDHCP beside a site's DHCP server, with the PXE boot
//! server on port 4011 (answers and endpoint sans-IO, and its own shell).

pub mod acl;
pub mod auth_workers;
pub mod endpoint;
pub mod http_auth;
pub mod lease_file;
pub mod leases;
pub mod pool;
pub mod proxy;
pub mod proxy_endpoint;
pub mod proxy_service;
pub mod pxe;
pub mod recent;
pub mod replies;
pub mod said_once;
pub mod server;
pub mod service;
pub mod wire;
