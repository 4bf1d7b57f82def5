//! Generates Vitess' messages and the `vtctlservice.Vtctld` client (no server: the fake's crate
//! makes its own stubs) from `proto/` with protox, a proto compiler written in Rust, so
//! building needs no `protoc` binary.

use std::error::Error;

const PROTOS: &[&str] = &[
    "proto/vttime.proto",
    "proto/topodata.proto",
    "proto/logutil.proto",
    "proto/mysqlctl.proto",
    "proto/vtctldata.proto",
    "proto/vtctlservice.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .compile_fds(descriptors)?;
    Ok(())
}
