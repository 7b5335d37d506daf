//! The runtime's seccomp compiler: an OCI `linux.seccomp` profile (from a bundle's
//! config.json, or what the engine builds from `--security-opt seccomp=<file>`) to classic BPF.
//!
//! Input: either raw JSON, or a profile assembled from structured choices (syscall names,
//! actions, errnos, argument conditions with any operator and value), so that most inputs
//! reach the code generator. Whenever compilation succeeds the program must be one the kernel
//! accepts and that cannot be bypassed: at most BPF_MAXINSNS instructions, only the
//! instructions seccomp allows, loads inside `struct seccomp_data` and aligned, every jump in
//! range, the last instruction a return, the architecture checked first; and run on a small
//! interpreter it gives KILL_THREAD to a foreign architecture and the default action to a
//! syscall number no table has.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Value};
use wharf_runtime::seccomp::{compile_filter, BPF_MAXINSNS};

const NAMES: &[&str] = &[
    "read",
    "write",
    "open",
    "openat",
    "close",
    "mmap",
    "mprotect",
    "clone",
    "clone3",
    "fork",
    "execve",
    "execveat",
    "kill",
    "ptrace",
    "mount",
    "umount2",
    "unshare",
    "setns",
    "socket",
    "bind",
    "connect",
    "ioctl",
    "personality",
    "keyctl",
    "bpf",
    "perf_event_open",
    "chmod",
    "fchmodat",
    "socketcall",
    "ipc",
    "arch_prctl",
    "modify_ldt",
    "uselib",
    "_llseek",
    "mmap2",
    "open_by_handle_at",
    "exit_group",
    "not_a_syscall",
    "",
    "READ",
];
const ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];
const OPS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];
const ARCHES: &[&str] = &[
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390X",
];
const FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

#[derive(Arbitrary, Debug)]
struct Arg {
    index: u8,
    op: u8,
    value: u64,
    value_two: Option<u64>,
}

#[derive(Arbitrary, Debug)]
struct Rule {
    names: Vec<u8>,
    action: u8,
    errno: Option<u16>,
    args: Vec<Arg>,
}

#[derive(Arbitrary, Debug)]
enum Input {
    Json(Vec<u8>),
    Built {
        default: u8,
        default_errno: Option<u16>,
        arches: u8,
        flags: u8,
        rules: Vec<Rule>,
        /// Repeat the rules this many times (long programs, far jumps).
        repeat: u8,
    },
}

fn pick<'a>(list: &[&'a str], i: u8) -> &'a str {
    list[usize::from(i) % list.len()]
}

fn bits<'a>(list: &[&'a str], mask: u8) -> Vec<&'a str> {
    (0..list.len())
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| list[i])
        .collect()
}

fn build(input: &Input) -> Option<Value> {
    match input {
        Input::Json(raw) => serde_json::from_slice(raw).ok(),
        Input::Built {
            default,
            default_errno,
            arches,
            flags,
            rules,
            repeat,
        } => {
            let mut syscalls = Vec::new();
            for _ in 0..=(repeat % 8) {
                for r in rules.iter().take(64) {
                    let mut s = json!({
                        "names": r.names.iter().take(8).map(|n| pick(NAMES, *n)).collect::<Vec<_>>(),
                        "action": pick(ACTIONS, r.action),
                        "args": r.args.iter().take(8).map(|a| {
                            let mut v = json!({
                                "index": a.index % 8,
                                "op": pick(OPS, a.op),
                                "value": a.value,
                            });
                            if let Some(t) = a.value_two {
                                v["valueTwo"] = json!(t);
                            }
                            v
                        }).collect::<Vec<_>>(),
                    });
                    if let Some(e) = r.errno {
                        s["errnoRet"] = json!(e);
                    }
                    syscalls.push(s);
                }
            }
            let mut p = json!({
                "defaultAction": pick(ACTIONS, *default),
                "architectures": bits(ARCHES, *arches),
                "flags": bits(FLAGS, *flags),
                "syscalls": syscalls,
            });
            if let Some(e) = default_errno {
                p["defaultErrnoRet"] = json!(e);
            }
            Some(p)
        }
    }
}

const BPF_LD: u16 = 0x00;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const LD_W_ABS: u16 = 0x20;
const ALU_AND_K: u16 = BPF_ALU | 0x50;
const JA: u16 = BPF_JMP;
const JEQ_K: u16 = BPF_JMP | 0x10;
const JGT_K: u16 = BPF_JMP | 0x20;
const JGE_K: u16 = BPF_JMP | 0x30;
const JSET_K: u16 = BPF_JMP | 0x40;
const SECCOMP_DATA_LEN: u32 = 64;

fn check_program(p: &[libc::sock_filter]) {
    assert!(
        !p.is_empty() && p.len() <= BPF_MAXINSNS,
        "length {}",
        p.len()
    );
    for (pc, i) in p.iter().enumerate() {
        let in_range = |off: u64| pc as u64 + 1 + off < p.len() as u64;
        match i.code {
            LD_W_ABS => assert!(
                i.k < SECCOMP_DATA_LEN && i.k % 4 == 0,
                "load at {pc} of offset {}",
                i.k
            ),
            ALU_AND_K => {}
            JA => assert!(in_range(u64::from(i.k)), "JA at {pc} by {}", i.k),
            JEQ_K | JGT_K | JGE_K | JSET_K => assert!(
                in_range(u64::from(i.jt)) && in_range(u64::from(i.jf)),
                "jump at {pc} by {}/{} of {}",
                i.jt,
                i.jf,
                p.len()
            ),
            c if c == BPF_RET => {}
            c => panic!("instruction {c:#x} at {pc} is not one seccomp accepts"),
        }
    }
    assert_eq!(
        p[p.len() - 1].code,
        BPF_RET,
        "the last instruction falls off"
    );
    assert_eq!(
        (p[0].code, p[0].k),
        (BPF_LD | LD_W_ABS, 4),
        "the architecture must be checked first"
    );
}

/// Runs a (checked) program on `seccomp_data` {nr, arch, ip = 0, args = 0}.
fn run(p: &[libc::sock_filter], nr: u32, arch: u32) -> u32 {
    let mut data = [0u32; 16];
    data[0] = nr;
    data[1] = arch;
    let (mut a, mut pc) = (0u32, 0usize);
    loop {
        let i = p[pc];
        pc += 1;
        match i.code {
            LD_W_ABS => a = data[(i.k / 4) as usize],
            ALU_AND_K => a &= i.k,
            JA => pc += i.k as usize,
            JEQ_K | JGT_K | JGE_K | JSET_K => {
                let t = match i.code {
                    JEQ_K => a == i.k,
                    JGT_K => a > i.k,
                    JGE_K => a >= i.k,
                    _ => a & i.k != 0,
                };
                pc += usize::from(if t { i.jt } else { i.jf });
            }
            _ => return i.k,
        }
    }
}

fn default_ret(p: &Value) -> u32 {
    let errno = p["defaultErrnoRet"].as_u64().unwrap_or(1) as u32;
    match p["defaultAction"].as_str().unwrap_or_default() {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => libc::SECCOMP_RET_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS" => libc::SECCOMP_RET_KILL_PROCESS,
        "SCMP_ACT_TRAP" => libc::SECCOMP_RET_TRAP,
        "SCMP_ACT_ERRNO" => libc::SECCOMP_RET_ERRNO | errno,
        "SCMP_ACT_TRACE" => libc::SECCOMP_RET_TRACE | errno,
        "SCMP_ACT_LOG" => libc::SECCOMP_RET_LOG,
        _ => libc::SECCOMP_RET_ALLOW,
    }
}

fuzz_target!(|input: Input| {
    let Some(v) = build(&input) else {
        return;
    };
    let Ok(profile) = serde_json::from_value::<LinuxSeccomp>(v.clone()) else {
        return;
    };
    let Ok(filter) = compile_filter(&profile) else {
        return;
    };
    let p = &filter.program.0;
    check_program(p);
    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    assert_eq!(
        run(p, 1000, 0x1234_5678),
        libc::SECCOMP_RET_KILL_THREAD,
        "a foreign architecture must be killed"
    );
    if cfg!(target_arch = "x86_64") {
        // The native ABI is always filtered (as libseccomp's); a number newer than every
        // syscall the profile knows gets ENOSYS, else the default action.
        let got = run(p, 1000, AUDIT_ARCH_X86_64);
        assert!(
            got == default_ret(&v) || got == libc::SECCOMP_RET_ERRNO | 38,
            "an unknown syscall number got {got:#x}, not the default action or ENOSYS"
        );
    }
});
