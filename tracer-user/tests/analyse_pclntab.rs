//! The `.gopclntab` reader against independent sources of truth: the ELF symbol table,
//! `go tool addr2line` and the fixture's source, for every supported Go version and build shape.
//! No root needed; the Go toolchains must be installed (`cargo xtask setup`).

mod common;

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use common::*;
use object::{Object as _, ObjectSection as _, ObjectSymbol as _};
use tracer::analyse::pclntab::{FuncEntry, Pclntab, PclntabError};

const FIXTURE: &str = "mapwrites";

fn parse(data: &[u8]) -> Result<Pclntab, PclntabError> {
    let file = object::File::parse(data).expect("an ELF file");
    Pclntab::from_elf(&file, data)
}

struct Build {
    version: &'static str,
    variant: Variant,
    path: PathBuf,
    data: Vec<u8>,
    table: Pclntab,
}

/// Every (version, variant) build of the fixture, with its parsed table.
fn builds() -> impl Iterator<Item = Build> {
    GO_VERSIONS.into_iter().flat_map(|version| {
        Variant::ALL.into_iter().map(move |variant| {
            let path = built_fixture(FIXTURE, version, variant);
            let data = std::fs::read(&path).unwrap();
            let table = parse(&data).unwrap_or_else(|e| panic!("{version} {variant:?}: {e}"));
            Build {
                version,
                variant,
                path,
                data,
                table,
            }
        })
    })
}

/// Linker-made markers rather than functions. `go:textfipsstart` (1.24+) is in pclntab too, but
/// without pc-value tables, so its size there is only the distance to the next function.
fn is_marker(name: &str) -> bool {
    ["runtime.text", "runtime.etext", "go:textfipsstart"].contains(&name)
}

/// (name, address, size) of the functions in `.symtab`, sorted by address, named the way
/// pclntab names them: the linker's symbol table adds `.abi0` to assembly functions and spells
/// `·` as `.`.
fn symtab_functions(data: &[u8]) -> Vec<(String, u64, u64)> {
    let file = object::File::parse(data).unwrap();
    let mut functions: Vec<_> = file
        .symbols()
        .filter(|symbol| symbol.kind() == object::SymbolKind::Text)
        .map(|symbol| {
            let name = symbol.name().unwrap();
            let name = name.strip_suffix(".abi0").unwrap_or(name);
            (name.to_owned(), symbol.address(), symbol.size())
        })
        .filter(|(name, _, _)| !is_marker(name))
        .collect();
    functions.sort_by_key(|&(_, address, _)| address);
    functions
}

/// `functions()` in the same form as `symtab_functions`.
fn table_functions(table: &Pclntab) -> Vec<(String, u64, u64)> {
    table
        .functions()
        .into_iter()
        .filter(|function| !is_marker(&function.name))
        .map(|FuncEntry { name, entry, end }| (name.replace('·', "."), entry, end - entry))
        .collect()
}

#[test]
fn function_table_matches_the_symbol_table() {
    for Build {
        version,
        variant,
        data,
        table,
        ..
    } in builds()
    {
        let (symtab, ours) = match variant {
            Variant::Default | Variant::Pie => (symtab_functions(&data), table_functions(&table)),
            // No symbols to compare with: the unstripped build has the same functions in the
            // same order with the same sizes (only their addresses could differ).
            Variant::Stripped => {
                let without_address = |functions: Vec<(String, u64, u64)>| {
                    functions
                        .into_iter()
                        .map(|(name, _, size)| (name, 0, size))
                        .collect::<Vec<_>>()
                };
                let unstripped = built_fixture(FIXTURE, version, Variant::Default);
                let symtab = symtab_functions(&std::fs::read(unstripped).unwrap());
                (
                    without_address(symtab),
                    without_address(table_functions(&table)),
                )
            }
        };
        assert!(
            symtab.len() > 1000,
            "{version} {variant:?}: {} symbols",
            symtab.len()
        );
        if let Some((a, b)) = symtab.iter().zip(&ours).find(|(a, b)| a != b) {
            panic!("{version} {variant:?}: symtab has {a:x?}, pclntab {b:x?}");
        }
        assert_eq!(symtab.len(), ours.len(), "{version} {variant:?}");
    }
}

/// Runs `go tool addr2line` on `pcs`: (function, "file:line") per PC.
fn addr2line(version: &str, binary: &Path, pcs: &[u64]) -> Vec<(String, String)> {
    let mut child = Command::new(go(version))
        .args(["tool", "addr2line"])
        .arg(binary)
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOCACHE", cache_dir().join("gocache"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("go tool addr2line runs");
    let input: String = pcs.iter().map(|pc| format!("{pc:#x}\n")).collect();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success(), "addr2line failed");
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 * pcs.len(), "addr2line output: {text}");
    lines
        .chunks(2)
        .map(|pair| (pair[0].to_owned(), pair[1].to_owned()))
        .collect()
}

/// Every 997th instruction start of the program, and every call instruction in `main.*`.
fn sample_pcs(data: &[u8], functions: &[FuncEntry]) -> Vec<u64> {
    let file = object::File::parse(data).unwrap();
    let text = file.section_by_name(".text").unwrap();
    let code = text.data().unwrap();
    let mut pcs = Vec::new();
    let mut count = 0usize;
    for function in functions.iter().filter(|f| !is_marker(&f.name)) {
        let start = usize::try_from(function.entry - text.address()).unwrap();
        let end = usize::try_from(function.end - text.address()).unwrap();
        let mut decoder = iced_x86::Decoder::with_ip(64, &code[start..end], function.entry, 0);
        for instruction in &mut decoder {
            count += 1;
            let is_main_call = function.name.starts_with("main.")
                && instruction.flow_control() == iced_x86::FlowControl::Call;
            if count.is_multiple_of(997) || is_main_call {
                pcs.push(instruction.ip());
            }
        }
    }
    pcs
}

#[test]
fn symbolize_agrees_with_go_tool_addr2line() {
    for Build {
        version,
        variant,
        path,
        data,
        table,
    } in builds()
    {
        let pcs = sample_pcs(&data, &table.functions());
        assert!(
            pcs.len() > 150,
            "{version} {variant:?}: only {} PCs",
            pcs.len()
        );
        let expected = addr2line(version, &path, &pcs);
        let mut inlined = 0;
        for (&pc, (function, file_line)) in pcs.iter().zip(&expected) {
            let frames = table.symbolize(pc);
            let (innermost, outer) = (frames.first().unwrap(), frames.last().unwrap());
            let ours = (
                outer.function.clone(),
                format!("{}:{}", innermost.file, innermost.line),
            );
            assert_eq!(
                ours,
                (function.clone(), file_line.clone()),
                "{version} {variant:?} at {pc:#x}: {frames:?}"
            );
            inlined += usize::from(frames.len() > 1);
        }
        println!(
            "{version} {variant:?}: {} PCs, {inlined} in inlined code",
            pcs.len()
        );
        // The sample must exercise inlined frames, or it would not check them.
        assert!(inlined > 10, "{version} {variant:?}: {inlined} inlined PCs");
    }
}

/// Lines of the fixture's source that contain `needle`.
fn fixture_lines(needle: &str) -> Vec<u32> {
    let source = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mapwrites/main.go"),
    )
    .unwrap();
    (1..)
        .zip(source.lines())
        .filter(|(_, line)| line.contains(needle))
        .map(|(number, _)| number)
        .collect()
}

#[test]
fn inline_tree_of_worker_has_the_mutex_calls() {
    let lock_lines = fixture_lines("sharedMu.Lock()");
    let unlock_lines = fixture_lines("sharedMu.Unlock()");
    assert_eq!((lock_lines.len(), unlock_lines.len()), (2, 2));
    for Build {
        version,
        variant,
        table,
        ..
    } in builds()
    {
        let what = format!("{version} {variant:?}");
        let worker = table
            .functions()
            .into_iter()
            .find(|function| function.name == "main.worker")
            .unwrap();
        let inside = |pc: u64| (worker.entry..worker.end).contains(&pc);
        let calls = table.inlined_calls(&worker);
        // Go 1.24 moved the mutex into internal/sync: sync's methods inline it in turn.
        let minor: u32 = version.split('.').nth(1).unwrap().parse().unwrap();
        let nested = minor >= 24;
        for (method, lines) in [("Lock", &lock_lines), ("Unlock", &unlock_lines)] {
            let outer = format!("sync.(*Mutex).{method}");
            let direct: Vec<usize> = (0..calls.len())
                .filter(|&index| calls[index].callee == outer)
                .collect();
            assert_eq!(direct.len(), 2, "{what}: {outer} in {calls:#x?}");
            for &index in &direct {
                let call = &calls[index];
                assert_eq!((call.depth, call.parent), (0, None), "{what}: {call:x?}");
                assert!(
                    inside(call.call_pc),
                    "{what}: {call:x?} outside {worker:x?}"
                );
                // The call site is the source line that calls the method.
                let site = table.symbolize(call.call_pc);
                assert_eq!(site.len(), 1, "{what}: {site:?}");
                assert!(
                    site[0].file.ends_with("mapwrites/main.go") && lines.contains(&site[0].line),
                    "{what}: {outer} called from {site:?}, expected main.go lines {lines:?}"
                );
            }
            let inner = format!("internal/sync.(*Mutex).{method}");
            let children: Vec<&_> = calls.iter().filter(|c| c.callee == inner).collect();
            if !nested {
                assert!(children.is_empty(), "{what}: {children:x?}");
                continue;
            }
            assert_eq!(children.len(), 2, "{what}: {inner} in {calls:#x?}");
            for child in children {
                let parent = child.parent.expect("nested");
                assert!(direct.contains(&parent), "{what}: {child:x?}");
                assert_eq!(child.depth, 1, "{what}: {child:x?}");
                assert!(inside(child.call_pc), "{what}: {child:x?}");
                // At any PC of the nested call, the frames are the whole inline chain.
                let pc = child.ranges.first().expect("code of internal/sync").start;
                assert!(inside(pc), "{what}: {child:x?}");
                let frames: Vec<String> = table
                    .symbolize(pc)
                    .into_iter()
                    .map(|frame| frame.function)
                    .collect();
                assert_eq!(frames, [&inner, &outer, "main.worker"], "{what}");
            }
        }
    }
}

/// Calls every API on the table of `data`: the work a caller would do.
fn exercise(data: &[u8]) -> Result<usize, PclntabError> {
    let table = parse(data)?;
    let functions = table.functions();
    for function in functions.iter().step_by(23) {
        let middle = function.entry + (function.end.saturating_sub(function.entry)) / 2;
        for pc in [function.entry, middle, function.end] {
            table.function_at(pc);
            table.symbolize(pc);
        }
        table.inlined_calls(function);
    }
    Ok(functions.len())
}

/// xorshift64: a deterministic stream of pseudo-random numbers.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

/// File offset of the module data: the word in `.noptrdata` or `.go.module` (1.26+) that points
/// to the table, as runtime.firstmoduledata does.
fn moduledata_offset(file: &object::File<'_>, table_address: u64) -> usize {
    let section = file
        .section_by_name(".go.module")
        .or_else(|| file.section_by_name(".noptrdata"))
        .unwrap();
    let index = section
        .data()
        .unwrap()
        .chunks_exact(8)
        .position(|word| word == table_address.to_le_bytes())
        .unwrap();
    (section.file_range().unwrap().0 as usize) + 8 * index
}

/// Truncated sections and flipped bytes in the table and in the module data: every outcome must
/// be an error or a result, never a panic (the reader parses untrusted files).
#[test]
fn corrupt_tables_never_panic() {
    const ITERATIONS: usize = 750;
    for (version, variant) in [
        ("1.21.13", Variant::Stripped), // module data found by scanning .noptrdata
        ("1.24.11", Variant::Default),  // through runtime.firstmoduledata
        ("1.26.6", Variant::Stripped),  // .go.module
        ("1.27.3", Variant::Pie),       // funcdata inside the table
    ] {
        let data = std::fs::read(built_fixture(FIXTURE, version, variant)).unwrap();
        let healthy = exercise(&data).unwrap();
        let file = object::File::parse(&*data).unwrap();
        let section = [".gopclntab", ".data.rel.ro.gopclntab"]
            .into_iter()
            .find_map(|name| file.section_by_name(name))
            .unwrap();
        let (offset, size) = section.file_range().unwrap();
        let (table_start, table_len) = (offset as usize, size as usize);
        // sh_size of the section, through e_shoff and e_shentsize of the ELF header.
        let header_at = u64::from_le_bytes(data[0x28..0x30].try_into().unwrap()) as usize
            + section.index().0 * usize::from(u16::from_le_bytes([data[0x3a], data[0x3b]]));
        let sh_size = header_at + 32;
        assert_eq!(data[sh_size..sh_size + 8], size.to_le_bytes());
        let moduledata = moduledata_offset(&file, section.address());

        let mut random = Random(0x9e37_79b9_7f4a_7c15 ^ table_len as u64);
        let (mut errors, mut results) = (0, 0);
        for iteration in 0..ITERATIONS {
            let mut corrupt = data.clone();
            match random.below(4) {
                0 => {
                    let len = random.below(table_len) as u64;
                    corrupt[sh_size..sh_size + 8].copy_from_slice(&len.to_le_bytes());
                }
                1 => {
                    let at = moduledata + random.below(360);
                    corrupt[at] ^= 1 << random.below(8);
                }
                mode => {
                    // Half of these in the header and function names at the start.
                    let span = if mode == 2 { 4096 } else { table_len };
                    for _ in 0..=random.below(8) {
                        corrupt[table_start + random.below(span)] = random.next() as u8;
                    }
                }
            }
            let outcome = std::panic::catch_unwind(|| exercise(&corrupt)).unwrap_or_else(|_| {
                panic!("{version} {variant:?}: iteration {iteration} panicked")
            });
            match outcome {
                Ok(_) => results += 1,
                Err(_) => errors += 1,
            }
        }
        println!("{version} {variant:?}: {healthy} functions; {errors} errors, {results} results");
        assert!(
            errors > 0 && results > 0,
            "{version} {variant:?}: {errors} / {results}"
        );
    }
}
