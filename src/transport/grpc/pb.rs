//! Generated from `proto/auth.proto` by build.rs.

tonic::include_proto!("auth");

/// The encoded descriptors of auth.proto, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/auth_descriptor.bin"));
