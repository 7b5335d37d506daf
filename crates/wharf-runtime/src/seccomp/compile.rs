//! OCI profile → classic-BPF program.
//!
//! # Program layout
//!
//! ```text
//!   A = arch
//!   if A == AUDIT_ARCH_<abi> goto <abi block>     (one per ABI family the profile lists)
//!   return KILL_THREAD                            (libseccomp's default "bad arch" action)
//! <abi block>:
//!   A = nr
//!   (x86_64 only) split x86_64 / x32 on __X32_SYSCALL_BIT, nr == -1 → default action
//!   binary search tree over the syscall numbers that have rules (JGE nodes),
//!   leaves of up to LEAF syscalls: JEQ nr → code; return default
//!   code: the syscall's rules in profile order, each "all conditions hold → return action",
//!         falling through to the next rule and finally to the default action.
//! ```
//!
//! Every path ends in a `RET`, so no block needs to restore the accumulator for another one.
//! Syscalls whose only rule is unconditional share one `RET` per distinct action in a leaf.
//!
//! # Semantics (runc + libseccomp)
//!
//! * Several `syscalls[]` entries naming the same syscall are tried in profile order; the
//!   first whose argument conditions all hold decides. Rules after an unconditional one can
//!   never match and are dropped, as are trailing rules whose action equals the default.
//! * Conditions compare the full 64-bit argument, unsigned (`seccomp_data.args[i]` is two
//!   little-endian 32-bit words). An entry's conditions are ANDed, except that an entry
//!   with several conditions on one argument becomes one rule per condition (ORed), as
//!   runc 1.1 passes them to libseccomp.
//! * A syscall number above the highest the profile names (a syscall newer than the
//!   profile) returns ENOSYS, as runc's filter does, unless the default action allows or is
//!   ENOSYS already: programs then fall back to older calls.
//!   On the 32-bit ABIs (i386, arm) the kernel zero-extends arguments, so the same code
//!   gives the comparison of the zero-extended value (libseccomp compares the low word only).
//! * Unknown syscall names are skipped per ABI (logged at debug level), like runc.
//! * Architectures: the native ABI always (libseccomp's filter starts with it, so a list of
//!   only SCMP_ARCH_X86 still filters x86_64 calls, as runc does); the list adds others. On
//!   x86_64 the x86_64, x32 and i386 ABIs have tables; on aarch64 the aarch64 and arm ABIs
//!   do. Listed architectures
//!   that can never occur on this host (e.g. MIPS on x86_64) are ignored. A syscall from an
//!   ABI that is not listed hits the "bad arch" action, KILL_THREAD, as in libseccomp; this
//!   includes x32 syscalls (nr with bit 30 set) when only SCMP_ARCH_X86_64 is listed.
//! * i386 socketcall(2)/ipc(2) multiplexing is not expanded (libseccomp does): the names
//!   `socket`, `bind`, ... match the direct i386 syscalls (Linux ≥ 4.3) only.

use std::collections::BTreeMap;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator,
};

use super::bpf::{Builder, Cmp, Label, Target};
use super::tables::Table;
use super::SeccompError;

/// `AUDIT_ARCH_*` values found in `seccomp_data.arch`.
pub(crate) const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
pub(crate) const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub(crate) const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
pub(crate) const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
/// x32 syscalls are x86_64 syscalls with this bit set in `nr`.
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Offsets into `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

/// Syscalls per leaf of the search tree.
const LEAF: usize = 8;
/// Largest errno the kernel passes back (MAX_ERRNO).
const MAX_ERRNO: u32 = 4095;
/// runc's errno for SCMP_ACT_ERRNO / SCMP_ACT_TRACE without errnoRet.
const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// The architecture family of the host: which ABIs can reach the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Host {
    X86_64,
    Aarch64,
}

impl Host {
    /// The family this binary runs on, if there are tables for it.
    pub(crate) fn native() -> Option<Host> {
        if cfg!(target_arch = "x86_64") {
            Some(Host::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Host::Aarch64)
        } else {
            None
        }
    }
}

/// Which ABIs of the host family the profile lists.
#[derive(Debug, Default, Clone, Copy)]
struct Abis {
    /// x86_64 or aarch64.
    native: bool,
    /// i386 or arm.
    compat: bool,
    /// x32 (x86_64 hosts only).
    x32: bool,
}

fn requested_abis(profile: &LinuxSeccomp, host: Host) -> Abis {
    let listed = profile.architectures().as_deref().unwrap_or_default();
    if listed.is_empty() {
        return Abis {
            native: true,
            ..Abis::default()
        };
    }
    let mut abis = Abis {
        native: true,
        ..Abis::default()
    };
    for arch in listed {
        match (host, arch) {
            (_, Arch::ScmpArchNative)
            | (Host::X86_64, Arch::ScmpArchX86_64)
            | (Host::Aarch64, Arch::ScmpArchAarch64) => abis.native = true,
            (Host::X86_64, Arch::ScmpArchX86) | (Host::Aarch64, Arch::ScmpArchArm) => {
                abis.compat = true
            }
            (Host::X86_64, Arch::ScmpArchX32) => abis.x32 = true,
            (_, other) => {
                tracing::debug!(arch = %other, "seccomp: architecture cannot occur on this host, ignored")
            }
        }
    }
    abis
}

/// One argument condition.
#[derive(Debug, Clone, Copy)]
struct Cond {
    index: u32,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: u64,
}

/// One `syscalls[]` entry, validated: its action value and its (ANDed) conditions.
#[derive(Debug)]
struct Rule<'p> {
    names: &'p [String],
    action: u32,
    conds: Vec<Cond>,
}

/// Map an action (plus errnoRet) to its `SECCOMP_RET_*` value; `what` names the field for
/// error messages.
fn action_value(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    what: impl FnOnce() -> String,
) -> Result<u32, SeccompError> {
    use LinuxSeccompAction as A;
    let data = |base: u32| -> Result<u32, SeccompError> {
        let errno = errno_ret.unwrap_or(EPERM);
        if errno > MAX_ERRNO {
            return Err(SeccompError::ErrnoOutOfRange {
                what: what(),
                value: errno,
            });
        }
        Ok(base | errno)
    };
    Ok(match action {
        A::ScmpActKill | A::ScmpActKillThread => libc::SECCOMP_RET_KILL_THREAD,
        A::ScmpActKillProcess => libc::SECCOMP_RET_KILL_PROCESS,
        A::ScmpActTrap => libc::SECCOMP_RET_TRAP,
        A::ScmpActErrno => data(libc::SECCOMP_RET_ERRNO)?,
        A::ScmpActTrace => data(libc::SECCOMP_RET_TRACE)?,
        A::ScmpActNotify => libc::SECCOMP_RET_USER_NOTIF,
        A::ScmpActLog => libc::SECCOMP_RET_LOG,
        A::ScmpActAllow => libc::SECCOMP_RET_ALLOW,
    })
}

fn cond(rule: usize, arg: usize, a: &LinuxSeccompArg) -> Result<Cond, SeccompError> {
    if a.index() > 5 {
        return Err(SeccompError::ArgIndex {
            rule,
            arg,
            index: a.index(),
        });
    }
    Ok(Cond {
        index: a.index() as u32,
        op: a.op(),
        value: a.value(),
        value_two: a.value_two().unwrap_or(0),
    })
}

fn rules(profile: &LinuxSeccomp) -> Result<Vec<Rule<'_>>, SeccompError> {
    let syscalls = profile.syscalls().as_deref().unwrap_or_default();
    let mut out = Vec::with_capacity(syscalls.len());
    for (i, sc) in syscalls.iter().enumerate() {
        let action = action_value(sc.action(), sc.errno_ret(), || format!("syscalls[{i}]"))?;
        if sc.action() == LinuxSeccompAction::ScmpActNotify
            && sc.names().iter().any(|n| n == "write")
        {
            return Err(SeccompError::NotifyWrite { rule: i });
        }
        let conds = sc
            .args()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(j, a)| cond(i, j, a))
            .collect::<Result<Vec<_>, _>>()?;
        // As runc: when one argument has several conditions, each condition is a rule of
        // its own (ORed); otherwise the conditions are ANDed in one rule.
        let repeated = (0..6).any(|i| conds.iter().filter(|c| c.index == i).count() > 1);
        if repeated {
            out.extend(conds.into_iter().map(|c| Rule {
                names: sc.names(),
                action,
                conds: vec![c],
            }));
        } else {
            out.push(Rule {
                names: sc.names(),
                action,
                conds,
            });
        }
    }
    Ok(out)
}

/// The highest number of `table` that the profile names: as runc's filter does, a syscall
/// above it (one newer than the profile) fails with ENOSYS instead of the default action, so
/// that programs fall back to older calls. None when the default action allows anyway, or
/// is ENOSYS already.
fn last_known(profile: &LinuxSeccomp, table: Table) -> Option<u32> {
    let allow = matches!(
        profile.default_action(),
        LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog
    );
    if allow || profile.default_errno_ret() == Some(ENOSYS) {
        return None;
    }
    profile
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .flat_map(|s| s.names())
        .filter_map(|n| table.lookup(n))
        .max()
}

/// The rules that apply to each syscall number of one ABI, in profile order, simplified.
type SyscallRules<'r, 'p> = Vec<(u32, Vec<&'r Rule<'p>>)>;

fn per_syscall<'r, 'p>(
    abi: &str,
    table: Table,
    rules: &'r [Rule<'p>],
    default: u32,
) -> SyscallRules<'r, 'p> {
    let mut map: BTreeMap<u32, Vec<&'r Rule<'p>>> = BTreeMap::new();
    for rule in rules {
        for name in rule.names {
            match table.lookup(name) {
                Some(nr) => map.entry(nr).or_default().push(rule),
                None => tracing::debug!(abi, syscall = %name, "seccomp: unknown syscall, skipped"),
            }
        }
    }
    map.into_iter()
        .filter_map(|(nr, mut rs)| {
            // Nothing after an unconditional rule can match.
            if let Some(first) = rs.iter().position(|r| r.conds.is_empty()) {
                rs.truncate(first + 1);
            }
            // A trailing rule with the default action is the same as no rule.
            while rs.last().is_some_and(|r| r.action == default) {
                rs.pop();
            }
            (!rs.is_empty()).then_some((nr, rs))
        })
        .collect()
}

/// Compile `profile` for `host` into instructions (not yet checked against BPF_MAXINSNS).
pub(crate) fn compile(
    profile: &LinuxSeccomp,
    host: Host,
) -> Result<Vec<libc::sock_filter>, SeccompError> {
    if profile.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(SeccompError::NotifyDefault);
    }
    let default = action_value(
        profile.default_action(),
        profile.default_errno_ret(),
        || "defaultErrnoRet".to_string(),
    )?;
    let rules = rules(profile)?;
    let abis = requested_abis(profile, host);

    let mut b = Builder::new();
    let bad_arch = b.label();
    let default_ret = b.label();
    let enosys = b.label();
    // nr above the last syscall the profile knows (see `last_known`): ENOSYS; but nr -1,
    // what a tracer uses to skip a call, gets the default action.
    let stub = |b: &mut Builder, table: Table| {
        if let Some(last) = last_known(profile, table) {
            b.jump(Cmp::Eq, u32::MAX, Target::To(default_ret), Target::Next);
            b.jump(Cmp::Gt, last, Target::To(enosys), Target::Next);
        }
    };

    // Architecture dispatch.
    let (native_audit, compat_audit, native_table, compat_table) = match host {
        Host::X86_64 => (
            AUDIT_ARCH_X86_64,
            AUDIT_ARCH_I386,
            Table::X86_64,
            Table::I386,
        ),
        Host::Aarch64 => (
            AUDIT_ARCH_AARCH64,
            AUDIT_ARCH_ARM,
            Table::AARCH64,
            Table::ARM,
        ),
    };
    let native_block = b.label();
    let compat_block = b.label();
    b.load(OFF_ARCH);
    if abis.native || abis.x32 {
        b.jump(
            Cmp::Eq,
            native_audit,
            Target::To(native_block),
            Target::Next,
        );
    }
    if abis.compat {
        b.jump(
            Cmp::Eq,
            compat_audit,
            Target::To(compat_block),
            Target::Next,
        );
    }
    b.ret(libc::SECCOMP_RET_KILL_THREAD);

    if abis.native || abis.x32 {
        b.bind(native_block);
        b.load(OFF_NR);
        let native_body = b.label();
        if host == Host::X86_64 {
            let x32_body = b.label();
            let below = if abis.native { native_body } else { bad_arch };
            let above = if abis.x32 { x32_body } else { bad_arch };
            b.jump(Cmp::Ge, X32_SYSCALL_BIT, Target::Next, Target::To(below));
            // nr == -1 is what a tracer uses to skip a syscall; it is no x32 syscall.
            b.jump(
                Cmp::Eq,
                u32::MAX,
                Target::To(default_ret),
                Target::To(above),
            );
            if abis.x32 {
                b.bind(x32_body);
                stub(&mut b, Table::X32);
                let x32 = per_syscall("x32", Table::X32, &rules, default);
                emit_tree(&mut b, &x32, default);
            }
        }
        if abis.native {
            b.bind(native_body);
            stub(&mut b, native_table);
            let native = per_syscall(native_name(host), native_table, &rules, default);
            emit_tree(&mut b, &native, default);
        }
    }
    if abis.compat {
        b.bind(compat_block);
        b.load(OFF_NR);
        stub(&mut b, compat_table);
        let compat = per_syscall(compat_name(host), compat_table, &rules, default);
        emit_tree(&mut b, &compat, default);
    }
    b.bind(bad_arch);
    b.ret(libc::SECCOMP_RET_KILL_THREAD);
    b.bind(default_ret);
    b.ret(default);
    b.bind(enosys);
    b.ret(libc::SECCOMP_RET_ERRNO | ENOSYS);

    b.finish()
        .map_err(|e| SeccompError::Internal(e.to_string()))
}

fn native_name(host: Host) -> &'static str {
    match host {
        Host::X86_64 => "x86_64",
        Host::Aarch64 => "aarch64",
    }
}

fn compat_name(host: Host) -> &'static str {
    match host {
        Host::X86_64 => "i386",
        Host::Aarch64 => "arm",
    }
}

/// Binary search over syscall numbers (accumulator = nr) down to leaves of `LEAF` syscalls.
fn emit_tree(b: &mut Builder, syscalls: &[(u32, Vec<&Rule<'_>>)], default: u32) {
    if syscalls.len() <= LEAF {
        emit_leaf(b, syscalls, default);
        return;
    }
    let mid = syscalls.len() / 2;
    let upper = b.label();
    b.jump(Cmp::Ge, syscalls[mid].0, Target::To(upper), Target::Next);
    emit_tree(b, &syscalls[..mid], default);
    b.bind(upper);
    emit_tree(b, &syscalls[mid..], default);
}

enum Code<'a, 'r, 'p> {
    /// Return this action value.
    Ret(u32),
    /// Evaluate these rules in order.
    Rules(&'a [&'r Rule<'p>]),
}

fn emit_leaf(b: &mut Builder, syscalls: &[(u32, Vec<&Rule<'_>>)], default: u32) {
    let mut codes: Vec<(Label, Code<'_, '_, '_>)> = Vec::new();
    for (nr, rules) in syscalls {
        let label = match rules.as_slice() {
            [only] if only.conds.is_empty() => {
                match codes
                    .iter()
                    .find(|(_, c)| matches!(c, Code::Ret(a) if *a == only.action))
                {
                    Some((l, _)) => *l,
                    None => {
                        let l = b.label();
                        codes.push((l, Code::Ret(only.action)));
                        l
                    }
                }
            }
            rules => {
                let l = b.label();
                codes.push((l, Code::Rules(rules)));
                l
            }
        };
        b.jump(Cmp::Eq, *nr, Target::To(label), Target::Next);
    }
    b.ret(default);
    for (label, code) in codes {
        b.bind(label);
        match code {
            Code::Ret(action) => b.ret(action),
            Code::Rules(rules) => emit_rules(b, rules, default),
        }
    }
}

fn emit_rules(b: &mut Builder, rules: &[&Rule<'_>], default: u32) {
    for rule in rules {
        if rule.conds.is_empty() {
            // per_syscall() made this the last rule.
            b.ret(rule.action);
            return;
        }
        let next_rule = b.label();
        for c in &rule.conds {
            emit_cond(b, c, next_rule);
        }
        b.ret(rule.action);
        b.bind(next_rule);
    }
    b.ret(default);
}

/// Falls through when the condition holds, jumps to `fail` otherwise. Unsigned 64-bit
/// comparison: the high words decide unless they are equal.
fn emit_cond(b: &mut Builder, c: &Cond, fail: Label) {
    use LinuxSeccompOperator as Op;
    let lo = OFF_ARGS + 8 * c.index;
    let hi = lo + 4;
    let split = |v: u64| ((v >> 32) as u32, v as u32);
    let (vh, vl) = split(c.value);
    let (n, f) = (Target::Next, Target::To(fail));
    match c.op {
        Op::ScmpCmpEq => {
            b.load(hi);
            b.jump(Cmp::Eq, vh, n, f);
            b.load(lo);
            b.jump(Cmp::Eq, vl, n, f);
        }
        Op::ScmpCmpNe => {
            let pass = b.label();
            b.load(hi);
            b.jump(Cmp::Eq, vh, n, Target::To(pass));
            b.load(lo);
            b.jump(Cmp::Eq, vl, f, n);
            b.bind(pass);
        }
        Op::ScmpCmpGt | Op::ScmpCmpGe => {
            let pass = b.label();
            b.load(hi);
            b.jump(Cmp::Gt, vh, Target::To(pass), n);
            b.jump(Cmp::Eq, vh, n, f);
            b.load(lo);
            let cmp = if c.op == Op::ScmpCmpGt {
                Cmp::Gt
            } else {
                Cmp::Ge
            };
            b.jump(cmp, vl, n, f);
            b.bind(pass);
        }
        Op::ScmpCmpLt | Op::ScmpCmpLe => {
            // a < v  ⇔  !(a >= v);  a <= v  ⇔  !(a > v)
            let pass = b.label();
            b.load(hi);
            b.jump(Cmp::Gt, vh, f, n);
            b.jump(Cmp::Eq, vh, n, Target::To(pass));
            b.load(lo);
            let cmp = if c.op == Op::ScmpCmpLt {
                Cmp::Ge
            } else {
                Cmp::Gt
            };
            b.jump(cmp, vl, f, n);
            b.bind(pass);
        }
        Op::ScmpCmpMaskedEq => {
            // value is the mask, valueTwo the datum: (arg & value) == valueTwo.
            let (dh, dl) = split(c.value_two);
            b.load(hi);
            b.and(vh);
            b.jump(Cmp::Eq, dh, n, f);
            b.load(lo);
            b.and(vl);
            b.jump(Cmp::Eq, dl, n, f);
        }
    }
}
