//! The Go operator's naming facts, with no Kubernetes client in sight: hashed child names and
//! tablet UIDs, Vitess key ranges, and the label and annotation keys (DESIGN §3).

pub mod cron;
pub mod keyrange;
pub mod labels;
pub mod names;
