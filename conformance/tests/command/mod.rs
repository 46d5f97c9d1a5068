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
    command_writing_to(args, std::process::Stdio::piped()).await
}

/// [`command`] with its standard output going to `stdout` (`Run::stdout` is then
/// empty unless `stdout` is piped).
pub async fn command_writing_to(args: &[&str], stdout: std::process::Stdio) -> Run {
    run(args, stdout, &[]).await
}

/// [`command`] with environment variables set (`Some`) or removed (`None`).
pub async fn command_with_env(args: &[&str], env: &[(&str, Option<&std::ffi::OsStr>)]) -> Run {
    run(args, std::process::Stdio::piped(), env).await
}

async fn run(
    args: &[&str],
    stdout: std::process::Stdio,
    env: &[(&str, Option<&std::ffi::OsStr>)],
) -> Run {
    let mut cmd = tokio::process::Command::new(BIN);
    for (name, value) in env {
        match value {
            Some(value) => cmd.env(name, value),
            None => cmd.env_remove(name),
        };
    }
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        cmd.args(args)
            .arg("--quiet")
            .env_remove("COLUMNS")
            .env_remove("RUST_BACKTRACE")
            .stdout(stdout)
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            // Not `output()`, which would pipe standard output whatever it was set to.
            .spawn()
            .unwrap()
            .wait_with_output(),
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
