//! The boot files, as every service that serves them (TFTP, and HTTP next) finds
//! them: requested names checked and made relative to the root ([`name`]), and
//! regular files opened under the root with no way out of it ([`root`]).

pub mod name;
pub mod root;
pub mod served;
