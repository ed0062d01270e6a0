use std::{io::Write as _, process::ExitCode};

use clap::Parser as _;
use tracer::commands::cli::{Cli, Command};

fn main() -> ExitCode {
    // One output style: every line tracer writes to standard error starts with `tracer: `.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format(|out, record| match record.level() {
            log::Level::Error | log::Level::Warn => {
                writeln!(out, "tracer: warning: {}", record.args())
            }
            level => writeln!(
                out,
                "tracer: {} {}: {}",
                level.as_str().to_lowercase(),
                record.target(),
                record.args()
            ),
        })
        .init();
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Inspect { path, pid, format } => {
            tracer::commands::inspect(path.as_deref(), *pid, *format)
        }
        Command::Replay { recording, reports } => tracer::commands::replay(recording, reports),
        Command::Attach {
            pids,
            exes,
            options,
        } => tracer::commands::attach(pids, exes, options),
        Command::Run { options, command } => tracer::commands::run(command, options),
    };
    match outcome {
        Ok(status) => ExitCode::from(u8::try_from(status).unwrap_or(1)),
        Err(error) => {
            eprintln!("tracer: {error}");
            ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(1))
        }
    }
}
