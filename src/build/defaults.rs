//! Defaults the operator fills in where the spec is silent. One place, so `render`, the
//! controllers and the README agree.

/// The Vitess release whose images we default to (and whose vtctld the e2e suite runs).
pub const VITESS_IMAGE: &str = "vitess/lite:v24.0.3";
/// MySQL image for the mysql80Compatible flavour.
pub const MYSQLD_IMAGE: &str = "mysql:8.0.40";
/// Prometheus mysqld exporter.
pub const MYSQLD_EXPORTER_IMAGE: &str = "prom/mysqld-exporter:v0.18.0";
/// etcd for lockservers the operator deploys.
pub const ETCD_IMAGE: &str = "quay.io/coreos/etcd:v3.5.17";
/// Client port of etcd.
pub const ETCD_CLIENT_PORT: u16 = 2379;
/// Topology plugin Vitess uses for etcd.
pub const TOPO_IMPLEMENTATION: &str = "etcd2";
