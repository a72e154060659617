//! Compiles `proto/guichet/v1/*.proto` with the vendored `protoc` (no system install needed) and
//! writes a file descriptor set for gRPC server reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // Build scripts run single-threaded; this only points tonic-prost-build at the vendored protoc.
    std::env::set_var("PROTOC", protoc);
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let files = [
        "proto/guichet/v1/common.proto",
        "proto/guichet/v1/agent_desktop.proto",
        "proto/guichet/v1/supervisor.proto",
        "proto/guichet/v1/interactions.proto",
        "proto/guichet/v1/sessions.proto",
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={file}");
    }
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("guichet_v1_descriptor.bin"))
        .compile_protos(&files, &["proto"])?;
    Ok(())
}
