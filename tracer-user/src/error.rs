//! The errors a user can hit, each with its own documented exit status (see docs/cli.md).

use std::path::PathBuf;

/// Everything that stops tracer before or while tracing. Each variant maps to one exit status so
/// scripts can tell a bad pid from a missing capability without parsing messages.
#[derive(Debug, thiserror::Error)]
pub enum TracerError {
    #[error("{0}")]
    Usage(String),
    #[error("no process with pid {0}")]
    NoSuchProcess(u32),
    /// A zombie, or a process that exited while tracer was attaching (its pid may already
    /// belong to another process, which is not traced).
    #[error("process {0} has exited")]
    ProcessExited(u32),
    #[error("{path}: not a Go program ({reason})")]
    NotGoProgram { path: PathBuf, reason: String },
    #[error("{path}: built with {version}, but tracer supports Go 1.21 to 1.27")]
    UnsupportedGoVersion { path: PathBuf, version: String },
    #[error("{path}: {reason}")]
    UnsupportedBinary { path: PathBuf, reason: String },
    #[error("missing privileges: {0}")]
    NoPrivileges(String),
    #[error("the kernel refused the probes: {0}")]
    ProbesRejected(String),
    #[error("{path}: {source}")]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a tracer recording: {reason}")]
    InvalidRecording {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("cannot run {program}: {reason}")]
    ProgramNotFound { program: String, reason: String },
    #[error("cannot run {program}: {reason}")]
    ProgramNotExecutable { program: String, reason: String },
    #[error("cannot serve metrics on {address}: {source}")]
    MetricsAddress {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Ctrl-C (or SIGTERM) while tracer was still attaching.
    #[error("interrupted before tracing started; no probe was left in place")]
    Interrupted,
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl TracerError {
    /// The process exit status for this error (documented in docs/cli.md; 66 is reserved for
    /// "a race was reported", as with `go build -race`).
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Usage(_) => 2,
            Self::Internal(_) => 70,
            Self::NoSuchProcess(_) | Self::ProcessExited(_) => 80,
            // What a shell reports for a program stopped by SIGINT.
            Self::Interrupted => 130,
            Self::NotGoProgram { .. } => 81,
            Self::UnsupportedGoVersion { .. } => 82,
            Self::UnsupportedBinary { .. } => 83,
            Self::NoPrivileges(_) => 84,
            Self::ProbesRejected(_) => 85,
            Self::Output { .. } => 86,
            Self::InvalidRecording { .. } => 87,
            Self::MetricsAddress { .. } => 88,
            Self::ProgramNotExecutable { .. } => 126,
            Self::ProgramNotFound { .. } => 127,
        }
    }
}

pub type Result<T, E = TracerError> = std::result::Result<T, E>;
