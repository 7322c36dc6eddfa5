//! Build facts for the `mcpgate_build_info` metric and `mcpgate --version`: the compiler's
//! version, and the commit when the build passes one (`BUILD_GIT_COMMIT`, as the container
//! build does). Nothing here reads the work tree, so an edit never forces a rebuild of it.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=BUILD_GIT_COMMIT");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BUILD_RUSTC_VERSION={version}");
}
