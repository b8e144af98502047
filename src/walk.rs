//! Page sources shared by the subcommands. page-types' walks (PFN ranges, a process's address
//! space, files) live in [`crate::pagetypes`]; this module re-exports them for other users.

pub use crate::pagetypes::read::{Gather, Src, Word};
