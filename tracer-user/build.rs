//! Builds the kernel programs (`tracer-ebpf`) for bpfel-unknown-none with the nightly toolchain
//! and bpf-linker, into OUT_DIR, from where `probes.rs` embeds them in the `tracer` binary.
//! `AYA_BUILD_SKIP=1` skips this (e.g. for clippy of userspace alone).

fn main() -> anyhow::Result<()> {
    let root_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tracer-ebpf");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "tracer-ebpf",
            root_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
