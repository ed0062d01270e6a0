//! Host-side stub: `tracer-user` lists this crate as a build dependency so that cargo rebuilds the
//! embedded eBPF object whenever the kernel programs change. The programs live in `main.rs`.
#![no_std]
