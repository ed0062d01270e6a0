//! Happens-before graphs of races (`--dot-dir`): for each distinct race, one Graphviz DOT file
//! with the two goroutines' latest operations in program order, the synchronisation edges
//! between them that did happen, and the edge that is missing (dashed) between the two accesses.
//!
//! The detector keeps no history, so this module keeps a short one per goroutine while graphs
//! are asked for, and snapshots both goroutines' when a race is first found.

use std::{collections::HashMap, fmt::Write as _};

use crate::{
    detect::{
        history::{RaceGraph, Role, Step},
        pipeline::ResolvedRace,
        translate::Derived,
        Access, GoroutineId,
    },
    events::stacks::{access_function, file_name, SourceFrame},
    plan::catalogue::Global,
};

/// Escapes a string for a double-quoted DOT label.
fn quoted(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `main.(*service).reset\nmain.go:73`: where an access happened.
fn site_label(frames: &[SourceFrame]) -> String {
    let function = access_function(frames);
    let position = frames
        .iter()
        .find(|frame| frame.function == function)
        .map(|frame| {
            let file = file_name(&frame.file);
            format!("\\n{file}:{}", frame.line)
        })
        .unwrap_or_default();
    format!("{}{position}", quoted(function))
}

/// A happens-before object as a reader knows it: its address, or what translation derived it
/// from (`closing of 0xc000123000`, `any channel`).
fn object_label(object: u64) -> String {
    match Derived::split(object) {
        None => format!("{object:#x}"),
        Some((Derived::AnyChannel, _)) => "any channel".to_owned(),
        Some((Derived::AnySelect, _)) => "any select".to_owned(),
        Some((Derived::Flow, key)) => format!("I/O flow {key:#x}"),
        Some((Derived::Global, index)) => Global::ALL
            .into_iter()
            .find(|kind| *kind as u64 == index)
            .map_or_else(|| format!("global {index}"), |kind| kind.name().to_owned()),
        Some((kind, of)) => {
            let kind = match kind {
                Derived::Companion => "reverse side",
                Derived::Closing => "close",
                Derived::Callback => "callback",
                Derived::Pooled => "pooled value",
                Derived::Publication
                | Derived::AnyChannel
                | Derived::AnySelect
                | Derived::Flow
                | Derived::Global => "publication",
            };
            format!("{kind} of {of:#x}")
        }
    }
}

fn node_label(step: &Step) -> String {
    let what = match step.role {
        Role::Acquire(object) | Role::Release(object) | Role::Exchange(object) => {
            format!("{} {}", step.operation, object_label(object))
        }
        Role::AcquireAll => format!(
            "{} (start unseen: ordered after everything)",
            step.operation
        ),
        Role::Spawn(child) => format!("go (goroutine {child})"),
        Role::Access { map, .. } => format!("{} map {map:#x}", step.operation),
    };
    match &step.location {
        Some(location) => format!("{what}\\n{}", quoted(location).replace('\n', "\\n")),
        None => what,
    }
}

/// The DOT graph of one race.
pub fn dot(race: &ResolvedRace, graph: &RaceGraph) -> String {
    let report = &race.race;
    let mut text = String::new();
    let _ = writeln!(text, "digraph race {{");
    // Drawn when the race is first found: how often it recurs is in the session's summary.
    let _ = writeln!(
        text,
        "  label=\"{} race on map {:#x}\";\n  labelloc=t;\n  \
         node [shape=box, fontname=\"monospace\", fontsize=10];\n  edge [fontsize=9];",
        report.kind(),
        report.map,
    );
    // Each step's node: runs of the same operation on the same object share one.
    let mut node_of: HashMap<(&str, u64), u64> = HashMap::new();
    for (prefix, access, steps, stack) in [
        ("p", &report.previous, &graph.previous, &race.previous_stack),
        ("c", &report.current, &graph.current, &race.current_stack),
    ] {
        cluster(&mut text, &mut node_of, prefix, access, steps, stack);
    }
    // The edges that did happen between the two goroutines.
    for (from, to, to_goroutine) in [
        (
            ("p", &graph.previous),
            ("c", &graph.current),
            report.current.goroutine,
        ),
        (
            ("c", &graph.current),
            ("p", &graph.previous),
            report.previous.goroutine,
        ),
    ] {
        for (release, acquire) in edges(from.1, to.1, to_goroutine) {
            let _ = writeln!(
                text,
                "  {}{} -> {}{} [label=\"happens before\", color=blue];",
                from.0,
                node_of[&(from.0, release)],
                to.0,
                node_of[&(to.0, acquire)]
            );
        }
    }
    let _ = writeln!(
        text,
        "  p{} -> c{} [style=dashed, color=red, fontcolor=red, label=\"no happens-before \
         edge: race\"];",
        report.previous.seq, report.current.seq
    );
    text.push_str("}\n");
    text
}

/// One goroutine's cluster: its steps in program order (runs of one operation on one object
/// drawn once, with a count), the racing access highlighted. Notes in `node_of` which node
/// each step is drawn as.
fn cluster<'p>(
    text: &mut String,
    node_of: &mut HashMap<(&'p str, u64), u64>,
    prefix: &'p str,
    access: &Access,
    steps: &[Step],
    stack: &[SourceFrame],
) {
    let _ = writeln!(
        text,
        "  subgraph cluster_{prefix} {{\n    label=\"goroutine {}\";",
        access.goroutine
    );
    let mut nodes: Vec<(&Step, usize)> = Vec::new();
    for step in steps {
        match nodes.last_mut() {
            Some((first, count))
                if first.operation == step.operation
                    && first.role == step.role
                    && first.seq != access.seq
                    && step.seq != access.seq =>
            {
                *count += 1;
            }
            _ => nodes.push((step, 1)),
        }
        node_of.insert((prefix, step.seq), nodes.last().expect("just pushed").0.seq);
    }
    for &(step, count) in &nodes {
        let id = format!("{prefix}{}", step.seq);
        if step.seq == access.seq {
            let _ = writeln!(
                text,
                "    {id} [label=\"{} at {}\", color=red, penwidth=2];",
                access.op(),
                site_label(stack)
            );
        } else {
            let times = if count > 1 {
                format!(" (×{count})")
            } else {
                String::new()
            };
            let _ = writeln!(text, "    {id} [label=\"{}{times}\"];", node_label(step));
        }
    }
    for pair in nodes.windows(2) {
        let _ = writeln!(
            text,
            "    {prefix}{} -> {prefix}{} [color=gray];",
            pair[0].0.seq, pair[1].0.seq
        );
    }
    let _ = writeln!(text, "  }}");
}

/// The happens-before edges from one goroutine's steps to the other's (`to_goroutine`): each
/// release (or the spawn of the other) with the first later acquire of the same object (or
/// the other's first step), as (release, acquire) sequence numbers.
fn edges(from: &[Step], to: &[Step], to_goroutine: GoroutineId) -> Vec<(u64, u64)> {
    let mut edges = Vec::new();
    for release in from {
        let released = match release.role {
            Role::Release(object) | Role::Exchange(object) => Some(object),
            _ => None,
        };
        let synchronised = to
            .iter()
            .filter(|acquire| acquire.seq > release.seq)
            .find(|acquire| {
                let synchronises = match (released, &acquire.role) {
                    (Some(object), Role::Acquire(other) | Role::Exchange(other)) => {
                        object == *other
                    }
                    _ => false,
                };
                let spawns = release.role == Role::Spawn(to_goroutine)
                    && to.first().is_some_and(|first| first.seq == acquire.seq);
                synchronises || spawns
            });
        if let Some(acquire) = synchronised {
            edges.push((release.seq, acquire.seq));
        }
    }
    edges
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{
        history::{Histories, STEPS_PER_GOROUTINE},
        Operation, RaceReport,
    };

    fn access(goroutine: u64, seq: u64, write: bool) -> Access {
        Access {
            goroutine,
            write,
            site: seq,
            seq,
            created_at: None,
        }
    }

    fn resolved(race: RaceReport) -> ResolvedRace {
        let frame = |line| SourceFrame {
            function: "main.worker".into(),
            file: "/src/app/main.go".into(),
            line,
        };
        ResolvedRace {
            race,
            current_stack: vec![frame(20)],
            previous_stack: vec![frame(10)],
            current_created_at: Vec::new(),
            previous_created_at: Vec::new(),
            graph: None,
        }
    }

    #[test]
    fn draws_both_goroutines_the_edges_that_happened_and_the_missing_one() {
        let mut histories = Histories::default();
        let steps = [
            Operation::Spawn {
                parent: 1,
                child: 2,
                site: 0,
            },
            Operation::MapAccess {
                goroutine: 1,
                map: 0x100,
                write: true,
                site: 2,
            },
            Operation::Acquire {
                goroutine: 2,
                object: 0x200,
            },
            Operation::Release {
                goroutine: 2,
                object: 0x200,
            },
            Operation::Acquire {
                goroutine: 1,
                object: 0x200,
            },
            Operation::MapAccess {
                goroutine: 2,
                map: 0x100,
                write: true,
                site: 6,
            },
        ];
        for (seq, operation) in (1..).zip(&steps) {
            histories.record(seq, "op", operation, 0);
        }
        let race = RaceReport {
            map: 0x100,
            current: access(2, 6, true),
            previous: access(1, 2, true),
            count: 3,
        };
        let graph = histories.graph(&race);
        assert_eq!(graph.previous.len(), 3);
        assert_eq!(graph.current.len(), 3);
        let text = dot(&resolved(race), &graph);
        assert!(
            text.contains("label=\"write/write race on map 0x100\";"),
            "{text}"
        );
        assert!(text.contains("subgraph cluster_p {\n    label=\"goroutine 1\";"));
        assert!(
            text.contains("c6 [label=\"write at main.worker\\nmain.go:20\""),
            "{text}"
        );
        assert!(
            text.contains("p2 [label=\"write at main.worker\\nmain.go:10\""),
            "{text}"
        );
        // The spawn reaches the child's first step; g2's release reaches g1's acquire.
        assert!(
            text.contains("p1 -> c3 [label=\"happens before\""),
            "{text}"
        );
        assert!(
            text.contains("c4 -> p5 [label=\"happens before\""),
            "{text}"
        );
        assert!(text.contains("p2 -> c6 [style=dashed"), "{text}");
        assert_eq!(text.matches("happens before\"").count(), 2, "{text}");
    }

    #[test]
    fn an_access_out_of_the_window_is_still_drawn() {
        let mut histories = Histories::default();
        for seq in 10..10 + STEPS_PER_GOROUTINE as u64 {
            let unlock = Operation::Release {
                goroutine: 1,
                object: 0x300,
            };
            histories.record(seq, "unlock", &unlock, 0);
        }
        let race = RaceReport {
            map: 0x100,
            current: access(2, 50, false),
            previous: access(1, 3, true),
            count: 1,
        };
        let graph = histories.graph(&race);
        assert_eq!(graph.previous.len(), STEPS_PER_GOROUTINE + 1);
        assert_eq!(graph.previous[0].seq, 3);
        assert_eq!(graph.current.len(), 1);
        let text = dot(&resolved(race), &graph);
        assert!(text.contains("p3 -> c50 [style=dashed"), "{text}");
        // The run of identical unlocks is one node.
        assert!(
            text.contains(&format!(
                "p10 [label=\"unlock 0x300 (×{STEPS_PER_GOROUTINE})\"]"
            )),
            "{text}"
        );
        assert!(text.contains("p3 -> p10 [color=gray]"), "{text}");
        assert_eq!(text.matches("[color=gray]").count(), 1, "{text}");
    }

    #[test]
    fn derived_objects_are_named_after_what_they_come_from() {
        assert_eq!(object_label(0xc000_1000), "0xc0001000");
        assert_eq!(
            object_label(Derived::Closing.of(0xc000_1000)),
            "close of 0xc0001000"
        );
        assert_eq!(object_label(Derived::AnyChannel.of(0)), "any channel");
    }

    #[test]
    fn a_step_with_a_location_names_its_function_and_line() {
        let step = Step {
            seq: 1,
            operation: "unlock",
            role: Role::Release(0xc000_1000),
            pc: 0x47_1234,
            location: Some("main.(*store).put\nstore.go:42".into()),
        };
        assert_eq!(
            node_label(&step),
            "unlock 0xc0001000\\nmain.(*store).put\\nstore.go:42"
        );
    }
}
