//! The `run` process around the controllers: its HTTP endpoints, Prometheus metrics, logs and
//! leader election.

pub mod http;
pub mod metrics;
pub mod operate;
