//! Running commands with a visible trace of what runs.

use std::{
    os::unix::process::CommandExt as _,
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_owned()
}

/// Runs `command` (in the workspace root unless it has a directory), failing unless it exits 0.
pub fn run(command: &mut Command) -> anyhow::Result<()> {
    if command.get_current_dir().is_none() {
        command.current_dir(workspace_root());
    }
    eprintln!("xtask: $ {}", describe(command));
    let status = command
        .status()
        .with_context(|| format!("cannot start {}", describe(command)))?;
    if !status.success() {
        bail!("`{}` failed: {status}", describe(command));
    }
    Ok(())
}

/// Runs `command` like [`run`], but kills it with everything it started (its process group)
/// if it has not finished within `limit`: a stuck test then fails the step, naming the limit,
/// instead of holding CI until its own time runs out.
pub fn run_within(command: &mut Command, limit: Duration) -> anyhow::Result<()> {
    if command.get_current_dir().is_none() {
        command.current_dir(workspace_root());
    }
    eprintln!(
        "xtask: $ {} (at most {} s)",
        describe(command),
        limit.as_secs()
    );
    let mut child = command
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", describe(command)))?;
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            // SAFETY: kill has no memory preconditions; the group is the one spawned above.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            bail!(
                "`{}` did not finish within {} s and was killed (the test running last is named above)",
                describe(command),
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if !status.success() {
        bail!("`{}` failed: {status}", describe(command));
    }
    Ok(())
}

/// Runs `command` and returns its standard output, or `None` if it cannot run or fails.
pub fn output(command: &mut Command) -> Option<String> {
    let output = command.output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

pub fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_within_kills_what_overstays_with_its_children() {
        let pid_file =
            std::env::temp_dir().join(format!("xtask-run-within-{}", std::process::id()));
        let started = Instant::now();
        let error = run_within(
            Command::new("sh")
                .arg("-c")
                .arg(format!("sleep 60 & echo $! > {}; wait", pid_file.display())),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(
            error.to_string().contains("did not finish within 1 s"),
            "{error}"
        );
        let grandchild = std::fs::read_to_string(&pid_file).unwrap();
        std::fs::remove_file(&pid_file).unwrap();
        // Killed, it may stay a zombie for a moment until init reaps it.
        let stat = format!("/proc/{}/stat", grandchild.trim());
        let gone_or_dead = || match std::fs::read_to_string(&stat) {
            Ok(stat) => stat.contains(") Z "),
            Err(_) => true,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !gone_or_dead() {
            assert!(
                Instant::now() < deadline,
                "the background sleep outlived the limit"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn run_within_passes_on_success_and_failure() {
        assert!(run_within(&mut Command::new("true"), Duration::from_secs(30)).is_ok());
        let error = run_within(&mut Command::new("false"), Duration::from_secs(30)).unwrap_err();
        assert!(error.to_string().contains("failed"), "{error}");
    }
}
