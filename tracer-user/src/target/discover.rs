//! Finding the processes of a program by its executable's name (the node agent's `--exe`), and
//! the container each one runs in.

use std::path::Path;

/// The base name of process `pid`'s executable, as `/proc/PID/exe` points at it (in the
/// process's own mount namespace: a container's `/app/server` is `server`). `None` for kernel
/// threads, vanished processes and those tracer may not inspect.
pub fn executable_name(pid: u32) -> Option<String> {
    let target = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let name = target.file_name()?.to_string_lossy();
    // An executable replaced on disk after the process started (an upgrade in place).
    Some(name.strip_suffix(" (deleted)").unwrap_or(&name).to_owned())
}

/// Every running process whose executable is named one of `names`, tracer itself excepted, in
/// pid order.
pub fn processes_named(names: &[String]) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id();
    let mut pids: Vec<u32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid| pid != own)
        .filter(|&pid| executable_name(pid).is_some_and(|name| names.contains(&name)))
        .collect();
    pids.sort_unstable();
    pids
}

/// The id of the container process `pid` runs in, from its cgroup (Docker, containerd and
/// CRI-O under Kubernetes, Podman): `None` outside containers.
pub fn container_id(pid: u32) -> Option<String> {
    container_id_in(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?)
}

/// The container id in the text of a `/proc/PID/cgroup`: the innermost path component that
/// ends in 64 hex digits, with the runtime's prefix (`docker-`, `cri-containerd-`, `crio-`,
/// `libpod-`) and `.scope` suffix removed.
fn container_id_in(cgroup: &str) -> Option<String> {
    cgroup.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        Path::new(path).iter().rev().find_map(|component| {
            let component = component.to_str()?;
            let id = component.strip_suffix(".scope").unwrap_or(component);
            let id = id.rsplit(['-', ':']).next()?;
            (id.len() == 64 && id.bytes().all(|byte| byte.is_ascii_hexdigit()))
                .then(|| id.to_owned())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4a5f3c0b9e2d4c6f8a1b3d5e7f9a0c2e4b6d8f0a1c3e5a7b9d0f2a4c6e8b0d2f";

    #[test]
    fn finds_the_container_id_of_each_runtime() {
        for cgroup in [
            format!("0::/system.slice/docker-{ID}.scope\n"),
            format!(
                "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c.slice/\
                 cri-containerd-{ID}.scope\n"
            ),
            format!("0::/kubepods/besteffort/pod0f1e2d3c-aaaa-bbbb-cccc-0123456789ab/{ID}\n"),
            format!("0::/machine.slice/libpod-{ID}.scope/container\n"),
            format!("12:pids:/docker/{ID}\n11:memory:/docker/{ID}\n"),
            format!("0::/kubepods.slice/kubepods-pod1.slice/crio-{ID}.scope\n"),
        ] {
            assert_eq!(container_id_in(&cgroup).as_deref(), Some(ID), "{cgroup}");
        }
    }

    #[test]
    fn a_process_outside_containers_has_none() {
        for cgroup in [
            "0::/user.slice/user-1000.slice/session-2.scope\n",
            "0::/system.slice/ssh.service\n",
            "0::/\n",
            "",
        ] {
            assert_eq!(container_id_in(cgroup), None, "{cgroup}");
        }
    }

    #[test]
    fn finds_this_test_by_its_executable_name() {
        let own = executable_name(std::process::id()).unwrap();
        // tracer leaves itself out, whatever its name.
        assert!(!processes_named(&[own]).contains(&std::process::id()));
        assert!(processes_named(&["no-such-program-here".to_owned()]).is_empty());
    }
}
