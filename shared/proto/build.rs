//! Generates the Rust code of the storyreel v1 API from `proto/` (repository root) with
//! tonic-prost-build, and writes the file descriptor set used for gRPC reflection.
//!
//! protoc: `$PROTOC` when set, else Debian's `/usr/bin/protoc` (protobuf-compiler).
//! Well-known types (`google/protobuf/*.proto`): `$PROTOC_INCLUDE` when set, else
//! `/usr/include` (libprotobuf-dev), when it holds them.

use std::env;
use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

/// Debian's protoc, used when `PROTOC` is not set.
const DEFAULT_PROTOC: &str = "/usr/bin/protoc";
/// Where Debian's libprotobuf-dev puts the well-known `.proto` files.
const DEFAULT_PROTOC_INCLUDE: &str = "/usr/include";
/// Name of the file descriptor set in `OUT_DIR` (see `FILE_DESCRIPTOR_SET` in lib.rs).
const DESCRIPTOR_FILE: &str = "storyreel_descriptor.bin";

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto");
    let proto_root = proto_root
        .canonicalize()
        .map_err(|e| format!("proto directory {}: {e}", proto_root.display()))?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    // A directory makes cargo rescan every file below it, new files included.
    println!("cargo:rerun-if-changed={}", proto_root.display());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PROTOC");
    println!("cargo:rerun-if-env-changed=PROTOC_INCLUDE");

    let protos = proto_files(&proto_root)?;
    if protos.is_empty() {
        return Err(format!("no .proto files under {}", proto_root.display()).into());
    }

    let protoc = env::var_os("PROTOC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PROTOC));
    if !protoc.exists() {
        return Err(format!(
            "protoc not found at {} (install Debian's protobuf-compiler, or set PROTOC)",
            protoc.display()
        )
        .into());
    }

    let mut includes = vec![proto_root.clone()];
    match env::var_os("PROTOC_INCLUDE") {
        Some(dir) => includes.push(PathBuf::from(dir)),
        None => {
            let dir = Path::new(DEFAULT_PROTOC_INCLUDE);
            if dir.join("google/protobuf/timestamp.proto").exists() {
                includes.push(dir.to_path_buf());
            }
        }
    }

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(&protoc);
    // `prost::Name` on every message: the REST mirror finds a message's descriptor by it.
    config.enable_type_names();

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .file_descriptor_set_path(out_dir.join(DESCRIPTOR_FILE))
        // Large byte payloads as `bytes::Bytes`: cheap to slice and clone.
        .bytes(".storyreel.gateway.v1.GetArtifactResponse.data")
        .bytes(".storyreel.tts.v1.AudioChunk.pcm")
        .compile_with_config(config, &protos, &includes)?;
    Ok(())
}

/// All `.proto` files below `dir`, sorted so the generated output is deterministic.
fn proto_files(dir: &Path) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "proto") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}
