//! Architecture invariants that the compiler cannot check: the sans-IO layers (`wire`, `proto`,
//! `sim`) never touch sockets, threads, the real clock or the driver, and `wire` depends on
//! nothing else in the crate. A break here is a red test naming the rule, not a review comment.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Code lines of a file with `//` comments removed, so doc text may name what it forbids.
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = fs::read_to_string(path).expect("read source");
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let code = line.split("//").next().unwrap_or("").to_string();
            (i + 1, code)
        })
        .collect()
}

fn violations(layer: &str, forbidden: &[(&str, &str)]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(layer);
    let mut found = Vec::new();
    for file in rust_files(&root) {
        for (line_no, code) in code_lines(&file) {
            for (needle, rule) in forbidden {
                if code.contains(needle) {
                    found.push(format!(
                        "{}:{line_no}: `{needle}` — {rule}",
                        file.strip_prefix(env!("CARGO_MANIFEST_DIR"))
                            .unwrap_or(&file)
                            .display()
                    ));
                }
            }
        }
    }
    found
}

const SANS_IO: &[(&str, &str)] = &[
    (
        "crate::driver",
        "the sans-IO core must not depend on the driver",
    ),
    (
        "crate::ring",
        "the sans-IO core must not depend on the application rings",
    ),
    (
        "crate::group",
        "the sans-IO core must not depend on the public group API",
    ),
    ("socket2", "no sockets below the driver"),
    ("UdpSocket", "no sockets below the driver"),
    ("std::thread", "no threads below the driver"),
    ("thread::spawn", "no threads below the driver"),
    ("SystemTime", "time is injected as `now`"),
    ("parking_lot", "no locks in the single-threaded core"),
    ("thread_rng", "randomness comes from the session seed"),
    ("rand::rng()", "randomness comes from the session seed"),
    ("from_os_rng", "randomness comes from the session seed"),
];

#[test]
fn proto_is_sans_io() {
    let v = violations("proto", SANS_IO);
    assert!(v.is_empty(), "boundary broken:\n{}", v.join("\n"));
}

#[test]
fn sim_is_sans_io() {
    let v = violations("sim", SANS_IO);
    assert!(v.is_empty(), "boundary broken:\n{}", v.join("\n"));
}

#[test]
fn wire_depends_on_nothing_else_in_the_crate() {
    let mut rules: Vec<(&str, &str)> = SANS_IO.to_vec();
    rules.extend([
        ("crate::proto", "wire depends on nothing else in the crate"),
        ("crate::config", "wire depends on nothing else in the crate"),
        ("crate::stats", "wire depends on nothing else in the crate"),
        ("crate::sim", "wire depends on nothing else in the crate"),
        (
            "Instant",
            "wire carries timestamps as numbers, never clocks",
        ),
    ]);
    let v = violations("wire", &rules);
    assert!(v.is_empty(), "boundary broken:\n{}", v.join("\n"));
}

#[test]
fn the_only_clock_read_in_src_is_the_driver_clock_and_the_sim_epoch() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut readers = Vec::new();
    for file in rust_files(&root) {
        let rel = file
            .strip_prefix(&root)
            .unwrap_or(&file)
            .display()
            .to_string();
        // A module's unit tests may also live in a sibling `tests.rs`, compiled only under cfg(test).
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        // Unit tests sit at the bottom of a file behind `#[cfg(test)]`; they may read the clock once.
        for (line_no, code) in code_lines(&file)
            .into_iter()
            .take_while(|(_, code)| !code.contains("#[cfg(test)]"))
        {
            if code.contains("Instant::now") {
                readers.push(format!("{rel}:{line_no}"));
            }
        }
    }
    let allowed = |r: &String| r.starts_with("driver/clock.rs") || r.starts_with("sim/");
    let bad: Vec<&String> = readers.iter().filter(|r| !allowed(r)).collect();
    assert!(
        bad.is_empty(),
        "Instant::now outside driver/clock.rs and the simulator epoch: {bad:?}"
    );
}
