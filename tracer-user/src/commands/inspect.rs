//! `tracer inspect`: what tracer learns from a Go executable and where it would probe it.
//! Builds a plain report from the analysis; rendering is separate so tests need no binary.

use std::{collections::BTreeMap, fmt::Write as _, io::Write as _, path::Path};

use serde::Serialize;

use crate::{
    analyse::{
        dwarf::RuntimeOffsets,
        syncsites::{Primitive, SyncSite},
        GoBinary, Linkage, MapImplementation,
    },
    commands::cli::InspectFormat,
    error::TracerError,
    events::stacks::file_name,
    plan::{
        self,
        cold::{self, WatchedCall},
        Observed, ProbePlan, ProbeSite,
    },
    target,
};

/// Everything `tracer inspect` shows.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    pub path: String,
    pub go_version: &'a str,
    pub maps: MapImplementation,
    pub linkage: Linkage,
    /// Field offsets the kernel programs read, and where they came from.
    pub offsets: RuntimeOffsets,
    /// Number of probe sites per operation.
    pub counts: BTreeMap<Observed, usize>,
    /// Number of inlined synchronisation sites per primitive.
    pub sync_counts: BTreeMap<Primitive, usize>,
    /// Slow-path calls whose inlined fast path could not be confirmed, with where they are.
    pub unconfirmed_sync_calls: Vec<UnprobedCall>,
    /// Sends and receives whose return is not probed (a probe there would be single-stepped):
    /// each completes at its goroutine's next event. The address is the return address.
    pub completed_at_next_event: Vec<UnprobedCall>,
    /// Planned functions the binary does not contain.
    pub absent: &'a [&'static str],
    pub sites: Vec<Located<'a, ProbeSite>>,
    pub sync_sites: Vec<Located<'a, SyncSite>>,
    /// Map calls of the program's own code, watched between windows under a budget.
    pub watched_calls: Vec<WatchedCall>,
}

/// A call tracer does not probe: a sync slow-path call whose inlined fast path was not
/// recognised, or the return of a send or receive completed at the goroutine's next event.
#[derive(Debug, Serialize)]
pub struct UnprobedCall {
    pub address: u64,
    /// The function the call was compiled into, and the line of the call there.
    #[serde(rename = "in")]
    pub in_function: String,
    pub file: String,
    pub line: u32,
}

impl UnprobedCall {
    pub fn new(binary: &GoBinary, address: u64) -> Self {
        let frames = binary.symbolize(address);
        let (in_function, file, line) = frames.last().map_or_else(
            || (format!("{address:#x}"), String::new(), 0),
            |frame| (frame.function.clone(), frame.file.clone(), frame.line),
        );
        Self {
            address,
            in_function,
            file,
            line,
        }
    }
}

/// A site with the source position it stands for.
#[derive(Debug, Serialize)]
pub struct Located<'a, T> {
    #[serde(flatten)]
    pub site: &'a T,
    /// The function the source position is in (for inlined sync sites: the caller).
    #[serde(rename = "in")]
    pub in_function: String,
    pub file: String,
    pub line: u32,
}

impl<'a, T> Located<'a, T> {
    /// `site` at the outermost (`caller`) or innermost frame of `pc`.
    fn new(binary: &GoBinary, site: &'a T, pc: u64, caller: bool) -> Self {
        let frames = binary.symbolize(pc);
        let frame = if caller {
            frames.last()
        } else {
            frames.first()
        };
        let (in_function, file, line) = frame.map_or_else(
            || (String::new(), String::new(), 0),
            |frame| (frame.function.clone(), frame.file.clone(), frame.line),
        );
        Self {
            site,
            in_function,
            file,
            line,
        }
    }
}

impl<'a> Report<'a> {
    pub fn new(binary: &'a GoBinary, plan: &'a ProbePlan) -> Self {
        let mut counts = BTreeMap::new();
        for site in &plan.sites {
            *counts.entry(site.operation).or_default() += 1;
        }
        let mut sync_counts = BTreeMap::new();
        for site in &plan.sync_sites {
            *sync_counts.entry(site.primitive).or_default() += 1;
        }
        Self {
            path: binary.path.display().to_string(),
            go_version: &binary.build_info.version,
            maps: binary.maps,
            linkage: binary.linkage,
            offsets: binary.offsets,
            counts,
            sync_counts,
            unconfirmed_sync_calls: plan
                .unconfirmed_sync_calls
                .iter()
                .map(|&address| UnprobedCall::new(binary, address))
                .collect(),
            completed_at_next_event: plan
                .completed_at_next_event
                .iter()
                // One byte back: the call's own line.
                .map(|&address| UnprobedCall {
                    address,
                    ..UnprobedCall::new(binary, address - 1)
                })
                .collect(),
            absent: &plan.absent,
            sites: plan
                .sites
                .iter()
                .map(|site| Located::new(binary, site, site.address, false))
                .collect(),
            sync_sites: plan
                .sync_sites
                .iter()
                .map(|site| Located::new(binary, site, site.probe, true))
                .collect(),
            watched_calls: cold::watched_calls(binary),
        }
    }

    /// Streams the JSON form (a big binary has tens of thousands of sites: no string copy).
    pub fn write_json(&self, output: impl std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(output, self).map_err(std::io::Error::from)
    }

    pub fn to_text(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "{}", self.path);
        let _ = writeln!(text, "  go version    {}", self.go_version);
        let _ = writeln!(text, "  maps          {}", json_name(&self.maps));
        let _ = writeln!(text, "  linkage       {}", json_name(&self.linkage));
        let _ = writeln!(
            text,
            "  offsets       from {}: g.goid {}, g.stack {}..{}, g.m {}, m.curg {}, hchan.lock {}",
            json_name(&self.offsets.source),
            self.offsets.g_goid,
            self.offsets.g_stack_lo,
            self.offsets.g_stack_hi,
            self.offsets.g_m,
            self.offsets.m_curg,
            self.offsets.hchan_lock
        );
        let _ = writeln!(text, "  probe sites   {}", self.sites.len());
        for (operation, count) in &self.counts {
            let _ = writeln!(text, "    {:<22}{count:>6}", json_name(operation));
        }
        let inlined: usize = self.sync_counts.values().sum();
        let _ = writeln!(text, "  inlined sync  {inlined}");
        for (primitive, count) in &self.sync_counts {
            let _ = writeln!(text, "    {:<22}{count:>6}", json_name(primitive));
        }
        let _ = writeln!(
            text,
            "  cold-code watch {} map calls of the program's own code",
            self.watched_calls.len()
        );
        if !self.completed_at_next_event.is_empty() {
            let _ = writeln!(
                text,
                "  {} sends and receives return where a probe would be single-stepped: \
                 completed at their goroutine's next event instead",
                self.completed_at_next_event.len()
            );
        }
        if !self.unconfirmed_sync_calls.is_empty() {
            let _ = writeln!(
                text,
                "  WARNING: {} slow-path calls without a recognisable fast path (not probed):",
                self.unconfirmed_sync_calls.len()
            );
            for call in &self.unconfirmed_sync_calls {
                let file = file_name(&call.file);
                let _ = writeln!(
                    text,
                    "    {:#x} in {} ({file}:{})",
                    call.address, call.in_function, call.line
                );
            }
        }
        if !self.absent.is_empty() {
            let _ = writeln!(
                text,
                "  not in this binary (never called): {}",
                self.absent.join(", ")
            );
        }
        text
    }
}

/// The name serde gives a unit variant (the same words in text and JSON output).
fn json_name(value: &impl Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `tracer inspect PATH | --pid PID`: prints the analysis and the probe plan.
pub fn inspect(
    path: Option<&Path>,
    pid: Option<u32>,
    format: InspectFormat,
) -> Result<i32, TracerError> {
    let binary = match (path, pid) {
        (_, Some(pid)) => {
            let executable = target::running_executable(pid)?;
            GoBinary::open(&executable.open_path, &executable.display_path)?
        }
        (Some(path), None) => GoBinary::open(path, path)?,
        (None, None) => unreachable!("clap requires a path or a pid"),
    };
    let plan = plan::plan(&binary);
    let report = Report::new(&binary, &plan);
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        InspectFormat::Text => stdout.write_all(report.to_text().as_bytes()),
        InspectFormat::Json => report
            .write_json(&mut stdout)
            .and_then(|()| stdout.write_all(b"\n")),
    }
    .and_then(|()| stdout.flush())
    .map_err(|source| TracerError::Output {
        path: "standard output".into(),
        source,
    })?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{catalogue::FunctionId, Placement};
    use tracer_common::KeyClass;

    fn site(operation: Observed, address: u64) -> ProbeSite {
        let id = FunctionId::of("runtime.mapassign_fast64").unwrap();
        ProbeSite {
            operation,
            id,
            function: id.function().name,
            placement: Placement::AfterStackCheck,
            address,
            file_offset: address - 0x40_0000,
            key: KeyClass::U64,
            result_moved: None,
            field: None,
        }
    }

    #[test]
    fn text_and_json_agree_on_names_and_counts() {
        let sites = [
            site(Observed::MapAssign, 0x40_1000),
            site(Observed::MapAssign, 0x40_2000),
            site(Observed::ChanSend, 0x40_3000),
        ];
        let report = Report {
            path: "/srv/app".into(),
            go_version: "go1.26.6",
            maps: MapImplementation::Swiss,
            linkage: Linkage::Pie,
            offsets: crate::analyse::dwarf::offsets_for_version(
                crate::analyse::GoVersion::parse("go1.26.6").unwrap(),
            )
            .unwrap(),
            counts: BTreeMap::from([(Observed::MapAssign, 2), (Observed::ChanSend, 1)]),
            sync_counts: BTreeMap::from([(Primitive::MutexLock, 3)]),
            unconfirmed_sync_calls: vec![UnprobedCall {
                address: 0x40_5000,
                in_function: "net/http.(*conn).serve".into(),
                file: "/go/src/net/http/server.go".into(),
                line: 3624,
            }],
            completed_at_next_event: vec![UnprobedCall {
                address: 0x40_7005,
                in_function: "net/http.(*persistConn).roundTrip".into(),
                file: "/go/src/net/http/transport.go".into(),
                line: 3066,
            }],
            absent: &["runtime.makemap64"],
            sites: sites
                .iter()
                .map(|site| Located {
                    site,
                    in_function: "runtime.mapassign_fast64".into(),
                    file: "runtime/map_fast64.go".into(),
                    line: 93,
                })
                .collect(),
            sync_sites: Vec::new(),
            watched_calls: vec![WatchedCall {
                address: 0x40_6000,
                file_offset: 0x6000,
                function: "main.reload".into(),
            }],
        };
        let text = report.to_text();
        assert!(text.contains("maps          swiss"), "{text}");
        assert!(text.contains("from version-table: g.goid 152"), "{text}");
        assert!(text.contains("linkage       pie"), "{text}");
        assert!(text.contains("map-assign"), "{text}");
        assert!(text.contains("runtime.makemap64"), "{text}");
        assert!(text.contains("mutex-lock"), "{text}");
        assert!(text.contains("1 slow-path calls without"), "{text}");
        assert!(
            text.contains("cold-code watch 1 map calls of the program's own code"),
            "{text}"
        );
        assert!(
            text.contains("0x405000 in net/http.(*conn).serve (server.go:3624)"),
            "{text}"
        );
        assert!(
            text.contains("1 sends and receives return where a probe would be single-stepped"),
            "{text}"
        );
        let mut bytes = Vec::new();
        report.write_json(&mut bytes).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["maps"], "swiss");
        assert_eq!(json["offsets"]["g_goid"], 152);
        assert_eq!(json["offsets"]["source"], "version-table");
        assert_eq!(json["counts"]["map-assign"], 2);
        let unprobed = &json["unconfirmed_sync_calls"][0];
        assert_eq!(
            (&unprobed["in"], &unprobed["line"]),
            (&"net/http.(*conn).serve".into(), &3624.into())
        );
        assert_eq!(json["counts"]["chan-send"], 1);
        assert_eq!(json["completed_at_next_event"][0]["line"], 3066);
        assert_eq!(json["sites"][0]["placement"], "after-stack-check");
        assert_eq!(json["sites"][0]["key"], "u64");
        assert_eq!(json["sites"][2]["file_offset"], 0x3000);
        assert_eq!(json["sites"][2]["file"], "runtime/map_fast64.go");
        assert_eq!(json["sites"][2]["line"], 93);
        assert_eq!(json["watched_calls"][0]["function"], "main.reload");
    }
}
