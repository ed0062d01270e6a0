//! The traced process. In: a pid (`attach`), an executable's name (`attach --exe`,
//! [`discover`]) or a command line (`run`). Out: the running executable to analyse, a child
//! started paused before its first instruction, and a pidfd that says when the process exits.

pub mod discover;

use std::{
    ffi::{CString, OsStr, OsString},
    io,
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::ffi::OsStrExt as _,
    },
    path::{Path, PathBuf},
};

use crate::error::TracerError;

/// The executable of a running process: a path the kernel and tracer can open even across
/// mount namespaces (`/proc/PID/exe`), and the name to show the user.
pub struct RunningExecutable {
    pub open_path: PathBuf,
    pub display_path: PathBuf,
    /// Readable once this very process has exited, whatever later gets its pid.
    pub exit: OwnedFd,
}

/// Checks that `pid` is a live process (not a zombie) and finds its executable. The process is
/// pinned first (a pidfd), so everything read afterwards is known to be about it as long as
/// [`has_exited`] says no.
pub fn running_executable(pid: u32) -> Result<RunningExecutable, TracerError> {
    let exit = exit_notifier(pid)?;
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let stat = std::fs::read_to_string(proc_dir.join("stat"))
        .map_err(|_| TracerError::NoSuchProcess(pid))?;
    if process_state(&stat) == Some('Z') || has_exited(&exit) {
        return Err(TracerError::ProcessExited(pid));
    }
    let open_path = proc_dir.join("exe");
    let display_path = match std::fs::read_link(&open_path) {
        Ok(target) => target,
        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
            return Err(TracerError::NoPrivileges(format!(
                "cannot read the executable of pid {pid} ({error}): tracing another user's \
                 process needs CAP_SYS_PTRACE as well as CAP_BPF and CAP_PERFMON"
            )))
        }
        Err(_) => {
            return Err(TracerError::NotGoProgram {
                path: proc_dir,
                reason: "it has no executable (a kernel thread?)".into(),
            })
        }
    };
    Ok(RunningExecutable {
        open_path,
        display_path,
        exit,
    })
}

/// The state letter of `/proc/PID/stat` (after the parenthesised command name, which may itself
/// contain spaces and parentheses).
fn process_state(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The kernel-mode CPU time process `pid` has used so far (`stime` of `/proc/PID/stat`), where
/// uprobe traps and programs are counted, or `None` once it is gone.
pub fn system_time(pid: u32) -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = system_ticks(&stat)?;
    (ticks_per_second > 0)
        .then(|| std::time::Duration::from_secs_f64(ticks as f64 / ticks_per_second as f64))
}

/// `stime`, the 15th field of `/proc/PID/stat`: the 13th after the command name.
fn system_ticks(stat: &str) -> Option<u64> {
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(12)?
        .parse()
        .ok()
}

/// Finds `program` the way a shell would: a name with a slash is a path, otherwise each `PATH`
/// entry is tried for an executable regular file.
pub fn resolve_program(program: &OsStr) -> Result<PathBuf, TracerError> {
    let name = program.to_string_lossy().into_owned();
    let candidates: Vec<PathBuf> = if program.as_bytes().contains(&b'/') {
        vec![PathBuf::from(program)]
    } else {
        let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .collect()
    };
    for candidate in &candidates {
        if let Ok(metadata) = std::fs::metadata(candidate) {
            if !metadata.is_file() {
                continue;
            }
            if !is_executable(candidate) {
                return Err(TracerError::ProgramNotExecutable {
                    program: name,
                    reason: "not executable (permission denied)".into(),
                });
            }
            return Ok(candidate.clone());
        }
    }
    Err(TracerError::ProgramNotFound {
        program: name,
        reason: "no such file".into(),
    })
}

fn is_executable(path: &Path) -> bool {
    let Ok(path) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path.
    unsafe { libc::access(path.as_ptr(), libc::X_OK) == 0 }
}

/// A child process forked and blocked before `execv`, so probes can be attached to it before the
/// program runs its first instruction.
pub struct PausedChild {
    pub pid: u32,
    release: OwnedFd,
    exec_error: OwnedFd,
    program: String,
}

/// Forks a child that waits on a pipe, then `execv`s `path` with `args` (`args[0]` is `argv[0]`).
///
/// Must be called while the process is single-threaded (before the async runtime starts): the
/// child only makes async-signal-safe calls between `fork` and `execv`.
pub fn spawn_paused(path: &Path, args: &[OsString]) -> Result<PausedChild, TracerError> {
    let program = args
        .first()
        .map(|arg| arg.to_string_lossy().into_owned())
        .unwrap_or_default();
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| anyhow::anyhow!("program path contains a NUL byte"))?;
    let c_args: Vec<CString> = args
        .iter()
        .map(|arg| CString::new(arg.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("an argument contains a NUL byte"))?;
    let mut argv: Vec<*const libc::c_char> = c_args.iter().map(|arg| arg.as_ptr()).collect();
    argv.push(std::ptr::null());

    let (release_read, release_write) = cloexec_pipe()?;
    let (error_read, error_write) = cloexec_pipe()?;
    // SAFETY: single-threaded here (documented precondition); the child below only calls
    // async-signal-safe functions on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(anyhow::anyhow!("fork: {}", io::Error::last_os_error()).into());
    }
    if pid == 0 {
        // SAFETY: child side of fork; see above.
        unsafe {
            let mut byte = 0u8;
            let released = libc::read(
                release_read.as_raw_fd(),
                std::ptr::from_mut::<u8>(&mut byte).cast(),
                1,
            );
            if released != 1 {
                libc::_exit(127);
            }
            // Rust ignores SIGPIPE at startup and ignored signals survive exec: undo that.
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::execv(c_path.as_ptr(), argv.as_ptr());
            let errno = *libc::__errno_location();
            libc::write(
                error_write.as_raw_fd(),
                std::ptr::from_ref::<i32>(&errno).cast(),
                size_of::<i32>(),
            );
            libc::_exit(127);
        }
    }
    drop(release_read);
    drop(error_write);
    Ok(PausedChild {
        pid: pid as u32,
        release: release_write,
        exec_error: error_read,
        program,
    })
}

impl PausedChild {
    /// Lets the child exec the program; fails if `execv` failed (the child has then exited).
    pub fn release(self) -> Result<u32, TracerError> {
        let byte = 1u8;
        // SAFETY: writing one byte from a valid buffer to our pipe end.
        let written = unsafe {
            libc::write(
                self.release.as_raw_fd(),
                std::ptr::from_ref::<u8>(&byte).cast(),
                1,
            )
        };
        if written != 1 {
            return Err(
                anyhow::anyhow!("releasing the child: {}", io::Error::last_os_error()).into(),
            );
        }
        let mut errno = 0i32;
        // SAFETY: reading into a valid i32; EOF (0) means execv succeeded (the pipe is CLOEXEC).
        let read = unsafe {
            libc::read(
                self.exec_error.as_raw_fd(),
                std::ptr::from_mut::<i32>(&mut errno).cast(),
                size_of::<i32>(),
            )
        };
        if read == size_of::<i32>() as isize {
            reap(self.pid);
            let reason = io::Error::from_raw_os_error(errno).to_string();
            return Err(if errno == libc::ENOENT {
                TracerError::ProgramNotFound {
                    program: self.program,
                    reason,
                }
            } else {
                TracerError::ProgramNotExecutable {
                    program: self.program,
                    reason,
                }
            });
        }
        Ok(self.pid)
    }

    /// Kills the child without ever running the program (attaching failed).
    pub fn abandon(self) {
        // SAFETY: our own child, still blocked on the pipe.
        unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
        reap(self.pid);
    }
}

fn reap(pid: u32) {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid as i32, &mut status, 0) };
}

fn cloexec_pipe() -> Result<(OwnedFd, OwnedFd), TracerError> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(anyhow::anyhow!("pipe2: {}", io::Error::last_os_error()).into());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A descriptor that becomes readable when process `pid` exits (pidfd_open(2)).
pub fn exit_notifier(pid: u32) -> Result<OwnedFd, TracerError> {
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        let error = io::Error::last_os_error();
        return Err(if error.raw_os_error() == Some(libc::ESRCH) {
            TracerError::NoSuchProcess(pid)
        } else {
            anyhow::anyhow!("pidfd_open({pid}): {error}").into()
        });
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Whether the process behind a descriptor from [`exit_notifier`] has exited (never blocks).
pub fn has_exited(exit_notifier: &OwnedFd) -> bool {
    let mut poll = libc::pollfd {
        fd: exit_notifier.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no waiting.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    ready > 0 && poll.revents & libc::POLLIN != 0
}

/// The CPU time process `pid` has used so far, all threads together (kernel time included,
/// where probe hits are spent), or `None` once it is gone.
pub fn cpu_time(pid: u32) -> Option<std::time::Duration> {
    let mut clock: libc::clockid_t = 0;
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointers; the clock id comes from the kernel.
    let readable = unsafe {
        libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) == 0
            && libc::clock_gettime(clock, &mut now) == 0
    };
    readable.then(|| std::time::Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
}

/// Reads `len` bytes of process `pid`'s memory at `address` (`/proc/PID/mem`).
pub fn read_memory(pid: u32, address: u64, len: usize) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt as _;
    let memory = std::fs::File::open(format!("/proc/{pid}/mem"))?;
    let mut bytes = vec![0; len];
    memory.read_exact_at(&mut bytes, address)?;
    Ok(bytes)
}

/// Waits for our child `pid` (after it has exited) and returns its status the way a shell
/// reports it: the exit code, or 128 + the signal that killed it.
pub fn wait_exit_status(pid: u32) -> Result<i32, TracerError> {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let waited = unsafe { libc::waitpid(pid as i32, &mut status, 0) };
    if waited < 0 {
        return Err(anyhow::anyhow!("waitpid({pid}): {}", io::Error::last_os_error()).into());
    }
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_time_is_read_after_the_command_name() {
        let stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 73 571 0 0 20 0";
        assert_eq!(system_ticks(stat), Some(571));
        assert_eq!(system_ticks("4242 (cut) S 1 2"), None);
        let own = system_time(std::process::id()).expect("own stat is readable");
        assert!(own < std::time::Duration::from_secs(3600));
    }

    #[test]
    fn parses_the_state_after_an_awkward_command_name() {
        assert_eq!(process_state("42 (a) b) S 1 2 3"), Some('S'));
        assert_eq!(process_state("42 (go) Z 1"), Some('Z'));
        assert_eq!(process_state("garbage"), None);
    }

    #[test]
    fn resolves_programs_like_a_shell() {
        assert!(resolve_program(OsStr::new("sh")).is_ok());
        assert!(matches!(
            resolve_program(OsStr::new("no-such-program-tracer-test")),
            Err(TracerError::ProgramNotFound { .. })
        ));
        let not_executable = tempfile::NamedTempFile::new().unwrap();
        assert!(matches!(
            resolve_program(not_executable.path().as_os_str()),
            Err(TracerError::ProgramNotExecutable { .. })
        ));
    }
}
