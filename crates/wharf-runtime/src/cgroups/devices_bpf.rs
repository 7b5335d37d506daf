//! The cgroup v2 device controller: a `BPF_PROG_TYPE_CGROUP_DEVICE` program generated from the
//! effective rule set (as runc's and crun's device filters), loaded with `bpf(2)` and attached
//! to the cgroup with `BPF_F_ALLOW_MULTI`, replacing the programs attached before.
//!
//! The program reads `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`:
//! r2 = device type (low 16 bits of `access_type`), r3 = requested access (high 16 bits),
//! r4 = major, r5 = minor. Then one block per exception: when type, access, major and minor
//! match it returns the exception's verdict, else it jumps to the next block; the last block
//! returns the default verdict.

use std::fmt;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::devices::{access, DevType, DeviceRule, Effective};
use super::CgroupError;

/// `BPF_DEVCG_DEV_BLOCK` / `BPF_DEVCG_DEV_CHAR`.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// The few eBPF instructions the device filter needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insn {
    /// `dst = *(u32 *)(src + off)`
    LdxW { dst: u8, src: u8, off: i16 },
    /// `dst &= imm` (32 bit)
    And32Imm { dst: u8, imm: i32 },
    /// `dst >>= imm` (32 bit)
    Rsh32Imm { dst: u8, imm: i32 },
    /// `dst = src` (32 bit)
    Mov32Reg { dst: u8, src: u8 },
    /// `dst = imm` (32 bit)
    Mov32Imm { dst: u8, imm: i32 },
    /// `if dst != imm goto pc + 1 + off`
    JneImm { dst: u8, imm: i32, off: i16 },
    /// `if dst != src goto pc + 1 + off`
    JneReg { dst: u8, src: u8, off: i16 },
    /// `return r0`
    Exit,
}

impl Insn {
    /// The kernel's 8-byte `struct bpf_insn` (little-endian hosts: dst in the low nibble).
    pub fn encode(&self) -> [u8; 8] {
        let (code, dst, src, off, imm): (u8, u8, u8, i16, i32) = match *self {
            // BPF_LDX | BPF_MEM | BPF_W
            Insn::LdxW { dst, src, off } => (0x61, dst, src, off, 0),
            // BPF_ALU | BPF_AND | BPF_K
            Insn::And32Imm { dst, imm } => (0x54, dst, 0, 0, imm),
            // BPF_ALU | BPF_RSH | BPF_K
            Insn::Rsh32Imm { dst, imm } => (0x74, dst, 0, 0, imm),
            // BPF_ALU | BPF_MOV | BPF_X
            Insn::Mov32Reg { dst, src } => (0xbc, dst, src, 0, 0),
            // BPF_ALU | BPF_MOV | BPF_K
            Insn::Mov32Imm { dst, imm } => (0xb4, dst, 0, 0, imm),
            // BPF_JMP | BPF_JNE | BPF_K
            Insn::JneImm { dst, imm, off } => (0x55, dst, 0, off, imm),
            // BPF_JMP | BPF_JNE | BPF_X
            Insn::JneReg { dst, src, off } => (0x5d, dst, src, off, 0),
            // BPF_JMP | BPF_EXIT
            Insn::Exit => (0x95, 0, 0, 0, 0),
        };
        let mut b = [0u8; 8];
        b[0] = code;
        b[1] = (dst & 0x0f) | (src << 4);
        b[2..4].copy_from_slice(&off.to_le_bytes());
        b[4..8].copy_from_slice(&imm.to_le_bytes());
        b
    }
}

impl fmt::Display for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Insn::LdxW { dst, src, off } => write!(f, "ldxw r{dst}, [r{src}{off:+}]"),
            Insn::And32Imm { dst, imm } => write!(f, "and32 r{dst}, {imm:#x}"),
            Insn::Rsh32Imm { dst, imm } => write!(f, "rsh32 r{dst}, {imm}"),
            Insn::Mov32Reg { dst, src } => write!(f, "mov32 r{dst}, r{src}"),
            Insn::Mov32Imm { dst, imm } => write!(f, "mov32 r{dst}, {imm}"),
            Insn::JneImm { dst, imm, off } => write!(f, "jne r{dst}, {imm}, {off:+}"),
            Insn::JneReg { dst, src, off } => write!(f, "jne r{dst}, r{src}, {off:+}"),
            Insn::Exit => write!(f, "exit"),
        }
    }
}

/// A numbered listing, one instruction a line (for tests and debugging).
pub fn listing(prog: &[Insn]) -> String {
    prog.iter()
        .enumerate()
        .map(|(i, insn)| format!("{i}: {insn}\n"))
        .collect()
}

/// The device filter for an effective rule set.
pub fn program(eff: &Effective) -> Vec<Insn> {
    let mut prog = vec![
        Insn::LdxW {
            dst: 2,
            src: 1,
            off: 0,
        },
        Insn::And32Imm {
            dst: 2,
            imm: 0xffff,
        },
        Insn::LdxW {
            dst: 3,
            src: 1,
            off: 0,
        },
        Insn::Rsh32Imm { dst: 3, imm: 16 },
        Insn::LdxW {
            dst: 4,
            src: 1,
            off: 4,
        },
        Insn::LdxW {
            dst: 5,
            src: 1,
            off: 8,
        },
    ];
    for rule in &eff.exceptions {
        prog.extend(block(rule));
    }
    prog.push(Insn::Mov32Imm {
        dst: 0,
        imm: i32::from(eff.default_allow),
    });
    prog.push(Insn::Exit);
    prog
}

/// One exception's block; every jump goes to the instruction after the block.
fn block(rule: &DeviceRule) -> Vec<Insn> {
    // Each jump is built with off 0 and patched once the block's length is known.
    let mut b = Vec::new();
    match rule.typ {
        DevType::Block => b.push(Insn::JneImm {
            dst: 2,
            imm: DEV_BLOCK,
            off: 0,
        }),
        DevType::Char => b.push(Insn::JneImm {
            dst: 2,
            imm: DEV_CHAR,
            off: 0,
        }),
        DevType::All => {} // only with a major or minor (normalize splits the rest)
    }
    if rule.access != access::ALL {
        // Requested access must be a subset: (r3 & allowed) == r3.
        b.push(Insn::Mov32Reg { dst: 1, src: 3 });
        b.push(Insn::And32Imm {
            dst: 1,
            imm: i32::from(rule.access),
        });
        b.push(Insn::JneReg {
            dst: 1,
            src: 3,
            off: 0,
        });
    }
    if let Some(major) = rule.major {
        b.push(Insn::JneImm {
            dst: 4,
            imm: major as i32,
            off: 0,
        });
    }
    if let Some(minor) = rule.minor {
        b.push(Insn::JneImm {
            dst: 5,
            imm: minor as i32,
            off: 0,
        });
    }
    b.push(Insn::Mov32Imm {
        dst: 0,
        imm: i32::from(rule.allow),
    });
    b.push(Insn::Exit);
    let len = b.len();
    for (i, insn) in b.iter_mut().enumerate() {
        let to_next = (len - i - 1) as i16;
        match insn {
            Insn::JneImm { off, .. } | Insn::JneReg { off, .. } => *off = to_next,
            _ => {}
        }
    }
    b
}

/// Loads the program for `eff` and attaches it to the cgroup directory `dir`, then detaches
/// the device programs that were attached before (so updates replace the rules).
pub fn apply(dir: &Path, eff: &Effective) -> Result<(), CgroupError> {
    let bpf_err = |op: &'static str| {
        move |source| CgroupError::Bpf {
            op,
            path: dir.to_path_buf(),
            source,
        }
    };
    let cgroup = File::open(dir).map_err(|source| CgroupError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let code: Vec<[u8; 8]> = program(eff).iter().map(Insn::encode).collect();
    let prog = sys::prog_load(&code).map_err(bpf_err("BPF_PROG_LOAD"))?;
    let old = match sys::prog_query(cgroup.as_raw_fd()) {
        Ok(ids) => ids,
        // A kernel without BPF_PROG_QUERY cannot have several programs either.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Vec::new(),
        Err(e) => return Err(bpf_err("BPF_PROG_QUERY")(e)),
    };
    sys::prog_attach(cgroup.as_raw_fd(), prog.as_raw_fd(), sys::BPF_F_ALLOW_MULTI)
        .map_err(bpf_err("BPF_PROG_ATTACH"))?;
    for id in old {
        let Ok(old_prog) = sys::prog_get_fd_by_id(id) else {
            continue; // already gone
        };
        sys::prog_detach(cgroup.as_raw_fd(), old_prog.as_raw_fd())
            .map_err(bpf_err("BPF_PROG_DETACH"))?;
    }
    Ok(())
}

/// Whether `dir` has device programs attached, and how many (for tests and diagnostics).
pub fn attached_programs(dir: &Path) -> Result<usize, CgroupError> {
    let cgroup = File::open(dir).map_err(|source| CgroupError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    sys::prog_query(cgroup.as_raw_fd())
        .map(|ids| ids.len())
        .map_err(|source| CgroupError::Bpf {
            op: "BPF_PROG_QUERY",
            path: dir.to_path_buf(),
            source,
        })
}

/// The `bpf(2)` calls, with the kernel's `union bpf_attr` layouts (prefixes of it: the kernel
/// takes a shorter attr and zero-fills the rest).
mod sys {
    use super::*;
    use std::io;

    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_PROG_ATTACH: libc::c_long = 8;
    const BPF_PROG_DETACH: libc::c_long = 9;
    const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
    const BPF_PROG_QUERY: libc::c_long = 16;
    const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
    const BPF_CGROUP_DEVICE: u32 = 6;
    pub const BPF_F_ALLOW_MULTI: u32 = 2;

    #[repr(C)]
    #[derive(Default)]
    struct ProgLoadAttr {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
        prog_ifindex: u32,
        expected_attach_type: u32,
    }

    #[repr(C)]
    #[derive(Default)]
    struct AttachAttr {
        target_fd: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
        replace_bpf_fd: u32,
    }

    #[repr(C)]
    #[derive(Default)]
    struct QueryAttr {
        target_fd: u32,
        attach_type: u32,
        query_flags: u32,
        attach_flags: u32,
        prog_ids: u64,
        prog_cnt: u32,
        _pad: u32,
    }

    #[repr(C)]
    #[derive(Default)]
    struct GetFdAttr {
        prog_id: u32,
        next_id: u32,
        open_flags: u32,
    }

    /// `bpf(cmd, attr, sizeof attr)`.
    fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
        // SAFETY: `attr` is a live, exclusively borrowed #[repr(C)] prefix of `union bpf_attr`
        // for `cmd`, and its size is passed; the kernel reads (and for queries writes) only
        // within it. Any pointers inside it point to buffers the caller keeps alive.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                attr as *mut T as *mut libc::c_void,
                std::mem::size_of::<T>() as libc::c_uint,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }

    fn owned(fd: libc::c_long) -> OwnedFd {
        // SAFETY: the kernel just returned this new fd; nothing else owns it.
        unsafe { OwnedFd::from_raw_fd(fd as i32) }
    }

    /// Loads a cgroup device program; on a verifier error the message includes its log.
    pub fn prog_load(code: &[[u8; 8]]) -> io::Result<OwnedFd> {
        let license = b"Apache\0";
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: code.len() as u32,
            insns: code.as_ptr() as u64,
            license: license.as_ptr() as u64,
            expected_attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        attr.prog_name[..11].copy_from_slice(b"wharf_devic");
        match bpf(BPF_PROG_LOAD, &mut attr) {
            Ok(fd) => Ok(owned(fd)),
            Err(e)
                if e.raw_os_error() == Some(libc::EACCES)
                    || e.raw_os_error() == Some(libc::EINVAL) =>
            {
                // Load again with the verifier log to say why.
                let mut log = vec![0u8; 64 * 1024];
                attr.log_level = 1;
                attr.log_size = log.len() as u32;
                attr.log_buf = log.as_mut_ptr() as u64;
                let _ = bpf(BPF_PROG_LOAD, &mut attr).map(owned);
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]);
                Err(io::Error::new(
                    e.kind(),
                    format!("{e}; verifier log: {}", text.trim()),
                ))
            }
            Err(e) => Err(e),
        }
    }

    pub fn prog_attach(cgroup: i32, prog: i32, flags: u32) -> io::Result<()> {
        let mut attr = AttachAttr {
            target_fd: cgroup as u32,
            attach_bpf_fd: prog as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: flags,
            ..Default::default()
        };
        bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
    }

    pub fn prog_detach(cgroup: i32, prog: i32) -> io::Result<()> {
        let mut attr = AttachAttr {
            target_fd: cgroup as u32,
            attach_bpf_fd: prog as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        bpf(BPF_PROG_DETACH, &mut attr).map(drop)
    }

    /// The ids of the device programs attached to `cgroup` itself.
    pub fn prog_query(cgroup: i32) -> io::Result<Vec<u32>> {
        let mut ids = vec![0u32; 64];
        let mut attr = QueryAttr {
            target_fd: cgroup as u32,
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..Default::default()
        };
        bpf(BPF_PROG_QUERY, &mut attr)?;
        ids.truncate(attr.prog_cnt as usize);
        Ok(ids)
    }

    pub fn prog_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
        let mut attr = GetFdAttr {
            prog_id: id,
            ..Default::default()
        };
        bpf(BPF_PROG_GET_FD_BY_ID, &mut attr).map(owned)
    }
}

#[cfg(test)]
mod tests {
    use super::super::devices::{effective, normalize};
    use super::*;

    fn prog_for(json: &str) -> Vec<Insn> {
        let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
        program(&effective(&normalize(&rules).unwrap()))
    }

    #[test]
    fn allow_list_program_listing() {
        let prog = prog_for(
            r#"[{"allow":false,"access":"rwm"},
                {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
                {"allow":true,"type":"c","access":"m"},
                {"allow":true,"type":"b","major":8,"access":"r"},
                {"allow":false,"type":"c","major":1,"minor":3,"access":"w"}]"#,
        );
        let want = "\
0: ldxw r2, [r1+0]
1: and32 r2, 0xffff
2: ldxw r3, [r1+0]
3: rsh32 r3, 16
4: ldxw r4, [r1+4]
5: ldxw r5, [r1+8]
6: jne r2, 2, +7
7: mov32 r1, r3
8: and32 r1, 0x3
9: jne r1, r3, +4
10: jne r4, 1, +3
11: jne r5, 3, +2
12: mov32 r0, 1
13: exit
14: jne r2, 2, +5
15: mov32 r1, r3
16: and32 r1, 0x1
17: jne r1, r3, +2
18: mov32 r0, 1
19: exit
20: jne r2, 1, +6
21: mov32 r1, r3
22: and32 r1, 0x2
23: jne r1, r3, +3
24: jne r4, 8, +2
25: mov32 r0, 1
26: exit
27: mov32 r0, 0
28: exit
";
        assert_eq!(listing(&prog), want);
    }

    #[test]
    fn deny_list_program_returns_allow_by_default() {
        let prog = prog_for(
            r#"[{"allow":true,"access":"rwm"},
                {"allow":false,"type":"b","major":8,"minor":0,"access":"rwm"}]"#,
        );
        let want = "\
6: jne r2, 1, +4
7: jne r4, 8, +3
8: jne r5, 0, +2
9: mov32 r0, 0
10: exit
11: mov32 r0, 1
12: exit
";
        assert!(listing(&prog).ends_with(want), "{}", listing(&prog));
    }

    #[test]
    fn no_rules_deny_everything() {
        let prog = prog_for("[]");
        assert_eq!(&prog[6..], [Insn::Mov32Imm { dst: 0, imm: 0 }, Insn::Exit]);
    }

    #[test]
    fn instructions_encode_like_the_kernel_expects() {
        let ld = Insn::LdxW {
            dst: 2,
            src: 1,
            off: 4,
        };
        assert_eq!(ld.encode(), [0x61, 0x12, 4, 0, 0, 0, 0, 0]);
        let jne = Insn::JneImm {
            dst: 4,
            imm: 136,
            off: -1,
        };
        assert_eq!(jne.encode(), [0x55, 0x04, 0xff, 0xff, 136, 0, 0, 0]);
        assert_eq!(Insn::Exit.encode(), [0x95, 0, 0, 0, 0, 0, 0, 0]);
        let mov = Insn::Mov32Reg { dst: 1, src: 3 };
        assert_eq!(mov.encode(), [0xbc, 0x31, 0, 0, 0, 0, 0, 0]);
    }
}
