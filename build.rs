//! Build-time code generation, into OUT_DIR:
//! - the GLSL shaders under `src/gpu/shaders/` to SPIR-V (with glslangValidator, installed by
//!   `scripts/setup-system`), where `include_bytes!` picks them up;
//! - the gRPC contract `proto/render/v1/render.proto` to Rust (tonic client and server) plus
//!   an encoded file descriptor set for server reflection (`src/grpc/mod.rs` includes both).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    compile_protos(&out_dir);
    compile_shaders(&out_dir);
}

/// The root of the .proto import tree.
const PROTO_ROOT: &str = "proto";
/// The contract whose Rust code is generated.
const RENDER_PROTO: &str = "render/v1/render.proto";
/// Compiled only so that its descriptors reach the reflection set: clients decode the
/// `google.rpc` error details the server attaches to statuses with them.
const ERROR_DETAILS_PROTO: &str = "google/rpc/error_details.proto";
/// The encoded `FileDescriptorSet` that `src/grpc/mod.rs` embeds for reflection.
const DESCRIPTOR_SET_FILE: &str = "render_v1_descriptor.bin";

/// Compiles the protos with protox (a protobuf compiler in Rust with the well-known types
/// built in, so the build needs no protoc), writes the descriptor set with every imported
/// file (self-contained for reflection), and generates Rust code for `render.v1` only: the
/// `google.protobuf` and `google.rpc` types come from prost-types and tonic-types.
fn compile_protos(out_dir: &Path) {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    for file in [RENDER_PROTO, ERROR_DETAILS_PROTO, "google/rpc/status.proto"] {
        println!("cargo:rerun-if-changed={PROTO_ROOT}/{file}");
    }
    let mut compiler = protox::Compiler::new([PROTO_ROOT])
        .unwrap_or_else(|e| panic!("cannot read the proto root {PROTO_ROOT}: {e}"));
    compiler.include_imports(true).include_source_info(true);
    compiler
        .open_files([RENDER_PROTO, ERROR_DETAILS_PROTO])
        .unwrap_or_else(|e| panic!("cannot compile the protos under {PROTO_ROOT}: {e:?}"));
    let descriptor_path = out_dir.join(DESCRIPTOR_SET_FILE);
    std::fs::write(&descriptor_path, compiler.encode_file_descriptor_set()).unwrap_or_else(|e| {
        panic!(
            "cannot write the descriptor set {}: {e}",
            descriptor_path.display()
        )
    });

    // prost-build needs the imported files to resolve field types; it emits no code for
    // types under an extern path, so only `render.v1.rs` is written.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // `.google.protobuf` → `::prost_types` is prost-build's default mapping.
        .extern_path(".google.rpc", "::tonic_types::pb")
        .compile_fds(compiler.file_descriptor_set())
        .unwrap_or_else(|e| panic!("cannot generate Rust code for {RENDER_PROTO}: {e}"));
}

fn compile_shaders(out_dir: &Path) {
    let shader_dir = Path::new("src/gpu/shaders");
    println!("cargo:rerun-if-changed={}", shader_dir.display());
    let Ok(entries) = std::fs::read_dir(shader_dir) else {
        return;
    };
    let mut shaders: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("vert" | "frag" | "comp")
            )
        })
        .collect();
    shaders.sort();
    for src in shaders {
        println!("cargo:rerun-if-changed={}", src.display());
        let name = src
            .file_name()
            .and_then(|n| n.to_str())
            .expect("shader file name");
        let dst = out_dir.join(format!("{name}.spv"));
        let status = Command::new("glslangValidator")
            .args(["-V", "--target-env", "vulkan1.1", "-o"])
            .arg(&dst)
            .arg(&src)
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run glslangValidator ({e}); install it with scripts/setup-system")
            });
        assert!(
            status.success(),
            "glslangValidator failed on {}",
            src.display()
        );
    }
}
