//! User stacks of map and fatal events, symbolized with inlined frames expanded.
//!
//! The kernel walks the frame-pointer chain at the probe, where the immediate caller's return
//! address is still at `*(RSP)` and not yet on the chain. Recent kernels add it themselves when
//! the probe sits on a function's `PUSH RBP` (Linux 6.13+); older ones skip it. The event carries
//! it as `caller`, and the full stack is the probed function, that caller (unless the walk
//! already has it), then the rest of the walk.

use serde::Serialize;

use crate::analyse::pclntab::Frame;

/// One source frame of a stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SourceFrame {
    pub function: String,
    pub file: String,
    pub line: u32,
}

/// The source frames of the program counters `pcs` (innermost first: the probed instruction,
/// then return addresses), each expanded into its inlined frames. Return addresses are looked up
/// one byte back, inside their CALL, so each names the line of the call.
pub fn symbolize(pcs: &[u64], symbolize_pc: impl Fn(u64) -> Vec<Frame>) -> Vec<SourceFrame> {
    pcs.iter()
        .enumerate()
        .filter(|&(_, &pc)| pc != 0)
        .flat_map(|(index, &pc)| {
            let lookup = if index == 0 { pc } else { pc - 1 };
            let frames = symbolize_pc(lookup);
            if frames.is_empty() {
                vec![SourceFrame {
                    function: format!("{pc:#x}"),
                    file: String::new(),
                    line: 0,
                }]
            } else {
                frames
                    .into_iter()
                    .map(|frame| SourceFrame {
                        function: frame.function,
                        file: frame.file,
                        line: frame.line,
                    })
                    .collect()
            }
        })
        .collect()
}

/// The program counters of an event's full stack: the walked stack's first frame (the probed
/// instruction), the caller, then the rest of the walk.
pub fn with_caller(walked: &[u64], caller: u64) -> Vec<u64> {
    if walked.get(1) == Some(&caller) || caller == 0 {
        return walked.to_vec();
    }
    let mut pcs = Vec::with_capacity(walked.len() + 1);
    pcs.extend(walked.first());
    pcs.push(caller);
    pcs.extend(walked.iter().skip(1));
    pcs
}

/// The last element of a source path (`main.go` of `/src/app/main.go`), as reports show it.
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The frames from the first one outside the runtime on: the map function the probe sits in
/// is noise to the reader.
pub fn user_frames(frames: &[SourceFrame]) -> impl Iterator<Item = &SourceFrame> {
    frames
        .iter()
        .skip_while(move |frame| frame.function.starts_with("runtime.") && frames.len() > 1)
}

/// The function a stack's access happened in, as reports show it first.
pub fn access_function(frames: &[SourceFrame]) -> &str {
    user_frames(frames)
        .next()
        .map_or("unknown", |frame| frame.function.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, line: u32) -> Frame {
        Frame {
            function: function.into(),
            file: "main.go".into(),
            line,
        }
    }

    #[test]
    fn expands_inlined_frames_and_looks_up_returns_inside_their_call() {
        let symbolize_pc = |pc: u64| match pc {
            0x100 => vec![frame("runtime.mapassign_fast64", 10)],
            0x1ff => vec![frame("main.helper", 20), frame("main.worker", 30)],
            0x2ff => vec![frame("main.main", 40)],
            _ => Vec::new(),
        };
        let pcs = with_caller(&[0x100, 0x300], 0x200);
        assert_eq!(pcs, vec![0x100, 0x200, 0x300]);
        // A kernel that already unwound the caller: nothing is added.
        assert_eq!(with_caller(&pcs, 0x200), pcs);
        let frames = symbolize(&pcs, symbolize_pc);
        let names: Vec<(&str, u32)> = frames
            .iter()
            .map(|f| (f.function.as_str(), f.line))
            .collect();
        assert_eq!(
            names,
            vec![
                ("runtime.mapassign_fast64", 10),
                ("main.helper", 20),
                ("main.worker", 30),
                ("main.main", 40)
            ]
        );
    }

    #[test]
    fn unknown_pcs_stay_visible_as_addresses() {
        let frames = symbolize(&[0x100, 0x500], |_| Vec::new());
        assert_eq!(frames[1].function, "0x500");
    }
}
