//! Compiles the GLSL shaders under `src/gpu/shaders/` to SPIR-V (with glslangValidator,
//! installed by `scripts/setup-system`) into OUT_DIR, where `include_bytes!` picks them up.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
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
