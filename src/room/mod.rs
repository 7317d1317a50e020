//! A room full of machines: several operating systems behind one iPXE menu, and
//! their files spread by BitTorrent with bootd's own HTTP service as the web seed.
//!
//! - [`menu`]: the iPXE menu script, made from the configuration (a value, so a
//!   reload swaps it whole), and the small per-OS description phase 1 reads;
//! - [`torrent`]: the v1 torrent of an OS's folder, with bootd's HTTP URL as the
//!   BEP 19 web seed and the configured tracker, cached by each file's size and
//!   modification time;
//! - [`published`]: the read-only table of what the HTTP service serves besides its
//!   root (the menu, the torrents, the OSes' files);
//! - [`builder`]: the thread that hashes the OSes' files (at start, when a file
//!   changes, on reload) and fills that table, so no service ever waits for it.

pub mod builder;
pub mod menu;
pub mod published;
pub mod torrent;
