use std::process::ExitCode;

use clap::Parser as _;
use tracer::commands::cli::{Cli, Command};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Inspect { path, pid, format } => {
            tracer::commands::inspect(path.as_deref(), *pid, *format)
        }
        Command::Replay { recording, reports } => tracer::commands::replay(recording, reports),
        Command::Attach { pids, options } => tracer::commands::attach(pids, options),
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
