//! Where race reports go, the moment each race is first found: `--output` or standard error,
//! text or JSON lines, flushed at once — a tracer stopped by `kill -9` or a node drain has
//! already written everything it found — with the `--dot-dir` graph of each race beside them;
//! at the end, the summary of each target (see [`report::Outcome`]).

use std::{
    io::{self, Write as _},
    path::{Path, PathBuf},
};

use crate::{
    detect::pipeline::ResolvedRace,
    error::TracerError,
    report::{self, graph, sarif::SarifLog, FatalCrash, Finding, Format, Outcome},
};

pub struct RaceLog {
    format: Format,
    /// `None`: standard error.
    output: Option<(PathBuf, io::BufWriter<std::fs::File>)>,
    dot_dir: Option<PathBuf>,
    /// Races reported so far, all targets together.
    reported: usize,
    /// With `--format sarif`, the findings until the log is written.
    sarif: SarifLog,
}

impl RaceLog {
    /// Opens (truncates) `--output` and creates `--dot-dir` now, so a bad path fails before
    /// anything is traced.
    pub fn open(
        format: Format,
        output: Option<&Path>,
        dot_dir: Option<&Path>,
    ) -> Result<Self, TracerError> {
        let output = match output {
            Some(path) => {
                let file = std::fs::File::create(path).map_err(failed(path))?;
                Some((path.to_owned(), io::BufWriter::new(file)))
            }
            None => None,
        };
        if let Some(dir) = dot_dir {
            std::fs::create_dir_all(dir).map_err(failed(dir))?;
        }
        Ok(Self {
            format,
            output,
            dot_dir: dot_dir.map(Path::to_owned),
            reported: 0,
            sarif: SarifLog::default(),
        })
    }

    /// Whether reports go somewhere other than standard error.
    pub fn to_file(&self) -> bool {
        self.output.is_some()
    }

    pub fn reported(&self) -> usize {
        self.reported
    }

    /// Writes the report of a race just found, and its graph as `race-N.dot` (`pidP-race-N.dot`
    /// when `several` targets share the log).
    pub fn found(
        &mut self,
        race: &ResolvedRace,
        finding: &Finding<'_>,
        several: bool,
    ) -> Result<(), TracerError> {
        let text = match self.format {
            Format::Text => report::text(race, finding),
            Format::Json => report::json(race, finding) + "\n",
            Format::Sarif => {
                self.sarif.race(race, finding);
                String::new()
            }
        };
        self.write(&text)?;
        self.reported += 1;
        if let Some(dir) = &self.dot_dir {
            let name = match several {
                true => format!("pid{}-race-{}.dot", finding.pid, finding.number),
                false => format!("race-{}.dot", finding.number),
            };
            let path = dir.join(name);
            let dot = graph::dot(race, race.graph.as_ref().unwrap_or(&Default::default()));
            std::fs::write(&path, dot).map_err(failed(&path))?;
        }
        Ok(())
    }

    /// Writes the report of the target's fatal map error.
    pub fn crashed(
        &mut self,
        crash: &FatalCrash,
        finding: &Finding<'_>,
    ) -> Result<(), TracerError> {
        let text = match self.format {
            Format::Text => crash.text(finding),
            Format::Json => crash.json(finding) + "\n",
            Format::Sarif => {
                self.sarif.crash(crash, finding);
                String::new()
            }
        };
        self.write(&text)
    }

    /// Writes a target's closing summary: each race's count and the verdict.
    pub fn summary(&mut self, outcome: &Outcome<'_>) -> Result<(), TracerError> {
        let text = match self.format {
            Format::Text => outcome.text(),
            Format::Json => outcome.json() + "\n",
            // The counts go to standard error with the rest of the summary.
            Format::Sarif => String::new(),
        };
        self.write(&text)?;
        if self.to_file() {
            eprintln!(
                "tracer: pid {} ({}): {}",
                outcome.pid,
                outcome.executable,
                outcome.verdict()
            );
        }
        Ok(())
    }

    /// After the last summary: the SARIF log, if that is the format, and where the graphs are.
    pub fn close(&mut self) -> Result<(), TracerError> {
        if self.format == Format::Sarif {
            let document = self.sarif.document();
            self.write(&document)?;
        }
        if let (Some(dir), 1..) = (&self.dot_dir, self.reported) {
            eprintln!(
                "tracer: {} race graph(s) in {} (render with: dot -Tsvg FILE.dot -o FILE.svg)",
                self.reported,
                dir.display()
            );
        }
        Ok(())
    }

    fn write(&mut self, text: &str) -> Result<(), TracerError> {
        match self.output.as_mut() {
            Some((path, writer)) => writer
                .write_all(text.as_bytes())
                .and_then(|()| writer.flush())
                .map_err(failed(path)),
            None => {
                let mut stderr = io::stderr().lock();
                // Standard error going away must not stop the tracing.
                let _ = stderr
                    .write_all(text.as_bytes())
                    .and_then(|()| stderr.flush());
                Ok(())
            }
        }
    }
}

fn failed(path: &Path) -> impl FnOnce(io::Error) -> TracerError {
    let path = path.to_owned();
    move |source| TracerError::Output { path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_in_the_file_as_soon_as_they_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("races.jsonl");
        let mut log =
            RaceLog::open(Format::Json, Some(&path), Some(&dir.path().join("graphs"))).unwrap();
        let race = report::tests::resolved(5);
        let finding = Finding {
            number: 1,
            pid: 42,
            executable: "svc",
            at: Some(std::time::SystemTime::now()),
            after: Some(std::time::Duration::from_millis(2500)),
        };
        log.found(&race, &finding, false).unwrap();
        // Read while the log is still open: nothing waits for the end.
        let written = std::fs::read_to_string(&path).unwrap();
        let record: serde_json::Value = serde_json::from_str(written.trim()).unwrap();
        assert_eq!(record["type"], "race");
        assert_eq!(record["id"], 1);
        assert_eq!(record["pid"], 42);
        assert_eq!(record["executable"], "svc");
        assert_eq!(record["found_after"], 2.5);
        assert!(record["found_at"].as_str().unwrap().ends_with('Z'));
        assert!(
            record.get("count").is_none(),
            "counts come with the summary"
        );
        assert!(dir.path().join("graphs/race-1.dot").exists());
        assert_eq!(log.reported(), 1);
        let races = [race];
        log.summary(&Outcome {
            pid: 42,
            executable: "svc",
            stopped: "interrupted",
            elapsed: None,
            cost: None,
            races: &races,
            fatal_errors: &[],
        })
        .unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        let summary: serde_json::Value =
            serde_json::from_str(written.lines().nth(1).unwrap()).unwrap();
        assert_eq!(summary["type"], "summary");
        assert_eq!(summary["races"][0]["id"], 1);
        assert_eq!(summary["races"][0]["count"], 5);
    }

    #[test]
    fn a_bad_output_path_fails_before_tracing() {
        let error = RaceLog::open(
            Format::Text,
            Some(Path::new("/nonexistent/dir/races.txt")),
            None,
        )
        .err()
        .unwrap();
        assert!(matches!(error, TracerError::Output { .. }), "{error}");
    }
}
