//! Generates the `vtctlservice.Vtctld` server stubs from the client crate's `proto/` (one
//! source of the protos); the messages are not generated again but taken from `vtctld-client`,
//! so that the fake and the client speak the very same Rust types.

use std::error::Error;

const PROTO_DIR: &str = "../vtctld-client/proto";
const SERVICE: &str = "vtctlservice.proto";

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed={PROTO_DIR}");
    let mut descriptors = protox::compile([format!("{PROTO_DIR}/{SERVICE}")], [PROTO_DIR])?;
    // Only the service: its messages come from the client crate (the extern paths below).
    descriptors.file.retain(|file| file.name() == SERVICE);
    let mut config = tonic_prost_build::configure();
    for package in ["vttime", "topodata", "logutil", "mysqlctl", "vtctldata"] {
        config = config.extern_path(
            format!(".{package}"),
            format!("::vtctld_client::proto::{package}"),
        );
    }
    config
        .build_client(false)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
