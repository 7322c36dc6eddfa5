//! `cargo xtask fuzz`: the fuzz targets of `fuzz/` run with cargo-fuzz (libFuzzer).
//!
//! Only the stable toolchain is assumed. cargo-fuzz wants nightly for its sanitizer flags;
//! with `-s none` (no sanitizer: the targets are safe Rust, so ASan would find nothing the
//! panics do not) the remaining flags are accepted by stable when `RUSTC_BOOTSTRAP=1` is set
//! for the fuzz build, which is all this does. cargo-fuzz is installed into the ignored
//! `.cache/` when missing (pinned). New inputs a run finds go to `fuzz/target/new-corpus/`,
//! never into the committed `fuzz/corpus/` (merge them with `cargo fuzz cmin` by hand).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use crate::util::{root, step};

/// The cargo-fuzz release `cargo xtask` installs.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// The targets, each with its corpus in `fuzz/corpus/<name>`.
pub const TARGETS: &[&str] = &[
    "jsonrpc",
    "client_metadata",
    "sealed",
    "session_id",
    "redirect_uri",
    "config",
];

#[derive(clap::Args)]
pub struct Args {
    /// Seconds per target.
    #[arg(long, default_value_t = 300)]
    secs: u64,
    /// Only these targets (default: all).
    targets: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let targets: Vec<&str> = if args.targets.is_empty() {
        TARGETS.to_vec()
    } else {
        args.targets.iter().map(String::as_str).collect()
    };
    for target in &targets {
        anyhow::ensure!(TARGETS.contains(target), "no fuzz target named {target:?}");
    }
    fuzz(&targets, args.secs)
}

/// Runs each target for `secs` seconds, one after the other; a crash fails the step (libFuzzer
/// writes the input to `fuzz/artifacts/<target>/`).
pub fn fuzz(targets: &[&str], secs: u64) -> anyhow::Result<()> {
    let cargo_fuzz = ensure_cargo_fuzz()?;
    let dir = root().join("fuzz");
    for target in targets {
        let scratch = dir.join("target").join("new-corpus").join(target);
        std::fs::create_dir_all(&scratch)?;
        let mut cmd = Command::new(&cargo_fuzz);
        cmd.current_dir(&dir)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "--sanitizer", "none", target])
            .arg(&scratch)
            .arg(Path::new("corpus").join(target))
            .arg("--")
            .arg(format!("-max_total_time={secs}"))
            // Inputs past 64 KiB would only be refused by size limits before any parser.
            .arg("-max_len=65536")
            .arg("-print_final_stats=1");
        step(&mut cmd, &format!("fuzz {target} for {secs} s"))?;
    }
    Ok(())
}

/// The cargo-fuzz binary in `.cache/cargo-fuzz`, installed there when missing.
fn ensure_cargo_fuzz() -> anyhow::Result<PathBuf> {
    let install_root = root().join(".cache").join("cargo-fuzz");
    let bin = install_root.join("bin").join("cargo-fuzz");
    let stamp = install_root.join("mcpgate-pin.txt");
    if bin.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == CARGO_FUZZ_VERSION) {
        return Ok(bin);
    }
    std::fs::create_dir_all(&install_root).context("cannot create .cache/cargo-fuzz")?;
    step(
        crate::util::cargo()
            .args(["install", "cargo-fuzz", "--locked", "--version"])
            .arg(CARGO_FUZZ_VERSION)
            .arg("--root")
            .arg(&install_root),
        &format!("install cargo-fuzz {CARGO_FUZZ_VERSION} into .cache/cargo-fuzz"),
    )?;
    std::fs::write(&stamp, CARGO_FUZZ_VERSION)?;
    Ok(bin)
}
