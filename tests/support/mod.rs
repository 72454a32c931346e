//! Helpers shared by the integration tests that run the example programs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds example `name` with this test's cargo, profile, features and target directory, so
/// the build reuses what `cargo test` already compiled, and returns the binary's path and the
/// profile name. Cargo gives integration tests no path to examples (`CARGO_BIN_EXE_*` covers
/// only `[[bin]]` targets), hence the build.
pub(crate) fn build_example(name: &str) -> (PathBuf, String) {
    let exe = std::env::current_exe().expect("test executable path");
    // <target>/<profile>/deps/<test>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile> directory");
    let target_dir = profile_dir.parent().expect("target directory");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_owned(),
        Some(name) => name.to_owned(),
        None => panic!("unexpected test path {}", exe.display()),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--example", name, "--profile", &profile])
        .args(if cfg!(feature = "sim") {
            &["--features", "sim"][..]
        } else {
            &[]
        })
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap_or_else(|e| panic!("run cargo build --example {name}: {e}"));
    assert!(status.success(), "cargo build --example {name} failed");
    let bin = profile_dir.join("examples").join(name);
    assert!(bin.exists(), "{} missing after the build", bin.display());
    (bin, profile)
}
