//! The bench scripts' own behaviour where it needs no server, no wrk and no build: the
//! values they refuse, and that a signal to a script stops the run it waits for.
//!
//! Every script is run with a clean environment and `PREBUILT` at a folder that does not
//! exist, so that a check that let a bad value through fails here quickly (on a missing
//! binary) instead of building and measuring.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// A folder holding a `cargo` that only says it was called: first on the scripts' PATH,
/// so that a check that comes after a build fails here at once, where it had started a
/// release build of the workspace (minutes, on a clean clone).
fn no_cargo() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("no-cargo");
    std::fs::create_dir_all(&dir).unwrap();
    // Written whole under a name of this process and thread, then renamed over: a
    // test running the scripts meanwhile, here or in another test process, finds the
    // old file or the new one, never a half-written one.
    let tmp = dir.join(format!(
        "cargo.{}.{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&tmp, "#!/bin/sh\necho 'a build was started' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&tmp, dir.join("cargo")).unwrap();
    dir
}

fn run(name: &str, vars: &[(&str, &str)]) -> Output {
    let mut path = std::ffi::OsString::from(no_cargo());
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    let mut cmd = Command::new("bash");
    cmd.arg(script(name))
        .env_clear()
        .env("PATH", path)
        .env("PREBUILT", "/nonexistent/deviceflow-benches-test")
        .stdin(Stdio::null());
    for (name, value) in vars {
        cmd.env(name, value);
    }
    cmd.output().expect("bash runs")
}

/// Exit status 1 and one line on stderr, starting `expected`: no bash trace, no second
/// message about something else.
fn assert_refused(out: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(lines.len(), 1, "one line, not: {stderr}");
    assert!(
        lines[0].starts_with(expected),
        "expected {expected:?}, got {stderr}"
    );
}

#[test]
fn a_core_list_that_cannot_be_read_is_refused_in_one_line() {
    assert_refused(
        &run("cores.sh", &[("SERVER_CPUS", "abc")]),
        "cores.sh: SERVER_CPUS must be a list of cores like 0-3,8, not 'abc'",
    );
    assert_refused(
        &run("cores.sh", &[("CLIENT_CPUS", "abc")]),
        "cores.sh: CLIENT_CPUS must be a list of cores like 0-3,8, not 'abc'",
    );
    // An empty range: no cores at all, which was then reported as THREADS being 0.
    assert_refused(
        &run("cores.sh", &[("CLIENT_CPUS", "1-0")]),
        "cores.sh: CLIENT_CPUS must be a list of cores like 0-3,8, not '1-0'",
    );
    // A core the machine lacks: taskset refused it once the run had begun, in two
    // lines, after the build.
    assert_refused(
        &run("cores.sh", &[("SERVER_CPUS", "0,9999")]),
        "cores.sh: SERVER_CPUS names core 9999, which this machine does not let the script use (it may use ",
    );
    assert_refused(
        &run("redis.sh", &[("CLIENT_CPUS", "9999")]),
        "redis.sh: CLIENT_CPUS names core 9999, which this machine does not let the script use",
    );
    // Lists that overlap without being equal: redis.sh compared them as strings.
    assert_refused(
        &run("redis.sh", &[("SERVER_CPUS", "0"), ("CLIENT_CPUS", "0,0")]),
        "redis.sh: core 0 is in both SERVER_CPUS and CLIENT_CPUS",
    );
}

#[test]
fn numbers_that_bash_arithmetic_would_wrap_are_refused() {
    // 99999999999999999999 wraps to 7766279631452241919 in bash and passed ">= 1".
    assert_refused(
        &run("cores.sh", &[("CODES", "99999999999999999999")]),
        "cores.sh: CODES must be a whole number below 1000000000",
    );
    assert_refused(
        &run("ceiling.sh", &[("DURATION", "99999999999999999999")]),
        "ceiling.sh: DURATION must be a whole number below 1000000000",
    );
}

#[test]
fn values_wrk_or_the_pinning_cannot_use_are_refused_before_anything_starts() {
    // wrk -t0 printed its usage; redis.sh's capture run failed without a word.
    assert_refused(
        &run("ceiling.sh", &[("THREADS", "0")]),
        "ceiling.sh: need ROUNDS, DURATION and THREADS of at least 1",
    );
    assert_refused(
        &run("redis.sh", &[("THREADS", "0")]),
        "redis.sh: need THREADS >= 1",
    );
    assert_refused(
        &run("ceiling.sh", &[("STRICT", "yes")]),
        "ceiling.sh: STRICT must be 0 or 1, not 'yes'",
    );
    assert_refused(
        &run("ceiling.sh", &[("TARGET_RATIO", "abc")]),
        "ceiling.sh: TARGET_RATIO must be a number like 0.90, not 'abc'",
    );
    // The server and wrk on one core measured each against the other, silently.
    assert_refused(
        &run("growth.sh", &[("SERVER_CPU", "1"), ("CLIENT_CPU", "1")]),
        "growth.sh: need two distinct usable cores",
    );
}

#[test]
fn what_was_refused_late_or_in_others_words_is_refused_first_in_the_scripts_own() {
    // OUT: mkdir's message, after the build (cores, redis) or the whole run (hostile).
    for name in ["cores.sh", "redis.sh", "hostile.sh", "ceiling.sh"] {
        assert_refused(
            &run(name, &[("OUT", "/proc/forbidden")]),
            &format!("{name}: OUT=/proc/forbidden is not a writable directory"),
        );
    }
    // bash's "abc: unbound variable", from a default computed before the check.
    assert_refused(
        &run("cores.sh", &[("THREADS", "abc")]),
        "cores.sh: THREADS must be a whole number below 1000000000, not 'abc'",
    );
    // Three lines after the server had started; accepted and read as off; a verdict
    // that blamed the duration.
    assert_refused(
        &run("hostile.sh", &[("ATTACKS", "bogus")]),
        "hostile.sh: ATTACKS must be any of signin,issuance,slowloris, or none, not 'bogus'",
    );
    assert_refused(
        &run("hostile.sh", &[("STRICT", "yes")]),
        "hostile.sh: STRICT must be 0 or 1, not 'yes'",
    );
    assert_refused(
        &run("hostile.sh", &[("DEVICES", "0")]),
        "hostile.sh: need DEVICES >= 1",
    );
    // An empty table after 44 s; cp's message.
    assert_refused(
        &run("redis.sh", &[("SETUPS", " ")]),
        "redis.sh: SETUPS names no setup",
    );
    assert_refused(
        &run("instructions.sh", &[("CEILING", "/tmp")]),
        "instructions.sh: CEILING=/tmp is not an executable file",
    );
}

#[test]
fn pack_refuses_what_it_cannot_build_before_building_anything() {
    let pack = |args: &[&str]| {
        Command::new("bash")
            .arg(script("pack.sh"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("bash runs")
    };
    assert_refused(&pack(&[]), "pack.sh: usage: bash benches/pack.sh DIR");
    let dir = std::env::temp_dir().join(format!("deviceflow-pack-{}", std::process::id()));
    let dir = dir.to_str().unwrap();
    assert_refused(
        &pack(&[dir, "new=HEAD"]),
        "pack.sh: each build is NAME=COMMIT (NAME in a-z, 0-9, _ and -, not 'new'), not 'new=HEAD'",
    );
    assert_refused(
        &pack(&[dir, "base=no-such-commit"]),
        "pack.sh: no-such-commit is not a commit of this checkout",
    );
    assert!(!std::path::Path::new(dir).exists(), "nothing was made");
}

fn alive(pid: u32) -> bool {
    // A zombie is dead: only its parent's wait is missing.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next();
            state != Some("Z")
        })
        .unwrap_or(false)
}

/// Polls `done` every 50 ms for at most `limit`; whether it came true.
fn within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        sleep(Duration::from_millis(50));
    }
    done()
}

#[test]
fn sigterm_to_a_script_stops_the_run_it_waits_for() {
    // A script as the benches are written: common.sh, then a long run (wrk's place is
    // taken by `sleep 300`) through `child`. Before, the run was a foreground command:
    // SIGTERM ended bash and left the run going; SIGINT was waited out.
    let work = std::env::temp_dir().join(format!("benches-scripts-test-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("a temporary folder");
    let pid_file = work.join("child.pid");
    let body = format!(
        "set -euo pipefail\n\
         script=test.sh work=$(mktemp -d) root={root}\n\
         source {common}\n\
         child bash -c 'echo $$ >{pid_file}; exec sleep 300'\n\
         echo finished\n",
        root = env!("CARGO_MANIFEST_DIR"),
        common = script("common.sh").display(),
        pid_file = pid_file.display(),
    );
    let mut bash = Command::new("bash")
        .arg("-c")
        .arg(body)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("bash runs");
    let started = within(Duration::from_secs(20), || {
        pid_file.exists() && std::fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n'))
    });
    if !started {
        // Nothing of this test is left behind when it fails.
        let _ = bash.kill();
        let _ = bash.wait();
        let _ = std::fs::remove_dir_all(&work);
        panic!("the child never started");
    }
    let child: u32 = std::fs::read_to_string(&pid_file)
        .expect("the child's PID")
        .trim()
        .parse()
        .expect("a PID");
    assert!(alive(child));
    let killed = Command::new("kill")
        .args(["-TERM", &bash.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let mut status = None;
    let exited = within(Duration::from_secs(20), || {
        status = bash.try_wait().expect("try_wait");
        status.is_some()
    });
    if !exited {
        let _ = bash.kill();
        let _ = Command::new("kill").arg(child.to_string()).status();
    }
    let _ = std::fs::remove_dir_all(&work);
    assert!(exited, "the script went on after SIGTERM");
    assert_eq!(status.and_then(|s| s.code()), Some(143));
    let still = alive(child);
    if still {
        let _ = Command::new("kill").arg(child.to_string()).status();
    }
    assert!(!still, "the script's run outlived it");
}
