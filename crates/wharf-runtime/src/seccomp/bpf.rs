//! A tiny classic-BPF assembler with symbolic forward labels.
//!
//! Classic BPF conditional jumps carry 8-bit offsets (`jt`/`jf`, at most 255 instructions
//! ahead), while `BPF_JA` carries a 32-bit offset. Code is emitted with symbolic targets and
//! [`Builder::finish`] lays it out: whenever a conditional branch would land further than 255
//! instructions away, that branch is redirected to a `JA` trampoline placed right after the
//! conditional jump. Inserting trampolines moves later code, so layout is repeated until it is
//! stable (each branch only ever goes from "near" to "far", so this terminates).
//!
//! Only forward jumps exist in classic BPF; a label bound before its use is an internal error.

use libc::sock_filter;

// Instruction classes and fields (linux/bpf_common.h).
pub(crate) const BPF_LD: u16 = 0x00;
pub(crate) const BPF_ALU: u16 = 0x04;
pub(crate) const BPF_JMP: u16 = 0x05;
pub(crate) const BPF_RET: u16 = 0x06;
pub(crate) const BPF_W: u16 = 0x00;
pub(crate) const BPF_ABS: u16 = 0x20;
pub(crate) const BPF_K: u16 = 0x00;
pub(crate) const BPF_AND: u16 = 0x50;
pub(crate) const BPF_JA: u16 = 0x00;
pub(crate) const BPF_JEQ: u16 = 0x10;
pub(crate) const BPF_JGT: u16 = 0x20;
pub(crate) const BPF_JGE: u16 = 0x30;

/// Largest offset a conditional jump can encode.
const MAX_SHORT_JUMP: usize = u8::MAX as usize;

/// A symbolic jump target, bound to a position with [`Builder::bind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Label(usize);

/// Where a branch of a conditional jump goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// The instruction emitted right after the jump.
    Next,
    /// A bound label.
    To(Label),
}

/// Comparison of a conditional jump (against the constant `k`, unsigned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Gt,
    Ge,
}

impl Cmp {
    fn code(self) -> u16 {
        BPF_JMP
            | BPF_K
            | match self {
                Cmp::Eq => BPF_JEQ,
                Cmp::Gt => BPF_JGT,
                Cmp::Ge => BPF_JGE,
            }
    }
}

#[derive(Debug, Clone)]
enum Item {
    Insn(sock_filter),
    Jump {
        cmp: Cmp,
        k: u32,
        jt: Target,
        jf: Target,
    },
    Bind(Label),
}

/// Errors that indicate a bug in the code generator, not in the profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AsmError {
    #[error("label {0} used but never bound")]
    Unbound(usize),
    #[error("label {0} bound twice")]
    Rebound(usize),
    #[error("backward jump to label {0} (classic BPF only jumps forward)")]
    Backward(usize),
}

/// Accumulates instructions with symbolic jumps; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct Builder {
    items: Vec<Item>,
    labels: usize,
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

impl Builder {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A fresh, unbound label.
    pub(crate) fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Bind `label` to the next instruction emitted.
    pub(crate) fn bind(&mut self, label: Label) {
        self.items.push(Item::Bind(label));
    }

    /// `A = *(u32 *)(data + offset)`.
    pub(crate) fn load(&mut self, offset: u32) {
        self.items
            .push(Item::Insn(stmt(BPF_LD | BPF_W | BPF_ABS, offset)));
    }

    /// `A &= k`.
    pub(crate) fn and(&mut self, k: u32) {
        self.items
            .push(Item::Insn(stmt(BPF_ALU | BPF_AND | BPF_K, k)));
    }

    /// `return k`.
    pub(crate) fn ret(&mut self, k: u32) {
        self.items.push(Item::Insn(stmt(BPF_RET | BPF_K, k)));
    }

    /// `if (A <cmp> k) goto jt; else goto jf;`
    pub(crate) fn jump(&mut self, cmp: Cmp, k: u32, jt: Target, jf: Target) {
        self.items.push(Item::Jump { cmp, k, jt, jf });
    }

    /// Resolve all labels and produce the final program.
    pub(crate) fn finish(self) -> Result<Vec<sock_filter>, AsmError> {
        // far[i] = (jt needs a trampoline, jf needs a trampoline) for item i.
        let mut far = vec![(false, false); self.items.len()];
        loop {
            let positions = self.layout(&far)?;
            let mut changed = false;
            let mut pos = 0usize;
            for (i, item) in self.items.iter().enumerate() {
                match item {
                    Item::Insn(_) => pos += 1,
                    Item::Bind(_) => {}
                    Item::Jump { jt, jf, .. } => {
                        let (ft, ff) = far[i];
                        let after = pos + 1 + usize::from(ft) + usize::from(ff);
                        let mut too_far = [false, false];
                        for (slot, branch) in [jt, jf].into_iter().enumerate() {
                            if let Target::To(l) = branch {
                                let dest = positions[l.0].ok_or(AsmError::Unbound(l.0))?;
                                if dest < after {
                                    return Err(AsmError::Backward(l.0));
                                }
                                // Encoded offsets count from the instruction after the jump,
                                // i.e. they include any trampolines.
                                too_far[slot] = dest - (pos + 1) > MAX_SHORT_JUMP;
                            }
                        }
                        let (nt, nf) = (ft || too_far[0], ff || too_far[1]);
                        if (nt, nf) != (ft, ff) {
                            far[i] = (nt, nf);
                            changed = true;
                        }
                        pos = after;
                    }
                }
            }
            if !changed {
                return self.emit(&far, &positions);
            }
        }
    }

    /// Position of every label given the current trampoline decisions.
    fn layout(&self, far: &[(bool, bool)]) -> Result<Vec<Option<usize>>, AsmError> {
        let mut positions = vec![None; self.labels];
        let mut pos = 0usize;
        for (i, item) in self.items.iter().enumerate() {
            match item {
                Item::Insn(_) => pos += 1,
                Item::Jump { .. } => pos += 1 + usize::from(far[i].0) + usize::from(far[i].1),
                Item::Bind(l) => {
                    if positions[l.0].replace(pos).is_some() {
                        return Err(AsmError::Rebound(l.0));
                    }
                }
            }
        }
        Ok(positions)
    }

    fn emit(
        &self,
        far: &[(bool, bool)],
        positions: &[Option<usize>],
    ) -> Result<Vec<sock_filter>, AsmError> {
        let dest = |l: &Label| positions[l.0].ok_or(AsmError::Unbound(l.0));
        let mut out: Vec<sock_filter> = Vec::with_capacity(self.items.len());
        for (i, item) in self.items.iter().enumerate() {
            match item {
                Item::Insn(insn) => out.push(*insn),
                Item::Bind(_) => {}
                Item::Jump { cmp, k, jt, jf } => {
                    let (ft, ff) = far[i];
                    let pos = out.len();
                    let trampolines = usize::from(ft) + usize::from(ff);
                    let after = pos + 1 + trampolines;
                    // Offsets are relative to pos + 1. Trampolines sit at pos+1 (jt, if far)
                    // and then the jf one.
                    let mut next_tramp = 0usize;
                    let mut branch =
                        |t: &Target, is_far: bool| -> Result<(u8, Option<Label>), AsmError> {
                            if is_far {
                                let off = next_tramp;
                                next_tramp += 1;
                                let Target::To(l) = t else {
                                    unreachable!("Next is never far")
                                };
                                return Ok((off as u8, Some(*l)));
                            }
                            // finish() checked that targets are forward and near.
                            let to = match t {
                                Target::Next => after,
                                Target::To(l) => dest(l)?,
                            };
                            let off = to - (pos + 1);
                            debug_assert!(off <= MAX_SHORT_JUMP);
                            Ok((off as u8, None))
                        };
                    let (jt_off, jt_tramp) = branch(jt, ft)?;
                    let (jf_off, jf_tramp) = branch(jf, ff)?;
                    out.push(sock_filter {
                        code: cmp.code(),
                        jt: jt_off,
                        jf: jf_off,
                        k: *k,
                    });
                    for l in [jt_tramp, jf_tramp].into_iter().flatten() {
                        let from = out.len() + 1;
                        let to = dest(&l)?;
                        let off = to.checked_sub(from).ok_or(AsmError::Backward(l.0))?;
                        out.push(stmt(BPF_JMP | BPF_JA, off as u32));
                    }
                    debug_assert_eq!(out.len(), after);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_jumps_are_encoded_directly() {
        let mut b = Builder::new();
        let yes = b.label();
        b.load(0);
        b.jump(Cmp::Eq, 7, Target::To(yes), Target::Next);
        b.ret(1);
        b.bind(yes);
        b.ret(2);
        let p = b.finish().unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!((p[1].jt, p[1].jf, p[1].k), (1, 0, 7));
    }

    #[test]
    fn far_jumps_get_a_trampoline() {
        let mut b = Builder::new();
        let far = b.label();
        b.jump(Cmp::Gt, 3, Target::Next, Target::To(far));
        for _ in 0..300 {
            b.ret(0);
        }
        b.bind(far);
        b.ret(9);
        let p = b.finish().unwrap();
        // jgt; ja; 300 x ret; ret 9
        assert_eq!(p.len(), 303);
        assert_eq!((p[0].jt, p[0].jf), (1, 0), "jt skips the trampoline");
        assert_eq!(p[1].code, BPF_JMP | BPF_JA);
        assert_eq!(2 + p[1].k as usize, 302, "trampoline lands on `ret 9`");
        assert_eq!(p[302].k, 9);
    }

    #[test]
    fn both_branches_far() {
        let mut b = Builder::new();
        let t = b.label();
        let f = b.label();
        b.jump(Cmp::Eq, 0, Target::To(t), Target::To(f));
        for _ in 0..300 {
            b.ret(0);
        }
        b.bind(t);
        b.ret(1);
        for _ in 0..300 {
            b.ret(0);
        }
        b.bind(f);
        b.ret(2);
        let p = b.finish().unwrap();
        assert_eq!((p[0].jt, p[0].jf), (0, 1));
        assert_eq!(p[2 + p[1].k as usize].k, 1);
        assert_eq!(p[3 + p[2].k as usize].k, 2);
    }

    #[test]
    fn backward_and_unbound_labels_are_errors() {
        let mut b = Builder::new();
        let l = b.label();
        b.bind(l);
        b.jump(Cmp::Eq, 0, Target::Next, Target::To(l));
        b.ret(0);
        assert_eq!(b.finish().unwrap_err(), AsmError::Backward(0));

        let mut b = Builder::new();
        let l = b.label();
        b.jump(Cmp::Eq, 0, Target::To(l), Target::Next);
        assert_eq!(b.finish().unwrap_err(), AsmError::Unbound(0));
    }
}
