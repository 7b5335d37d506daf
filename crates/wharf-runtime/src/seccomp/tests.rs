//! Generator tests: compiled programs are run by a classic-BPF interpreter on synthetic
//! `seccomp_data` and compared with the expected action, or with a direct (non-BPF)
//! evaluation of the profile.

use libc::sock_filter;
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompOperator};
use serde_json::json;

use super::bpf::{BPF_ABS, BPF_ALU, BPF_AND, BPF_JA, BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JMP, BPF_K};
use super::bpf::{BPF_LD, BPF_RET, BPF_W};
use super::compile::{
    Host, AUDIT_ARCH_AARCH64, AUDIT_ARCH_ARM, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT,
};
use super::tables::Table;
use super::{compile_for, FilterFlags, Program, SeccompError, BPF_MAXINSNS};

#[path = "../../tests/fixtures/moby_profile.rs"]
#[allow(dead_code)]
mod moby_profile;

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const KILL_THREAD: u32 = libc::SECCOMP_RET_KILL_THREAD;
const fn errno(e: u32) -> u32 {
    libc::SECCOMP_RET_ERRNO | e
}

/// `struct seccomp_data` for the interpreter.
#[derive(Debug, Clone, Copy)]
struct Data {
    nr: u32,
    arch: u32,
    args: [u64; 6],
}

impl Data {
    fn new(arch: u32, nr: u32) -> Self {
        Data {
            nr,
            arch,
            args: [0; 6],
        }
    }
    fn x86_64(nr: u32) -> Self {
        Self::new(AUDIT_ARCH_X86_64, nr)
    }
    fn arg(mut self, i: usize, v: u64) -> Self {
        self.args[i] = v;
        self
    }
    /// 32-bit word at byte offset `off`, as the kernel lays the struct out (little-endian).
    fn word(&self, off: u32) -> u32 {
        assert_eq!(off % 4, 0, "unaligned load at {off}");
        match off {
            0 => self.nr,
            4 => self.arch,
            8 | 12 => 0, // instruction_pointer
            16..=63 => {
                let a = self.args[((off - 16) / 8) as usize];
                // Low word first (little-endian), then the high word.
                let shift = (off - 16) % 8 * 8;
                (a >> shift) as u32
            }
            _ => panic!("load outside seccomp_data at {off}"),
        }
    }
}

/// Run a classic-BPF seccomp program (the subset the generator emits) and return its result.
/// Panics on anything the kernel's checker would reject: unknown opcodes, jumps out of the
/// program, falling off the end.
fn run(prog: &[sock_filter], d: &Data) -> u32 {
    assert!(prog.len() <= BPF_MAXINSNS);
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        let i = prog
            .get(pc)
            .unwrap_or_else(|| panic!("pc {pc} ran off the end"));
        pc += 1;
        match i.code {
            c if c == BPF_LD | BPF_W | BPF_ABS => a = d.word(i.k),
            c if c == BPF_ALU | BPF_AND | BPF_K => a &= i.k,
            c if c == BPF_RET | BPF_K => return i.k,
            c if c == BPF_JMP | BPF_JA => pc += i.k as usize,
            c if c & 0x07 == BPF_JMP => {
                let taken = match c & 0xf0 {
                    x if x == BPF_JEQ => a == i.k,
                    x if x == BPF_JGT => a > i.k,
                    x if x == BPF_JGE => a >= i.k,
                    _ => panic!("unexpected jump opcode {c:#x}"),
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}

fn profile(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("valid OCI seccomp JSON")
}

fn compile_x86(p: &LinuxSeccomp) -> Program {
    compile_for(p, Host::X86_64).expect("compiles")
}

fn nr64(name: &str) -> u32 {
    Table::X86_64.lookup(name).unwrap()
}

#[test]
fn default_action_and_errno_rule() {
    let p = compile_x86(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{ "names": ["mkdir", "rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 }]
    })));
    assert_eq!(run(&p.0, &Data::x86_64(nr64("mkdir"))), errno(38));
    assert_eq!(run(&p.0, &Data::x86_64(nr64("rmdir"))), errno(38));
    assert_eq!(run(&p.0, &Data::x86_64(nr64("getpid"))), ALLOW);
    assert_eq!(run(&p.0, &Data::x86_64(9999)), ALLOW);
    assert_eq!(
        run(&p.0, &Data::x86_64(u32::MAX)),
        ALLOW,
        "nr -1 gets the default"
    );
}

#[test]
fn errno_and_trace_data_defaults_follow_runc() {
    let p = compile_x86(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            { "names": ["mkdir"], "action": "SCMP_ACT_ERRNO" },
            { "names": ["rmdir"], "action": "SCMP_ACT_TRACE" },
            { "names": ["chdir"], "action": "SCMP_ACT_TRACE", "errnoRet": 7 },
        ]
    })));
    assert_eq!(run(&p.0, &Data::x86_64(nr64("getpid"))), errno(1));
    // mkdir's rule equals the default action: dropped, same result.
    assert_eq!(run(&p.0, &Data::x86_64(nr64("mkdir"))), errno(1));
    assert_eq!(
        run(&p.0, &Data::x86_64(nr64("rmdir"))),
        libc::SECCOMP_RET_TRACE | 1
    );
    assert_eq!(
        run(&p.0, &Data::x86_64(nr64("chdir"))),
        libc::SECCOMP_RET_TRACE | 7
    );

    let p = compile_x86(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 12, "syscalls": []
    })));
    assert_eq!(run(&p.0, &Data::x86_64(0)), errno(12));
}

#[test]
fn every_action_maps_to_its_ret_value() {
    let cases = [
        ("SCMP_ACT_KILL", libc::SECCOMP_RET_KILL_THREAD),
        ("SCMP_ACT_KILL_THREAD", libc::SECCOMP_RET_KILL_THREAD),
        ("SCMP_ACT_KILL_PROCESS", libc::SECCOMP_RET_KILL_PROCESS),
        ("SCMP_ACT_TRAP", libc::SECCOMP_RET_TRAP),
        ("SCMP_ACT_ERRNO", libc::SECCOMP_RET_ERRNO | 1),
        ("SCMP_ACT_TRACE", libc::SECCOMP_RET_TRACE | 1),
        ("SCMP_ACT_LOG", libc::SECCOMP_RET_LOG),
        ("SCMP_ACT_NOTIFY", libc::SECCOMP_RET_USER_NOTIF),
        ("SCMP_ACT_ALLOW", libc::SECCOMP_RET_ALLOW),
    ];
    for (action, want) in cases {
        for default in ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"] {
            let p = compile_x86(&profile(json!({
                "defaultAction": default, "defaultErrnoRet": 99,
                "syscalls": [{ "names": ["uname"], "action": action }]
            })));
            assert_eq!(run(&p.0, &Data::x86_64(nr64("uname"))), want, "{action}");
            assert_eq!(
                p.uses_notify(),
                action == "SCMP_ACT_NOTIFY",
                "uses_notify for {action}"
            );
        }
    }
}

/// What a condition means, evaluated directly.
fn holds(op: LinuxSeccompOperator, arg: u64, value: u64, value_two: u64) -> bool {
    use LinuxSeccompOperator as Op;
    match op {
        Op::ScmpCmpNe => arg != value,
        Op::ScmpCmpLt => arg < value,
        Op::ScmpCmpLe => arg <= value,
        Op::ScmpCmpEq => arg == value,
        Op::ScmpCmpGe => arg >= value,
        Op::ScmpCmpGt => arg > value,
        Op::ScmpCmpMaskedEq => arg & value == value_two,
    }
}

const INTERESTING: [u64; 12] = [
    0,
    1,
    2,
    0x7fff_ffff,
    0xffff_fffe,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    0x1_ffff_ffff,
    0x8000_0000_0000_0000,
    0xffff_ffff_0000_0000,
    u64::MAX,
];

#[test]
fn every_operator_compares_full_64_bit_unsigned() {
    let ops = [
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ];
    for op_name in ops {
        let op: LinuxSeccompOperator = serde_json::from_value(json!(op_name)).unwrap();
        for &value in &INTERESTING {
            let value_two = value & 0xffff_0000_ffff_0001;
            let p = compile_x86(&profile(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{
                    "names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
                    "args": [{ "index": 3, "value": value, "valueTwo": value_two, "op": op_name }]
                }]
            })));
            for &arg in &INTERESTING {
                let d = Data::x86_64(nr64("personality")).arg(3, arg);
                let want = if holds(op, arg, value, value_two) {
                    errno(5)
                } else {
                    ALLOW
                };
                assert_eq!(
                    run(&p.0, &d),
                    want,
                    "{op_name} arg {arg:#x} value {value:#x} value_two {value_two:#x}"
                );
            }
        }
    }
}

#[test]
fn high_word_decides_when_low_word_disagrees() {
    // 0x1_0000_0000 > 0xffff_ffff although its low word (0) is smaller.
    let p = compile_x86(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9,
            "args": [{ "index": 0, "value": 0xffff_ffffu64, "op": "SCMP_CMP_GT" }] }]
    })));
    assert_eq!(run(&p.0, &Data::x86_64(0).arg(0, 0x1_0000_0000)), errno(9));
    assert_eq!(run(&p.0, &Data::x86_64(0).arg(0, 0xffff_ffff)), ALLOW);
    assert_eq!(run(&p.0, &Data::x86_64(0).arg(0, 5)), ALLOW);
}

#[test]
fn masked_eq_uses_value_as_mask_and_value_two_as_datum() {
    // Docker's clone rule: allow clone only without namespace flags.
    let p = compile_x86(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{ "names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{ "index": 0, "value": 2114060288u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ" }] }]
    })));
    let clone = nr64("clone");
    let newuser = libc::CLONE_NEWUSER as u64;
    assert_eq!(
        run(&p.0, &Data::x86_64(clone).arg(0, libc::SIGCHLD as u64)),
        ALLOW
    );
    assert_eq!(run(&p.0, &Data::x86_64(clone).arg(0, newuser)), errno(1));
    // Bits outside the mask don't matter, including high-word ones.
    assert_eq!(
        run(&p.0, &Data::x86_64(clone).arg(0, 0xff00_0000_0000_0011)),
        ALLOW
    );
}

#[test]
fn conditions_on_the_same_index_are_ored_with_all_the_entrys_others() {
    // runc 1.1 (libcontainer/seccomp): an entry with several conditions on one argument
    // becomes one rule per condition, ORed; libseccomp then never ANDs them.
    let p = compile_x86(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3, "args": [
            { "index": 1, "value": 10, "op": "SCMP_CMP_GE" },
            { "index": 1, "value": 20, "op": "SCMP_CMP_LT" },
            { "index": 2, "value": 1, "op": "SCMP_CMP_EQ" },
        ]}]
    })));
    let lseek = |off: u64, whence: u64| Data::x86_64(nr64("lseek")).arg(1, off).arg(2, whence);
    assert_eq!(run(&p.0, &lseek(15, 1)), errno(3));
    assert_eq!(run(&p.0, &lseek(10, 0)), errno(3), "off >= 10 alone");
    assert_eq!(run(&p.0, &lseek(5, 0)), errno(3), "off < 20 alone");
    assert_eq!(run(&p.0, &lseek(20, 1)), errno(3), "whence == 1 alone");
    // Without a repeated index the conditions are ANDed.
    let p = compile_x86(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3, "args": [
            { "index": 1, "value": 10, "op": "SCMP_CMP_GE" },
            { "index": 2, "value": 1, "op": "SCMP_CMP_EQ" },
        ]}]
    })));
    assert_eq!(run(&p.0, &lseek(15, 1)), errno(3));
    assert_eq!(run(&p.0, &lseek(9, 1)), ALLOW);
    assert_eq!(run(&p.0, &lseek(15, 0)), ALLOW);
}

#[test]
fn first_matching_entry_wins_in_profile_order() {
    let p = compile_x86(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            { "names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 11,
              "args": [{ "index": 0, "value": 8, "op": "SCMP_CMP_EQ" }] },
            // Same action as the default but not trailing: must not be dropped.
            { "names": ["personality"], "action": "SCMP_ACT_ERRNO",
              "args": [{ "index": 0, "value": 100, "op": "SCMP_CMP_GE" }] },
            { "names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
              "args": [{ "index": 0, "value": 10, "op": "SCMP_CMP_GE" }] },
            { "names": ["personality"], "action": "SCMP_ACT_ALLOW" },
            // Unreachable after the unconditional entry.
            { "names": ["personality"], "action": "SCMP_ACT_KILL" },
        ]
    })));
    let pers = |v: u64| Data::x86_64(nr64("personality")).arg(0, v);
    assert_eq!(run(&p.0, &pers(8)), errno(11));
    assert_eq!(run(&p.0, &pers(150)), errno(1));
    assert_eq!(run(&p.0, &pers(50)), errno(22));
    assert_eq!(run(&p.0, &pers(9)), ALLOW);
}

#[test]
fn unknown_syscall_names_are_skipped() {
    let p = compile_x86(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["no_such_call", "mkdir", "arm_fadvise64_64"],
                       "action": "SCMP_ACT_ERRNO" }]
    })));
    assert_eq!(run(&p.0, &Data::x86_64(nr64("mkdir"))), errno(1));
}

#[test]
fn unlisted_architectures_get_kill_thread() {
    let p = compile_x86(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO" }]
    })));
    assert_eq!(run(&p.0, &Data::new(AUDIT_ARCH_I386, 39)), KILL_THREAD);
    assert_eq!(run(&p.0, &Data::new(AUDIT_ARCH_AARCH64, 1)), KILL_THREAD);
    assert_eq!(run(&p.0, &Data::new(0, 1)), KILL_THREAD);
    // x32 (nr with bit 30) is an ABI of its own: not listed → bad arch, as libseccomp does.
    assert_eq!(run(&p.0, &Data::x86_64(X32_SYSCALL_BIT | 39)), KILL_THREAD);
    assert_eq!(run(&p.0, &Data::x86_64(39)), ALLOW);
}

#[test]
fn empty_architecture_list_means_native_only() {
    let p = compile_x86(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO" }]
    })));
    assert_eq!(run(&p.0, &Data::x86_64(nr64("mkdir"))), errno(1));
    assert_eq!(run(&p.0, &Data::new(AUDIT_ARCH_I386, 39)), KILL_THREAD);
    assert_eq!(run(&p.0, &Data::x86_64(X32_SYSCALL_BIT)), KILL_THREAD);
}

#[test]
fn x32_and_i386_rules_use_their_own_numbers() {
    let p = compile_x86(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            { "names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4 },
            { "names": ["socketcall"], "action": "SCMP_ACT_ERRNO", "errnoRet": 6 },
        ]
    })));
    // mkdir is 83 on x86_64, 0x40000053 on x32 and 39 on i386 (where x86_64 has getpid).
    assert_eq!(run(&p.0, &Data::x86_64(83)), errno(4));
    assert_eq!(run(&p.0, &Data::x86_64(X32_SYSCALL_BIT | 83)), errno(4));
    assert_eq!(run(&p.0, &Data::new(AUDIT_ARCH_I386, 39)), errno(4));
    assert_eq!(run(&p.0, &Data::x86_64(39)), ALLOW, "x86_64 39 is getpid");
    assert_eq!(
        run(&p.0, &Data::new(AUDIT_ARCH_I386, 83)),
        ALLOW,
        "i386 83 is symlink"
    );
    assert_eq!(run(&p.0, &Data::new(AUDIT_ARCH_I386, 102)), errno(6));
    assert_eq!(run(&p.0, &Data::x86_64(u32::MAX)), ALLOW);

    // Only x32 listed: the native ABI is filtered too (libseccomp's filter always has it,
    // runc's seccomp.bats lists only SCMP_ARCH_X86 and SCMP_ARCH_X32); i386 is a bad arch.
    let p = compile_x86(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X32"],
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4 }]
    })));
    assert_eq!(run(&p.0, &Data::x86_64(X32_SYSCALL_BIT | 83)), errno(4));
    assert_eq!(run(&p.0, &Data::x86_64(X32_SYSCALL_BIT | 84)), ALLOW);
    assert_eq!(run(&p.0, &Data::x86_64(83)), errno(4));
    assert_eq!(run(&p.0, &Data::new(AUDIT_ARCH_I386, 39)), KILL_THREAD);
}

#[test]
fn aarch64_host_filters_aarch64_and_arm() {
    let prof = profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_X86_64"],
        "syscalls": [{ "names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4 }]
    }));
    let p = compile_for(&prof, Host::Aarch64).unwrap();
    assert_eq!(run(&p.0, &Data::new(AUDIT_ARCH_AARCH64, 34)), errno(4));
    assert_eq!(run(&p.0, &Data::new(AUDIT_ARCH_AARCH64, 35)), ALLOW);
    assert_eq!(run(&p.0, &Data::new(AUDIT_ARCH_ARM, 39)), errno(4));
    assert_eq!(run(&p.0, &Data::new(AUDIT_ARCH_ARM, 323)), errno(4));
    assert_eq!(run(&p.0, &Data::new(AUDIT_ARCH_X86_64, 83)), KILL_THREAD);
}

#[test]
fn profile_errors_name_the_offending_field() {
    let err = |v| compile_for(&profile(v), Host::X86_64).unwrap_err();
    let e = err(json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        { "names": ["read"], "action": "SCMP_ACT_ERRNO" },
        { "names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5000 },
    ]}));
    assert!(matches!(
        e,
        SeccompError::ErrnoOutOfRange { value: 5000, .. }
    ));
    assert_eq!(
        e.to_string(),
        "seccomp: syscalls[1]: errnoRet 5000 is out of range (at most 4095)"
    );

    let e = err(json!({ "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 4096 }));
    assert!(e.to_string().contains("defaultErrnoRet"), "{e}");

    let e = err(json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        { "names": ["read"], "action": "SCMP_ACT_ERRNO",
          "args": [{ "index": 0, "value": 1, "op": "SCMP_CMP_EQ" }, { "index": 6, "value": 1, "op": "SCMP_CMP_EQ" }] },
    ]}));
    assert_eq!(
        e.to_string(),
        "seccomp: syscalls[0].args[1]: argument index 6 is out of range (0..=5)"
    );

    let e = err(json!({ "defaultAction": "SCMP_ACT_NOTIFY" }));
    assert!(matches!(e, SeccompError::NotifyDefault));
    let e = err(json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        { "names": ["read", "write"], "action": "SCMP_ACT_NOTIFY" }]}));
    assert!(matches!(e, SeccompError::NotifyWrite { rule: 0 }), "{e}");
}

#[test]
fn oversized_filter_is_rejected_with_bpf_maxinsns() {
    // 300 syscalls × 3 conditions × ~5 instructions > 4096.
    let names: Vec<&str> = Table::X86_64
        .entries()
        .iter()
        .map(|(n, _)| *n)
        .take(300)
        .collect();
    let e = compile_for(
        &profile(json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{
            "names": names, "action": "SCMP_ACT_ERRNO", "args": [
                { "index": 0, "value": 1, "op": "SCMP_CMP_EQ" },
                { "index": 1, "value": 1, "op": "SCMP_CMP_EQ" },
                { "index": 2, "value": 1, "op": "SCMP_CMP_EQ" }]}]})),
        Host::X86_64,
    )
    .unwrap_err();
    let SeccompError::TooLong { len, max } = e else {
        panic!("{e}")
    };
    assert!(len > 4096 && max == 4096);
    assert!(e.to_string().contains("BPF_MAXINSNS"), "{e}");
}

/// Evaluate `profile` for one syscall directly (first matching entry in profile order).
fn reference(p: &LinuxSeccomp, table: Table, d: &Data) -> u32 {
    let to_u32 = |a: oci_spec::runtime::LinuxSeccompAction, e: Option<u32>| match a {
        oci_spec::runtime::LinuxSeccompAction::ScmpActErrno
        | oci_spec::runtime::LinuxSeccompAction::ScmpActTrace => a.as_u32(Some(e.unwrap_or(1))),
        _ => a.as_u32(None),
    };
    let permissive = matches!(
        p.default_action(),
        oci_spec::runtime::LinuxSeccompAction::ScmpActAllow
            | oci_spec::runtime::LinuxSeccompAction::ScmpActLog
    );
    let last = p
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .flat_map(|s| s.names())
        .filter_map(|n| table.lookup(n))
        .max();
    if !permissive
        && p.default_errno_ret() != Some(38)
        && d.nr != u32::MAX
        && last.is_some_and(|l| d.nr > l)
    {
        return libc::SECCOMP_RET_ERRNO | 38;
    }
    for sc in p.syscalls().as_deref().unwrap_or_default() {
        let named = sc.names().iter().any(|n| table.lookup(n) == Some(d.nr));
        let args = sc.args().as_deref().unwrap_or_default();
        let one = |a: &oci_spec::runtime::LinuxSeccompArg| {
            holds(
                a.op(),
                d.args[a.index()],
                a.value(),
                a.value_two().unwrap_or(0),
            )
        };
        // runc: several conditions on one index are ORed, all of them; else ANDed.
        let repeated = args
            .iter()
            .any(|a| args.iter().filter(|b| b.index() == a.index()).count() > 1);
        let hit = if repeated {
            args.iter().any(one)
        } else {
            args.iter().all(one)
        };
        if named && hit {
            return to_u32(sc.action(), sc.errno_ret());
        }
    }
    to_u32(p.default_action(), Some(p.default_errno_ret().unwrap_or(1)))
}

/// Every syscall number of every ABI, with argument vectors that hit and miss the profile's
/// conditions, behaves in the compiled program as the profile says. Covers trampolines: the
/// program is far longer than a conditional jump can reach.
fn differential(p: &LinuxSeccomp, prog: &Program, abis: &[(u32, u32, Table)]) {
    let arg_vectors: Vec<[u64; 6]> = INTERESTING
        .iter()
        .chain(&[
            8,
            38,
            39,
            40,
            0x20000,
            0x20008,
            0x7E02_0000,
            libc::SIGCHLD as u64,
        ])
        .map(|&v| [v, v, 0, 0, 0, 0])
        .collect();
    for &(arch, base, table) in abis {
        for nr in (0..480).chain(520..560) {
            for args in &arg_vectors {
                let d = Data {
                    nr: base | nr,
                    arch,
                    args: *args,
                };
                assert_eq!(
                    run(&prog.0, &d),
                    reference(p, table, &d),
                    "arch {arch:#x} nr {:#x} args {args:x?}",
                    d.nr
                );
            }
        }
    }
}

#[test]
fn docker_default_profile_matches_direct_evaluation() {
    for caps in [
        moby_profile::DOCKER_DEFAULT_CAPS,
        &["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"],
    ] {
        let p = moby_profile::docker_default("amd64", caps);
        assert_eq!(p.architectures().as_ref().unwrap().len(), 3);
        let prog = compile_x86(&p);
        assert!(prog.len() < BPF_MAXINSNS);
        differential(
            &p,
            &prog,
            &[
                (AUDIT_ARCH_X86_64, 0, Table::X86_64),
                (AUDIT_ARCH_X86_64, X32_SYSCALL_BIT, Table::X32),
                (AUDIT_ARCH_I386, 0, Table::I386),
            ],
        );
        let clone3 = Data::x86_64(nr64("clone3"));
        let want = if caps.contains(&"CAP_SYS_ADMIN") {
            ALLOW
        } else {
            errno(38)
        };
        assert_eq!(run(&prog.0, &clone3), want);
    }
    let p = moby_profile::docker_default("arm64", moby_profile::DOCKER_DEFAULT_CAPS);
    let prog = compile_for(&p, Host::Aarch64).unwrap();
    differential(
        &p,
        &prog,
        &[
            (AUDIT_ARCH_AARCH64, 0, Table::AARCH64),
            (AUDIT_ARCH_ARM, 0, Table::ARM),
        ],
    );
}

#[test]
fn docker_default_profile_blocks_what_docker_blocks() {
    let p = compile_x86(&moby_profile::docker_default(
        "amd64",
        moby_profile::DOCKER_DEFAULT_CAPS,
    ));
    let call = |name: &str| run(&p.0, &Data::x86_64(nr64(name)));
    for allowed in [
        "read",
        "write",
        "getpid",
        "openat",
        "execve",
        "exit_group",
        "mkdir",
    ] {
        assert_eq!(call(allowed), ALLOW, "{allowed}");
    }
    for denied in [
        "mount",
        "kexec_load",
        "init_module",
        "bpf",
        "unshare",
        "reboot",
    ] {
        assert_eq!(call(denied), errno(1), "{denied}");
    }
    let pers = |v: u64| run(&p.0, &Data::x86_64(nr64("personality")).arg(0, v));
    assert_eq!(pers(0), ALLOW);
    assert_eq!(pers(0xffff_ffff), ALLOW);
    assert_eq!(pers(0x0040_0000), errno(1));
    assert_eq!(pers(0x1_0000_0000), errno(1), "high word is compared too");
}

#[test]
fn flags_map_to_kernel_bits() {
    use oci_spec::runtime::LinuxSeccompFilterFlag as F;
    let f = FilterFlags::from_oci(&[F::SeccompFilterFlagTsync, F::SeccompFilterFlagSpecAllow]);
    assert_eq!(f.bits(), 1 | 4);
    let f = FilterFlags::from_oci(&[
        F::SeccompFilterFlagLog,
        F::SeccompFilterFlagWaitKillableRecv,
    ]);
    assert_eq!(f.bits(), 2 | 32);
    let filter = super::compile_filter(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"]
    })));
    if Host::native().is_some() {
        assert_eq!(filter.unwrap().flags, FilterFlags::LOG);
    }
}

#[test]
fn conditions_on_one_argument_are_ored_as_runc_does() {
    // runc's seccomp_syscall_test1.json: process_vm_readv allowed when arg0 is 100 or 9001.
    let p = compile_x86(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{ "names": ["process_vm_readv"], "action": "SCMP_ACT_ALLOW", "args": [
            {"index": 0, "value": 100, "op": "SCMP_CMP_EQ"},
            {"index": 0, "value": 9001, "op": "SCMP_CMP_EQ"}
        ]}]
    })));
    let nr = nr64("process_vm_readv");
    assert_eq!(run(&p.0, &Data::x86_64(nr).arg(0, 100)), ALLOW);
    assert_eq!(run(&p.0, &Data::x86_64(nr).arg(0, 9001)), ALLOW);
    assert_eq!(run(&p.0, &Data::x86_64(nr).arg(0, 7)), errno(1));
}

#[test]
fn syscalls_newer_than_the_profile_fail_with_enosys() {
    // runc's filter: a number above the highest the profile names returns ENOSYS (programs
    // then fall back to older calls), unless the default action allows anyway.
    let p = compile_x86(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{ "names": ["read", "write", "mkdir"], "action": "SCMP_ACT_ALLOW" }]
    })));
    let mkdir = nr64("mkdir");
    assert_eq!(run(&p.0, &Data::x86_64(1000)), errno(38));
    assert_eq!(run(&p.0, &Data::x86_64(mkdir + 1)), errno(38));
    assert_eq!(run(&p.0, &Data::x86_64(mkdir)), ALLOW);
    assert_eq!(run(&p.0, &Data::x86_64(mkdir - 1)), errno(1));
    let p = compile_x86(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO" }]
    })));
    assert_eq!(run(&p.0, &Data::x86_64(1000)), ALLOW);
}
