//! wharf-shim: the per-container monitor, and `proto`, its control protocol, shared with the
//! daemon.

pub mod args;
pub mod jsonlog;
pub mod proto;
pub mod timefmt;
