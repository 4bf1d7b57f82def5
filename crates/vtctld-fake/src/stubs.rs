//! The `vtctlservice.Vtctld` server stubs that `build.rs` generates; their messages are the
//! client crate's.

// Generated code: not ours to lint.
#![allow(
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    missing_docs,
    unreachable_pub
)]

include!(concat!(env!("OUT_DIR"), "/vtctlservice.rs"));
