//! Multi-host filecast test in network namespaces: runs `tests/netlab.sh` (1 sender, 3
//! receivers on a netlab bridge, nftables loss of 1 % per receiver and 1 % shared at the
//! sender) against the `filecast` example and requires identical copies everywhere.
//!
//! Needs root (namespaces, nftables). Without root the test is skipped with a loud message;
//! as root, a missing netlab is a failure, not a skip. netlab is found at `$RMCAST_NETLAB`,
//! else at `shared/netlab/netlab` in the crate's parent directory or one of its ancestors.
//! The script tears its lab down in a trap; this test bounds the script's run and sends it
//! SIGTERM (which runs that trap) on overrun.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[expect(
    clippy::disallowed_methods,
    reason = "wall-clock bound of a process test"
)]
fn now() -> Instant {
    Instant::now()
}

#[test]
fn filecast_delivers_identical_trees_to_three_hosts_under_private_and_shared_loss() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Written to the process's stderr directly, not through `eprintln!`, so the test
        // harness's output capture cannot hide it.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"\n*****************************************************************\n\
              * SKIPPED: the netlab filecast test needs root (network          *\n\
              * namespaces, nftables). Run `cargo test --test netlab` as root. *\n\
              *****************************************************************\n\n",
        );
        return;
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // $RMCAST_NETLAB, else `shared/netlab/netlab` beside the crate or one of its ancestors.
    let netlab = std::env::var_os("RMCAST_NETLAB")
        .map(PathBuf::from)
        .or_else(|| {
            manifest
                .ancestors()
                .skip(1)
                .map(|dir| dir.join("shared/netlab/netlab"))
                .find(|candidate| candidate.exists())
        })
        .unwrap_or_else(|| manifest.join("../shared/netlab/netlab"));
    assert!(
        netlab.exists(),
        "netlab not found at {} (set RMCAST_NETLAB): the test runs as root, so it must not skip",
        netlab.display()
    );
    let (bin, profile) = support::build_example("filecast");
    // Unoptimized builds move ~10 MB/s on two shared cores: pace them so they keep up.
    let rate = if profile == "dev" { "100M" } else { "1G" };
    let mut child = Command::new("bash")
        .arg(manifest.join("tests/netlab.sh"))
        .arg(&bin)
        .arg(&netlab)
        .arg(rate)
        .spawn()
        .expect("run tests/netlab.sh");
    let deadline = now() + Duration::from_secs(240);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if now() >= deadline {
            // SIGTERM lets the script's trap tear the lab down.
            // SAFETY: signalling our own child by its pid.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            std::thread::sleep(Duration::from_secs(10));
            let _ = child.kill();
            panic!("tests/netlab.sh ran longer than 240 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "tests/netlab.sh failed: {status} (see its output above)"
    );
}
