//! The sandbox's seccomp filters, compiled to classic BPF with `seccompiler` and handed to
//! bubblewrap (`--add-seccomp-fd`), which loads them just before it runs Python.
//!
//! A deny-list on top of namespaces and a dropped capability set: it removes the kernel
//! interfaces that sandbox escapes go through and that Python code has no use for. Three
//! filters because one filter has one "match" action and the denials need different errnos:
//! - EPERM: tracing, mounting, namespaces (also `clone` with a namespace flag), keyrings, BPF,
//!   userfaultfd, perf events, io_uring, kernel modules, kexec, personality, handle-based
//!   opens, cross-process memory access, and the x32 syscall ABI;
//! - ENOSYS for `clone3`: its flags live in memory a filter cannot read, and glibc falls back
//!   to `clone` (which the first filter checks) only on ENOSYS — EPERM breaks every thread;
//! - EAFNOSUPPORT for `socket` with any family but AF_UNIX: no IP, netlink, packet or vsock
//!   sockets even if a network namespace were shared.
//!
//! Each filter also kills the process on a foreign architecture (the i386 `int 0x80` ABI).

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

/// Syscalls denied with EPERM whatever their arguments.
const DENIED: &[i64] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_bpf,
    libc::SYS_userfaultfd,
    libc::SYS_perf_event_open,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_syslog,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_personality,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_fanotify_init,
    libc::SYS_pidfd_getfd,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
];

/// `clone` flags that would create a namespace.
const NAMESPACE_FLAGS: &[libc::c_int] = &[
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

/// The x32 ABI marks syscall numbers with this bit; it shares x86_64's audit arch, so the
/// arch check does not catch it and the deny-list (by number) would not apply.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn arch() -> Result<TargetArch, String> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|_| {
        format!(
            "no seccomp filter for the {} architecture",
            std::env::consts::ARCH
        )
    })
}

fn compile(rules: BTreeMap<i64, Vec<SeccompRule>>, errno: i32) -> Result<BpfProgram, String> {
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch()?,
    )
    .map_err(|e| format!("seccomp filter: {e}"))?;
    BpfProgram::try_from(filter).map_err(|e| format!("seccomp filter: {e}"))
}

fn condition(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value)
        .map_err(|e| format!("seccomp condition: {e}"))
}

fn deny_list() -> Result<BpfProgram, String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|nr| (*nr, Vec::new())).collect();
    let mut clone_rules = Vec::new();
    for flag in NAMESPACE_FLAGS {
        let flag = *flag as u64;
        let masked = condition(0, SeccompCmpOp::MaskedEq(flag), flag)?;
        clone_rules.push(SeccompRule::new(vec![masked]).map_err(|e| e.to_string())?);
    }
    rules.insert(libc::SYS_clone, clone_rules);
    #[allow(unused_mut)]
    let mut program = compile(rules, libc::EPERM)?;
    #[cfg(target_arch = "x86_64")]
    {
        // After the arch check (3 instructions), before the per-syscall chain: deny any
        // syscall number with the x32 bit. Self-contained, so later jump offsets still hold.
        const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
        const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
        const RET_K: u16 = 0x06; // BPF_RET | BPF_K
        let block = [
            sock_filter {
                code: LD_W_ABS,
                jt: 0,
                jf: 0,
                k: 0,
            }, // seccomp_data.nr
            sock_filter {
                code: JGE_K,
                jt: 0,
                jf: 1,
                k: X32_SYSCALL_BIT,
            },
            sock_filter {
                code: RET_K,
                jt: 0,
                jf: 0,
                k: libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
            },
        ];
        program.splice(3..3, block);
    }
    Ok(program)
}

fn clone3_enosys() -> Result<BpfProgram, String> {
    compile(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        libc::ENOSYS,
    )
}

fn inet_sockets() -> Result<BpfProgram, String> {
    let not_unix = condition(0, SeccompCmpOp::Ne, libc::AF_UNIX as u64)?;
    let rule = SeccompRule::new(vec![not_unix]).map_err(|e| e.to_string())?;
    compile(
        BTreeMap::from([(libc::SYS_socket, vec![rule])]),
        libc::EAFNOSUPPORT,
    )
}

/// The three filters, each as the raw bytes bubblewrap reads from its fd.
pub fn filters() -> Result<[Vec<u8>; 3], String> {
    Ok([
        to_bytes(&deny_list()?),
        to_bytes(&clone3_enosys()?),
        to_bytes(&inet_sockets()?),
    ])
}

/// `struct sock_filter` in the kernel's layout: u16 code, u8 jt, u8 jf, u32 k, native order.
fn to_bytes(program: &[sock_filter]) -> Vec<u8> {
    let mut out = Vec::with_capacity(program.len() * 8);
    for ins in program {
        out.extend_from_slice(&ins.code.to_ne_bytes());
        out.push(ins.jt);
        out.push(ins.jf);
        out.extend_from_slice(&ins.k.to_ne_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile_for_this_machine() {
        let [deny, clone3, sockets] = filters().unwrap();
        for f in [&deny, &clone3, &sockets] {
            assert!(!f.is_empty());
            assert_eq!(f.len() % 8, 0);
        }
        assert!(deny.len() / 8 > DENIED.len());
    }
}
