//! Compiles `proto/auth.proto` with `protox` (pure Rust), so building needs no system `protoc`.

use std::{env, error::Error, fs, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto/auth.proto");
    let descriptors = protox::compile(["auth.proto"], ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // The encoded descriptor set feeds gRPC server reflection.
    fs::write(
        out_dir.join("auth_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
