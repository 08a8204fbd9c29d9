//! A fresh application as a user writes it (`tests/build-script/`: `whakapapa` for the client,
//! `whakapapa-build` under `[build-dependencies]`) builds in debug and release with no other
//! build dependency, and its identity carries the commit, builder and build time its build
//! script recorded.

use std::path::{Path, PathBuf};
use std::process::Command;
use whakapapa::wire::Identity;

fn app_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/build-script")
}

/// Beside the workspace's own profiles (`target/build-script`), so a second run, and the
/// registry crates both builds share, are not compiled again.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/tests-<hash>
    exe.ancestors().nth(3).unwrap().join("build-script")
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(app_dir());
    // What the build script learns must come from the build script, not from this process.
    for name in [
        whakapapa::build::vars::COMMIT,
        whakapapa::build::vars::BUILT_BY,
        whakapapa::build::vars::BUILT_AT,
        "SOURCE_DATE_EPOCH",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
    ] {
        cmd.env_remove(name);
    }
    cmd
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Builds the application with `profile` and returns the identity it prints.
fn build_and_run(profile: &str, source_date_epoch: Option<&str>) -> Identity {
    let mut build = cargo();
    build.args(["build", "--quiet", "--profile", profile, "--target-dir"]);
    build.arg(target_dir());
    if let Some(epoch) = source_date_epoch {
        build.env("SOURCE_DATE_EPOCH", epoch);
    }
    output(&mut build);
    let dir = if profile == "dev" { "debug" } else { profile };
    let exe = target_dir().join(dir).join("build-script-app");
    let ua = output(&mut Command::new(&exe));
    Identity::parse(ua.trim())
}

fn git_commit() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(app_dir())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn today_utc() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let mut day = whakapapa::build::rfc3339_utc(now.as_secs() as i64).unwrap();
    day.truncate("YYYY-MM-DD".len());
    day
}

#[test]
fn a_build_script_app_carries_commit_builder_and_time_in_debug_and_release() {
    let tree = output(cargo().args([
        "tree", "--edges", "build", "--depth", "1", "--prefix", "none",
    ]));
    let build_deps: Vec<&str> = tree
        .lines()
        .filter(|l| {
            !l.trim().is_empty() && !l.starts_with("build-script-app") && !l.starts_with('[')
        })
        .collect();
    assert!(
        build_deps.len() == 1 && build_deps[0].starts_with("whakapapa-build "),
        "the build script needs whakapapa-build alone:\n{tree}"
    );

    let day_before = today_utc();
    let debug = build_and_run("dev", None);
    let day_after = today_utc();
    // Reproducible builds: the build time is SOURCE_DATE_EPOCH's.
    let release = build_and_run("release", Some("1700000000"));
    eprintln!("debug: {}\nrelease: {}", debug.text, release.text);

    for id in [&debug, &release] {
        assert_eq!(id.name.as_deref(), Some("build-script-app"), "{}", id.text);
        assert_eq!(id.version.as_deref(), Some("v0.2.0"), "{}", id.text);
        match git_commit() {
            Some(commit) => assert_eq!(id.commit.as_deref(), Some(&*commit), "{}", id.text),
            None => eprintln!("SKIPPED: the commit check (not a git checkout)"),
        }
        let by = id.built_by.as_deref().unwrap_or_default();
        assert!(
            by.contains('@') && !by.contains(' '),
            "builder {by:?}: {}",
            id.text
        );
    }
    let at = debug.built_at.as_deref().unwrap_or_default();
    assert!(
        at.starts_with(&day_before) || at.starts_with(&day_after),
        "debug build time {at:?}, today {day_before}"
    );
    assert!(at.ends_with('Z') && at.len() == 20, "{at:?}");
    assert_eq!(release.built_at.as_deref(), Some("2023-11-14T22:13:20Z"));
}
