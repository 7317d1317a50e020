//! The HTTP file service (`-H`, `[httpd]`): the same tree as TFTP (the same root, a
//! directory or an `http://` mirror, the same `[filters]`, the same confinement in
//! `crate::files`) over HTTP/1.1, for firmware and loaders that fetch large files
//! faster over TCP than over lock-step TFTP (iPXE, UEFI HTTP boot, installers); and
//! bootd's own pages, `/metrics` and `/status`.
//!
//! The wire format (request heads, `Range`, response heads) is in [`wire`]; one
//! connection's state machine in [`connection`]; every decision about connections
//! and requests in the sans-IO [`endpoint`]; sockets, files, `sendfile` and reader
//! threads in the mio shell, [`service`].

pub mod connection;
pub mod endpoint;
pub mod service;
pub mod wire;
