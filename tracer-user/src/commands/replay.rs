//! `tracer replay FILE`: the detection of a `--events` recording, again, reported the way the
//! live session reported it.

use std::path::Path;

use super::RACE_EXIT_STATUS;
use crate::{
    commands::cli::ReportArgs,
    detect::pipeline::Detection,
    error::TracerError,
    events::recording::Recording,
    report::{Finding, Outcome},
};

/// `tracer replay FILE`: the races of a recording, in the order they were found, then the
/// summary; exit status 66 if there are any.
pub fn replay(recording: &Path, reports: &ReportArgs) -> Result<i32, TracerError> {
    let mut race_log = reports.race_log()?;
    let recording = Recording::read(recording)?;
    let (pid, executable) = (recording.pid, recording.executable.clone());
    let executable = executable.as_deref().unwrap_or("unknown");
    let mut detection = Detection::with_graphs(reports.dot_dir.is_some());
    detection.replay(recording);
    let races = detection.races();
    for (number, race) in (1..).zip(&races) {
        let finding = Finding {
            number,
            pid,
            executable,
            at: None,
            after: None,
        };
        race_log.found(race, &finding, false)?;
    }
    race_log.summary(&Outcome {
        pid,
        executable,
        stopped: "end of the recording",
        elapsed: None,
        cost: None,
        races: &races,
        fatal_errors: &[],
    })?;
    race_log.close()?;
    Ok(if races.is_empty() {
        0
    } else {
        RACE_EXIT_STATUS
    })
}
