//! The suite's binary run as a person runs it (no terminal width, no backtrace asked
//! for), within two minutes, with what it printed and its exit code.

// Each test binary compiles this module and uses part of it.
#![allow(dead_code)]

const BIN: &str = env!("CARGO_BIN_EXE_deviceflow-conformance");

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the suite with `args` and `--quiet`.
pub async fn command(args: &[&str]) -> Run {
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        tokio::process::Command::new(BIN)
            .args(args)
            .arg("--quiet")
            .env_remove("COLUMNS")
            .env_remove("RUST_BACKTRACE")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the command finishes")
    .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
