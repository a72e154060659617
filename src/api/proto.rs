//! The code generated from `proto/guichet/v1/*.proto` (package `guichet.v1`).
#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("guichet.v1");

/// The encoded file descriptor set, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("guichet_v1_descriptor");
