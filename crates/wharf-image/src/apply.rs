//! Applying a layer tar (plain, gzip or zstd) to a directory, safely.
//!
//! Every entry name is checked before anything is written: absolute names and `..` are
//! refused, parents are created as directories and must not be symlinks (so nothing can be
//! written through a link that points out of the target), existing entries are unlinked before
//! being replaced (never opened through), and hard links must name something already inside the
//! target. Whiteouts become overlayfs whiteouts (char device 0/0, `trusted.overlay.opaque`) for
//! the overlay snapshotter, or deletions when applying onto a full copy.
//! The diff id (sha256 of the uncompressed tar) is computed in the same pass.
//!
//! Whiteout names are checked as containerd checks them: what `.wh.<name>` hides must be a
//! plain child of the whiteout's directory (`.wh.` alone, `.wh..` and `.wh...` are refused:
//! they named the parent, or climbed out), and aufs metadata (`.wh..wh.*` other than the
//! opaque marker) is skipped. Extended attributes from the archive are filtered
//! ([`layer_xattr_allowed`]): overlayfs's own `trusted.overlay.*` (a layer could forge a
//! `redirect` or `metacopy` and read other layers' files) and every other `trusted.*` or
//! `security.*` attribute are dropped, except a well-formed `security.capability` (file
//! capabilities, bounded by the container's own set at exec).

use crate::digest::HashingReader;
use crate::error::Error;
use crate::idmap::IdMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";
/// aufs metadata (`.wh..wh.plnk`, `.wh..wh.aufs`): meaningless here, skipped as Docker does.
const WHITEOUT_META_PREFIX: &str = ".wh..wh.";

/// What a whiteout `.wh.<hidden>` hides, if it is a valid name: a plain file name, not empty,
/// not `.` or `..` (which would name the directory itself or its parent).
fn whiteout_target(hidden: &str) -> Option<&str> {
    (!hidden.is_empty() && hidden != "." && hidden != ".." && !hidden.contains('/'))
        .then_some(hidden)
}

/// Whether an extended attribute from a layer may be set on the extracted file.
pub fn layer_xattr_allowed(name: &str, value: &[u8]) -> bool {
    if name.contains('\0') {
        return false;
    }
    if name == "security.capability" {
        // struct vfs_cap_data: v1 (12 bytes), v2 (20) or v3 (24, with the namespace's root
        // uid); the revision is the top byte of magic_etc.
        let rev = value
            .get(..4)
            .map(|m| u32::from_le_bytes([m[0], m[1], m[2], m[3]]) & 0xFF00_0000);
        return matches!(
            (rev, value.len()),
            (Some(0x0100_0000), 12) | (Some(0x0200_0000), 20) | (Some(0x0300_0000), 24)
        );
    }
    name.starts_with("user.")
        || name == "system.posix_acl_access"
        || name == "system.posix_acl_default"
}

/// File capabilities for a layer extracted for a user namespace whose root is host uid
/// `root`: a v2 `security.capability` (which the kernel honours only where host uid 0 is
/// mapped) becomes the v3 form naming that root, so the capabilities still apply in the
/// container; v1 and v3 values are kept as they are.
fn namespaced_caps(value: &[u8], root: u32) -> Vec<u8> {
    const V2: u32 = 0x0200_0000;
    const V3: u32 = 0x0300_0000;
    let magic = u32::from_le_bytes([value[0], value[1], value[2], value[3]]);
    if magic & 0xFF00_0000 != V2 || value.len() != 20 {
        return value.to_vec();
    }
    let mut out = ((magic & 0x00FF_FFFF) | V3).to_le_bytes().to_vec();
    out.extend_from_slice(&value[4..20]);
    out.extend_from_slice(&root.to_le_bytes());
    out
}

/// The archive's extended attributes of `entry` (PAX `SCHILY.xattr.*` records).
fn entry_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut out = Vec::new();
    let Some(exts) = entry.pax_extensions().map_err(|e| Error::InvalidArchive {
        reason: format!("bad PAX header: {e}"),
    })?
    else {
        return Ok(out);
    };
    for ext in exts {
        let ext = ext.map_err(|e| Error::InvalidArchive {
            reason: format!("bad PAX record: {e}"),
        })?;
        if let Ok(key) = ext.key() {
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                out.push((name.to_string(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

/// How whiteout entries of a layer are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// Keep them as overlayfs whiteouts in the layer's own diff directory.
    Overlay,
    /// Delete what they name (the target holds the merged lower layers).
    Delete,
    /// Not a layer (`docker cp`): `.wh.` names are ordinary files.
    Literal,
}

/// What applying a layer produced.
#[derive(Debug, Clone)]
pub struct Applied {
    /// sha256 of the uncompressed tar stream.
    pub diff_id: String,
    /// Sum of the regular files' sizes.
    pub size: u64,
}

/// Wraps `r` in the decompressor its magic bytes call for.
pub fn decompress<'a>(r: impl Read + 'a) -> std::io::Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::with_capacity(256 * 1024, r);
    let head = br.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(br))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(br)?)
    } else {
        Box::new(br)
    })
}

/// A name from the archive as a relative path with only normal components, or an error.
fn clean_name(raw: &Path) -> Result<Option<PathBuf>, Error> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(Error::UnsafePath {
                    path: raw.display().to_string(),
                    reason: "absolute name",
                })
            }
            Component::ParentDir => {
                return Err(Error::UnsafePath {
                    path: raw.display().to_string(),
                    reason: "name contains '..'",
                })
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// What `docker cp` (`PUT /containers/{id}/archive`) asks of an extraction beyond a layer's
/// rules. The default is a layer's: replace whatever is in the way, keep the archive's owners.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyOptions {
    /// `noOverwriteDirNonDir`: refuse (moby's messages, nothing more written) an entry that
    /// would replace a directory by a non-directory, or a non-directory by a directory (an
    /// entry, or a parent an entry's name implies). Symlinks are non-directories.
    pub no_overwrite_dir_non_dir: bool,
    /// Every entry extracted is owned by this uid/gid instead of the archive's (`copyUIDGID`
    /// with a container user, as moby's `ChownOpts`).
    pub owner: Option<(u32, u32)>,
    /// A user namespace's mapping (`--userns-remap`): entries owned by the host ids of their
    /// archive owner, created parents by the container's root.
    pub ids: Option<IdMap>,
}

/// Makes sure every parent of `rel` under `root` is a real directory (creating missing ones).
/// A non-directory in the way is replaced, unless `keep_non_dirs` (then it is an error).
/// Directories it creates are owned by the container's root under a mapping `ids`.
fn prepare_parents(
    root: &Path,
    rel: &Path,
    keep_non_dirs: bool,
    ids: Option<&IdMap>,
) -> Result<(), Error> {
    let mut cur = root.to_path_buf();
    if let Some(parent) = rel.parent() {
        for c in parent.components() {
            cur.push(c);
            let created = match fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() => false,
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(Error::UnsafePath {
                        path: rel.display().to_string(),
                        reason: "a parent directory is a symlink",
                    })
                }
                Ok(_) if keep_non_dirs => {
                    return Err(Error::OverwriteNonDirWithDir {
                        path: cur.display().to_string(),
                        dest: root.display().to_string(),
                    })
                }
                Ok(_) => {
                    fs::remove_file(&cur).map_err(Error::io(&cur))?;
                    fs::create_dir(&cur).map_err(Error::io(&cur))?;
                    true
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    fs::create_dir(&cur).map_err(Error::io(&cur))?;
                    true
                }
                Err(e) => return Err(Error::io(&cur)(e)),
            };
            if let (true, Some(m)) = (created, ids) {
                let (u, g) = m.root();
                std::os::unix::fs::lchown(&cur, Some(u), Some(g)).map_err(Error::io(&cur))?;
            }
        }
    }
    Ok(())
}

/// Gives an extracted entry the host ids of its archive owner under `ids` (the tar crate set
/// the archive's ids), restoring the setuid/setgid bits the chown cleared.
fn shift_owner(target: &Path, rel: &Path, header: &tar::Header, ids: &IdMap) -> Result<(), Error> {
    let bad = |e: std::io::Error| Error::InvalidArchive {
        reason: format!("{}: {e}", rel.display()),
    };
    let (uid, gid) = entry_owner(header, rel)?;
    let (u, g) = ids.to_host(uid, gid).map_err(|e| Error::InvalidArchive {
        reason: format!("{}: {e}", rel.display()),
    })?;
    std::os::unix::fs::lchown(target, Some(u), Some(g)).map_err(Error::io(target))?;
    if !header.entry_type().is_symlink() {
        let mode = header.mode().map_err(bad)? & 0o7777;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(target, fs::Permissions::from_mode(mode)).map_err(Error::io(target))?;
    }
    Ok(())
}

fn remove_any(path: &Path) -> Result<(), Error> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(Error::io(path)),
        Ok(_) => fs::remove_file(path).map_err(Error::io(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path)(e)),
    }
}

fn make_whiteout(path: &Path) -> Result<(), Error> {
    use nix::sys::stat::{mknod, Mode, SFlag};
    remove_any(path)?;
    mknod(path, SFlag::S_IFCHR, Mode::empty(), 0).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e.into(),
    })
}

fn set_opaque(dir: &Path) -> Result<(), Error> {
    xattr_set(dir, "trusted.overlay.opaque", b"y")
}

pub(crate) fn xattr_set(path: &Path, name: &str, value: &[u8]) -> Result<(), Error> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let p = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::UnsafePath {
        path: path.display().to_string(),
        reason: "NUL in name",
    })?;
    let n = CString::new(name).map_err(|_| Error::UnsafePath {
        path: path.display().to_string(),
        reason: "NUL in an extended attribute's name",
    })?;
    // SAFETY: both pointers are valid NUL-terminated strings and value is a valid slice for
    // the given length; lsetxattr does not retain them.
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(Error::io(path)(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Applies the layer tar read from `r` onto `root`.
pub fn apply_layer(r: impl Read, root: &Path, mode: Whiteouts) -> Result<Applied, Error> {
    apply_layer_keeping(r, root, mode, None, None)
}

/// Like `apply_layer`, also writing the uncompressed tar to `keep` as it streams by (so that
/// `save` can hand out the exact bytes whose sha256 is the diff id).
pub fn apply_layer_keeping(
    r: impl Read,
    root: &Path,
    mode: Whiteouts,
    keep: Option<&mut dyn std::io::Write>,
    ids: Option<&IdMap>,
) -> Result<Applied, Error> {
    apply_layer_inner(r, root, mode, keep, false, ids)
}

/// Like `apply_layer_keeping` for a layer whose diff id the caller checks afterwards: a
/// stream that ends without padding its last entry to a whole block (as `umoci insert`
/// writes) is accepted. Truncated data cannot slip through, as it changes the diff id.
pub fn apply_verified_layer(
    r: impl Read,
    root: &Path,
    mode: Whiteouts,
    keep: Option<&mut dyn std::io::Write>,
    ids: Option<&IdMap>,
) -> Result<Applied, Error> {
    apply_layer_inner(r, root, mode, keep, true, ids)
}

fn apply_layer_inner(
    r: impl Read,
    root: &Path,
    mode: Whiteouts,
    keep: Option<&mut dyn std::io::Write>,
    pad_short_end: bool,
    ids: Option<&IdMap>,
) -> Result<Applied, Error> {
    let raw = decompress(r).map_err(Error::io(root))?;
    let mut tee = Tee {
        inner: raw,
        copy: keep,
    };
    let mut hashing = HashingReader::new(&mut tee);
    let size = if pad_short_end {
        apply_tar_mapped(&mut PadToBlock::new(&mut hashing), root, mode, ids)?
    } else {
        apply_tar_mapped(&mut hashing, root, mode, ids)?
    };
    let (diff_id, _) = hashing.finish().map_err(Error::io(root))?;
    Ok(Applied { diff_id, size })
}

/// At the end of the stream, supplies zeros up to the next 512-byte block boundary.
struct PadToBlock<R> {
    inner: R,
    count: u64,
    eof: bool,
}

impl<R: Read> PadToBlock<R> {
    fn new(inner: R) -> Self {
        PadToBlock {
            inner,
            count: 0,
            eof: false,
        }
    }
}

impl<R: Read> Read for PadToBlock<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = if self.eof { 0 } else { self.inner.read(buf)? };
        if n > 0 {
            self.count += n as u64;
            return Ok(n);
        }
        self.eof = true;
        let missing = ((512 - self.count % 512) % 512) as usize;
        let k = missing.min(buf.len());
        buf[..k].fill(0);
        self.count += k as u64;
        Ok(k)
    }
}

struct Tee<'a, R> {
    inner: R,
    copy: Option<&'a mut dyn std::io::Write>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(w) = &mut self.copy {
            w.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}

/// Applies an uncompressed tar stream; returns the total size of regular files.
pub fn apply_tar(r: &mut dyn Read, root: &Path, mode: Whiteouts) -> Result<u64, Error> {
    apply_tar_with(r, root, mode, &CopyOptions::default())
}

/// Like [`apply_tar`]; with `ids`, every entry is owned by the host ids of its archive owner
/// (an id outside the mapping is an error), and created parents by the container's root.
pub fn apply_tar_mapped(
    r: &mut dyn Read,
    root: &Path,
    mode: Whiteouts,
    ids: Option<&IdMap>,
) -> Result<u64, Error> {
    apply_tar_with(
        r,
        root,
        mode,
        &CopyOptions {
            ids: ids.cloned(),
            ..CopyOptions::default()
        },
    )
}

/// [`apply_tar`] with `docker cp`'s options (and a user namespace's mapping). Entries are
/// written as they are read: an archive refused or cut midway leaves the entries before it
/// in place (as Docker does).
pub fn apply_tar_with(
    r: &mut dyn Read,
    root: &Path,
    mode: Whiteouts,
    opts: &CopyOptions,
) -> Result<u64, Error> {
    let ids = opts.ids.as_ref();
    let mut archive = tar::Archive::new(r);
    archive.set_preserve_permissions(true);
    // Owners are set below, after each entry is written: an owner given, the archive's
    // (read as Go reads it: an empty field is 0, which the tar crate refuses), or the
    // archive's shifted into a user namespace's range.
    archive.set_preserve_ownerships(false);
    // Extended attributes are set below, filtered (`layer_xattr_allowed`).
    archive.set_unpack_xattrs(false);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    let bad = |e: std::io::Error| Error::InvalidArchive {
        reason: e.to_string(),
    };
    let mut dirs: Vec<(PathBuf, u64)> = Vec::new();
    let mut size = 0u64;
    let limit = space_limit(root);
    let mut claimed_total = 0u64;
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let raw_path = entry.path().map_err(bad)?.into_owned();
        let Some(rel) = clean_name(&raw_path)? else {
            continue;
        };
        // Nothing is preallocated, but a header (or a sparse map) claiming more than the disk
        // can hold is refused before a byte is written rather than left to fill the disk.
        let claimed = claimed_size(&entry);
        claimed_total = claimed_total.saturating_add(claimed);
        if claimed > limit || claimed_total > limit {
            return Err(Error::TooLarge {
                path: rel.display().to_string(),
                size: claimed,
                limit,
            });
        }
        prepare_parents(root, &rel, opts.no_overwrite_dir_non_dir, ids)?;
        let target = root.join(&rel);
        let name = rel
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name == OPAQUE && mode != Whiteouts::Literal {
            let dir = target.parent().unwrap_or(root).to_path_buf();
            match mode {
                Whiteouts::Overlay => set_opaque(&dir)?,
                Whiteouts::Literal => unreachable!("checked above"),
                Whiteouts::Delete => {
                    for child in fs::read_dir(&dir).map_err(Error::io(&dir))? {
                        let child = child.map_err(Error::io(&dir))?;
                        remove_any(&child.path())?;
                    }
                }
            }
            continue;
        }
        if name.starts_with(WHITEOUT_META_PREFIX) && mode != Whiteouts::Literal {
            continue;
        }
        if let Some(hidden) = name
            .strip_prefix(WHITEOUT_PREFIX)
            .filter(|_| mode != Whiteouts::Literal)
        {
            let hidden = whiteout_target(hidden).ok_or_else(|| Error::UnsafePath {
                path: rel.display().to_string(),
                reason: "invalid whiteout name (it must hide a file of its own directory)",
            })?;
            let victim = target.with_file_name(hidden);
            match mode {
                Whiteouts::Overlay => make_whiteout(&victim)?,
                Whiteouts::Delete => remove_any(&victim)?,
                Whiteouts::Literal => unreachable!("filtered above"),
            }
            continue;
        }
        let kind = entry.header().entry_type();
        let existing = fs::symlink_metadata(&target).ok();
        if let (Some(m), true) = (&existing, opts.no_overwrite_dir_non_dir) {
            let (path, dest) = (target.display().to_string(), root.display().to_string());
            if m.is_dir() && !kind.is_dir() {
                return Err(Error::OverwriteDirWithNonDir { path, dest });
            }
            if !m.is_dir() && kind.is_dir() {
                return Err(Error::OverwriteNonDirWithDir { path, dest });
            }
        }
        match existing {
            Some(m) if m.is_dir() && kind.is_dir() => {}
            Some(_) => remove_any(&target)?,
            None => {}
        }
        if kind.is_hard_link() {
            let link = entry
                .link_name()
                .map_err(bad)?
                .ok_or_else(|| Error::InvalidArchive {
                    reason: format!("hard link {} has no target", rel.display()),
                })?;
            let link_rel = clean_name(&link)?.ok_or_else(|| Error::UnsafePath {
                path: link.display().to_string(),
                reason: "hard link to the root",
            })?;
            prepare_parents(root, &link_rel, opts.no_overwrite_dir_non_dir, ids)?;
            let source = root.join(&link_rel);
            let meta = fs::symlink_metadata(&source).map_err(|_| Error::UnsafePath {
                path: rel.display().to_string(),
                reason: "hard link target is not inside the layer",
            })?;
            if meta.is_dir() {
                return Err(Error::UnsafePath {
                    path: rel.display().to_string(),
                    reason: "hard link to a directory",
                });
            }
            fs::hard_link(&source, &target).map_err(Error::io(&target))?;
            // The inode is shared: chown it only if it is not the owner's already (extracted
            // by this copy), as a chown drops set-ID bits and file capabilities.
            if let Some(owner) = opts.owner.filter(|o| *o != (meta.uid(), meta.gid())) {
                set_owner(&target, owner, Some(meta.mode()))?;
            }
            continue;
        }
        if kind.is_file() || kind == tar::EntryType::Continuous {
            size += entry.header().size().unwrap_or(0);
        }
        let mtime = entry.header().mtime().unwrap_or(0);
        let xattrs = entry_xattrs(&mut entry)?;
        if kind.is_fifo() || kind.is_character_special() || kind.is_block_special() {
            // The tar crate writes these as empty regular files.
            make_special(&target, &rel, entry.header())?;
        } else {
            entry.unpack(&target).map_err(|e| Error::InvalidArchive {
                reason: format!("{}: {e}", rel.display()),
            })?;
        }
        // Before the attributes: a chown drops `security.capability`.
        let owner = match opts.owner {
            Some(o) => Some(o),
            None if ids.is_none() => Some(entry_owner(entry.header(), &rel)?),
            None => None,
        };
        if let Some(owner) = owner {
            let restore = (!kind.is_symlink())
                .then(|| entry.header().mode().ok())
                .flatten();
            set_owner(&target, owner, restore)?;
        } else if let Some(m) = ids {
            shift_owner(&target, &rel, entry.header(), m)?;
        }
        for (name, value) in &xattrs {
            if !layer_xattr_allowed(name, value) {
                tracing::warn!(path = %rel.display(), xattr = %name, "dropped an extended attribute a layer may not set");
                continue;
            }
            let value = match ids {
                Some(m) if name == "security.capability" => namespaced_caps(value, m.root().0),
                _ => value.clone(),
            };
            // As Docker: a filesystem without xattrs (or a symlink refusing user.*) is not
            // an error.
            match xattr_set(&target, name, &value) {
                Ok(()) => {}
                Err(Error::Io { source, .. })
                    if matches!(
                        source.raw_os_error(),
                        Some(libc::ENOTSUP) | Some(libc::EPERM)
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        if kind.is_dir() {
            dirs.push((target, mtime));
        }
    }
    // Directory times last: creating their content changed them. A later entry may have
    // replaced a parent by a symlink: never set times through one (outside the root).
    for (dir, mtime) in dirs.iter().rev() {
        if !real_dirs_below(root, dir) {
            continue;
        }
        let ts = nix::sys::time::TimeSpec::new(*mtime as i64, 0);
        let _ = nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            dir.as_path(),
            &ts,
            &ts,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        );
    }
    Ok(size)
}

/// An entry's (uid, gid), read as Go's archive/tar reads them: a field of only NULs or spaces
/// is 0 (some writers leave it empty); anything else must be a number that fits.
fn entry_owner(h: &tar::Header, rel: &Path) -> Result<(u32, u32), Error> {
    let id = |field: &[u8], parsed: std::io::Result<u64>, what: &str| {
        if field.iter().all(|b| *b == 0 || *b == b' ') {
            return Ok(0);
        }
        parsed
            .ok()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| Error::InvalidArchive {
                reason: format!("{}: invalid {what} in the tar header", rel.display()),
            })
    };
    let old = h.as_old();
    Ok((id(&old.uid, h.uid(), "uid")?, id(&old.gid, h.gid(), "gid")?))
}

/// Creates the FIFO or device node an entry describes at `target` (nothing is there), with
/// the entry's permissions (not the umask's) and mtime; its owner is set by the caller.
fn make_special(target: &Path, rel: &Path, h: &tar::Header) -> Result<(), Error> {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    let bad = |what: &str| Error::InvalidArchive {
        reason: format!("{}: {what}", rel.display()),
    };
    let kind = h.entry_type();
    let flag = if kind.is_fifo() {
        SFlag::S_IFIFO
    } else if kind.is_character_special() {
        SFlag::S_IFCHR
    } else {
        SFlag::S_IFBLK
    };
    let number = |n: std::io::Result<Option<u32>>| {
        n.map(|n| n.unwrap_or(0))
            .map_err(|_| bad("invalid device number"))
    };
    let dev = if flag == SFlag::S_IFIFO {
        0
    } else {
        makedev(
            number(h.device_major())?.into(),
            number(h.device_minor())?.into(),
        )
    };
    let perm = h.mode().map_err(|_| bad("invalid mode"))? & 0o7777;
    mknod(target, flag, Mode::from_bits_truncate(perm), dev).map_err(|e| Error::Io {
        path: target.to_path_buf(),
        source: e.into(),
    })?;
    // mknod applied the umask.
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(target, fs::Permissions::from_mode(perm)).map_err(Error::io(target))?;
    }
    let ts = nix::sys::time::TimeSpec::new(h.mtime().unwrap_or(0) as i64, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        target,
        &ts,
        &ts,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| Error::Io {
        path: target.to_path_buf(),
        source: e.into(),
    })
}

/// Gives `path` (not followed) to `owner`, then sets `mode` again if it has set-user-ID or
/// set-group-ID bits: the kernel drops them from a file whose owner changes. (Never through a
/// symlink: chmod follows them.)
fn set_owner(path: &Path, (uid, gid): (u32, u32), mode: Option<u32>) -> Result<(), Error> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(Error::io(path))?;
    let is_link = || fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if let Some(m) = mode.filter(|m| m & 0o6000 != 0 && !is_link()) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(m & 0o7777))
            .map_err(Error::io(path))?;
    }
    Ok(())
}

/// Whether `dir` and every directory between `root` and it are directories, not symlinks.
fn real_dirs_below(root: &Path, dir: &Path) -> bool {
    let Ok(rel) = dir.strip_prefix(root) else {
        return false;
    };
    let mut cur = root.to_path_buf();
    rel.components().all(|c| {
        cur.push(c);
        fs::symlink_metadata(&cur).is_ok_and(|m| m.is_dir())
    })
}

/// The most an entry may claim: the free space of the filesystem holding `root`.
pub(crate) fn space_limit(root: &Path) -> u64 {
    nix::sys::statvfs::statvfs(root)
        .map(|s| s.blocks_available().saturating_mul(s.fragment_size()))
        .unwrap_or(u64::MAX)
}

/// The size an entry will take once written: its data size, or a sparse file's real size.
fn claimed_size<R: Read>(entry: &tar::Entry<'_, R>) -> u64 {
    let h = entry.header();
    let sparse_real = h
        .as_gnu()
        .filter(|_| h.entry_type().is_gnu_sparse())
        .and_then(|g| g.real_size().ok())
        .unwrap_or(0);
    entry.size().max(h.size().unwrap_or(0)).max(sparse_real)
}

/// Total size of the regular files under `dir` (not following symlinks, each inode once).
pub fn dir_size(dir: &Path) -> u64 {
    fn walk(p: &Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> u64 {
        let Ok(rd) = fs::read_dir(p) else { return 0 };
        let mut total = 0;
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                total += walk(&e.path(), seen);
            } else if m.is_file() && seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
        total
    }
    walk(dir, &mut Default::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With a mapping, entries are owned by the host ids of their archive owners (setuid bits
    /// kept, v2 file capabilities made v3 for the mapped root), created parents by the mapped
    /// root, and an id outside the mapping is refused.
    #[test]
    fn mapped_extraction_shifts_owners() {
        if !nix::unistd::geteuid().is_root() {
            wharf_testkit::skip("chown needs root");
            return;
        }
        let ids = IdMap::from_ranges(&[(100000, 65536)], &[(200000, 65536)]);
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |name: &str, kind: tar::EntryType, mode: u32, uid: u64, gid: u64| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_uid(uid);
            h.set_gid(gid);
            h.set_size(if kind.is_file() { 2 } else { 0 });
            if kind.is_symlink() {
                h.set_link_name("target").unwrap();
            }
            let data: &[u8] = if kind.is_file() { b"hi" } else { b"" };
            b.append_data(&mut h, name, data).unwrap();
        };
        add("bin/su", tar::EntryType::Regular, 0o4755, 0, 0);
        add("home/u/file", tar::EntryType::Regular, 0o644, 1000, 1000);
        add("link", tar::EntryType::Symlink, 0o777, 5, 6);
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(1);
        let mut caps = 0x0200_0001u32.to_le_bytes().to_vec();
        caps.extend_from_slice(&[0x00, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        b.append_pax_extensions([("SCHILY.xattr.security.capability", &caps[..])])
            .unwrap();
        b.append_data(&mut h, "ping", &b"x"[..]).unwrap();
        let t = b.into_inner().unwrap();
        let d = tempfile::tempdir().unwrap();
        apply_tar_mapped(&mut &t[..], d.path(), Whiteouts::Overlay, Some(&ids)).unwrap();
        let meta = |p: &str| fs::symlink_metadata(d.path().join(p)).unwrap();
        assert_eq!(
            (meta("bin/su").uid(), meta("bin/su").gid()),
            (100000, 200000)
        );
        assert_eq!(meta("bin/su").mode() & 0o7777, 0o4755);
        assert_eq!((meta("bin").uid(), meta("bin").gid()), (100000, 200000));
        assert_eq!(meta("home/u/file").uid(), 101000);
        assert_eq!(meta("home/u/file").gid(), 201000);
        assert_eq!((meta("link").uid(), meta("link").gid()), (100005, 200006));
        let mut buf = [0u8; 64];
        let name = std::ffi::CString::new("security.capability").unwrap();
        let path =
            std::ffi::CString::new(d.path().join("ping").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: valid NUL-terminated strings and a live buffer of the given length.
        let n =
            unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), 64) };
        if n > 0 {
            // The filesystem keeps file capabilities: the v3 form with the mapped root.
            assert_eq!(n, 24);
            assert_eq!(&buf[..4], &0x0300_0001u32.to_le_bytes());
            assert_eq!(&buf[20..24], &100000u32.to_le_bytes());
        }

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(70000);
        h.set_gid(0);
        h.set_size(0);
        b.append_data(&mut h, "far", &b""[..]).unwrap();
        let t = b.into_inner().unwrap();
        let e = apply_tar_mapped(&mut &t[..], d.path(), Whiteouts::Overlay, Some(&ids))
            .unwrap_err()
            .to_string();
        assert!(e.contains("70000") && e.contains("cannot be mapped"), "{e}");
    }

    fn tar_with(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
            h.set_size(data.len() as u64);
            h.set_mtime(1_700_000_000);
            h.set_uid(0);
            h.set_gid(0);
            if let Some(l) = link {
                // set_link_name refuses some paths; write raw bytes to test hostile input.
                let bytes = l.as_bytes();
                h.as_old_mut().linkname[..bytes.len()].copy_from_slice(bytes);
            }
            let nb = name.as_bytes();
            h.as_old_mut().name[..nb.len()].copy_from_slice(nb);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// FIFOs and device nodes are made as such (the tar crate makes empty regular files),
    /// with the entry's mode, owner and mtime; an empty uid/gid field reads as 0, as in Go;
    /// and the layer tar written back has the same entries (named by their path in the
    /// layer, not the host's, and not GNU sparse).
    #[test]
    fn special_files_and_empty_owner_fields_round_trip() {
        use std::os::unix::fs::FileTypeExt;
        if !nix::unistd::geteuid().is_root() {
            wharf_testkit::skip("mknod of devices needs root");
            return;
        }
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |name: &str, kind: tar::EntryType, mode: u32, dev: (u32, u32)| {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_uid(7);
            h.set_gid(8);
            h.set_mtime(1_600_000_000);
            h.set_size(0);
            h.set_device_major(dev.0).unwrap();
            h.set_device_minor(dev.1).unwrap();
            b.append_data(&mut h, name, &b""[..]).unwrap();
        };
        add("dev/null2", tar::EntryType::Char, 0o620, (1, 3));
        add("dev/loop9", tar::EntryType::Block, 0o600, (7, 9));
        add("run/pipe", tar::EntryType::Fifo, 0o4751, (0, 0));
        // Written by a tool that leaves the owner fields empty.
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(2);
        h.as_old_mut().uid = [0; 8];
        h.as_old_mut().gid = [b' '; 8];
        b.append_data(&mut h, "empty-owner", &b"hi"[..]).unwrap();
        let t = b.into_inner().unwrap();
        let d = tempfile::tempdir().unwrap();
        apply_tar(&mut &t[..], d.path(), Whiteouts::Overlay).unwrap();
        let meta = |p: &str| fs::symlink_metadata(d.path().join(p)).unwrap();
        let m = meta("dev/null2");
        assert!(m.file_type().is_char_device());
        assert_eq!(m.rdev(), nix::sys::stat::makedev(1, 3));
        assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o620, 7, 8));
        assert_eq!(m.mtime(), 1_600_000_000);
        let m = meta("dev/loop9");
        assert!(m.file_type().is_block_device());
        assert_eq!(m.rdev(), nix::sys::stat::makedev(7, 9));
        let m = meta("run/pipe");
        assert!(m.file_type().is_fifo());
        assert_eq!((m.mode() & 0o7777, m.uid()), (0o4751, 7), "set-ID bit kept");
        let m = meta("empty-owner");
        assert_eq!((m.uid(), m.gid()), (0, 0));

        // A sparse file (a hole of 1 MiB) is written as a plain entry.
        let sparse = fs::File::create(d.path().join("sparse")).unwrap();
        sparse.set_len(1 << 20).unwrap();
        drop(sparse);
        let mut out = tar::Builder::new(Vec::new());
        for rel in ["dev/null2", "dev/loop9", "run/pipe", "sparse"] {
            crate::layers::append_unmapped(&mut out, &d.path().join(rel), Path::new(rel), None)
                .unwrap();
        }
        let bytes = out.into_inner().unwrap();
        let mut a = tar::Archive::new(&bytes[..]);
        let got: Vec<_> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.entry_type(),
                    h.device_major().unwrap(),
                    h.device_minor().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("dev/null2".into(), tar::EntryType::Char, Some(1), Some(3)),
                ("dev/loop9".into(), tar::EntryType::Block, Some(7), Some(9)),
                ("run/pipe".into(), tar::EntryType::Fifo, Some(0), Some(0)),
                ("sparse".into(), tar::EntryType::Regular, Some(0), Some(0)),
            ]
        );
    }

    #[test]
    fn applies_files_dirs_links_and_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let t = tar_with(&[
            ("a/", tar::EntryType::Directory, b"", None),
            ("a/f", tar::EntryType::Regular, b"hello", None),
            ("a/l", tar::EntryType::Symlink, b"", Some("/etc/passwd")),
            ("a/h", tar::EntryType::Link, b"", Some("a/f")),
        ]);
        let applied = apply_layer(&t[..], dir.path(), Whiteouts::Delete).unwrap();
        assert_eq!(applied.diff_id, crate::digest::sha256(&t));
        assert_eq!(applied.size, 5);
        assert_eq!(fs::read(dir.path().join("a/h")).unwrap(), b"hello");
        assert_eq!(
            fs::read_link(dir.path().join("a/l")).unwrap(),
            Path::new("/etc/passwd")
        );
    }

    #[test]
    fn gzip_and_zstd_are_detected() {
        use std::io::Write;
        let t = tar_with(&[("f", tar::EntryType::Regular, b"x", None)]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&t).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&t[..], 1).unwrap();
        for data in [gz, zs] {
            let dir = tempfile::tempdir().unwrap();
            let a = apply_layer(&data[..], dir.path(), Whiteouts::Delete).unwrap();
            assert_eq!(
                a.diff_id,
                crate::digest::sha256(&t),
                "diff id is of the uncompressed tar"
            );
            assert!(dir.path().join("f").exists());
        }
    }

    #[test]
    fn hostile_archives_are_refused_and_write_nothing_outside() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("root");
        fs::create_dir(&root).unwrap();
        let cases: Vec<Vec<u8>> = vec![
            tar_with(&[("../evil", tar::EntryType::Regular, b"x", None)]),
            tar_with(&[("/evil", tar::EntryType::Regular, b"x", None)]),
            tar_with(&[
                ("sym", tar::EntryType::Symlink, b"", Some("..")),
                ("sym/evil", tar::EntryType::Regular, b"x", None),
            ]),
            tar_with(&[("hl", tar::EntryType::Link, b"", Some("../outside"))]),
        ];
        for (i, t) in cases.iter().enumerate() {
            let r = apply_layer(&t[..], &root, Whiteouts::Delete);
            assert!(r.is_err(), "case {i} must fail");
            assert!(
                !outer.path().join("evil").exists(),
                "case {i} wrote outside"
            );
        }
        let names: Vec<_> = fs::read_dir(outer.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("root")]);
    }

    #[test]
    fn directory_times_are_not_set_through_a_later_symlink() {
        // An escape fuzz/fuzz_targets/layer_apply.rs checks for (found reading apply_tar for
        // it): `a/`, `a/sdir/`, then `a` -> `..`: the final pass set the time of
        // `root/a/sdir`, that is of `sdir` beside the root.
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("root");
        fs::create_dir(&root).unwrap();
        let sdir = outer.path().join("sdir");
        fs::create_dir(&sdir).unwrap();
        let ts = nix::sys::time::TimeSpec::new(1000, 0);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &sdir,
            &ts,
            &ts,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
        let t = tar_with(&[
            ("a/", tar::EntryType::Directory, b"", None),
            ("a/sdir/", tar::EntryType::Directory, b"", None),
            ("a", tar::EntryType::Symlink, b"", Some("..")),
        ]);
        apply_layer(&t[..], &root, Whiteouts::Delete).unwrap();
        assert_eq!(fs::read_link(root.join("a")).unwrap(), Path::new(".."));
        assert_eq!(fs::symlink_metadata(&sdir).unwrap().mtime(), 1000);
    }

    #[test]
    fn truncated_archive_is_an_error() {
        let mut h = tar::Header::new_gnu();
        h.set_path("big").unwrap();
        h.set_size(1 << 40);
        h.set_cksum();
        let mut data = h.as_bytes().to_vec();
        data.extend_from_slice(&[0u8; 1024]);
        let dir = tempfile::tempdir().unwrap();
        assert!(apply_layer(&data[..], dir.path(), Whiteouts::Delete).is_err());
    }

    #[test]
    fn whiteouts_delete_in_copy_mode() {
        let dir = tempfile::tempdir().unwrap();
        let l1 = tar_with(&[
            ("a/x", tar::EntryType::Regular, b"1", None),
            ("a/y", tar::EntryType::Regular, b"1", None),
            ("b/z", tar::EntryType::Regular, b"1", None),
        ]);
        let l2 = tar_with(&[
            ("a/.wh.x", tar::EntryType::Regular, b"", None),
            ("b/.wh..wh..opq", tar::EntryType::Regular, b"", None),
            ("b/new", tar::EntryType::Regular, b"2", None),
        ]);
        apply_layer(&l1[..], dir.path(), Whiteouts::Delete).unwrap();
        apply_layer(&l2[..], dir.path(), Whiteouts::Delete).unwrap();
        assert!(!dir.path().join("a/x").exists());
        assert!(dir.path().join("a/y").exists());
        assert!(!dir.path().join("b/z").exists());
        assert!(dir.path().join("b/new").exists());
    }

    fn copy(t: &[u8], root: &Path, opts: &CopyOptions) -> Result<u64, Error> {
        apply_tar_with(&mut &t[..], root, Whiteouts::Literal, opts)
    }

    #[test]
    fn no_overwrite_dir_non_dir_refuses_both_ways_with_moby_messages() {
        let refuse = CopyOptions {
            no_overwrite_dir_non_dir: true,
            owner: None,
            ids: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let shown = |p: &str| format!("{:?}", r.join(p).display().to_string());
        let root = format!("{:?}", r.display().to_string());
        fs::create_dir(r.join("d")).unwrap();
        fs::write(r.join("d/keep"), "x").unwrap();
        fs::write(r.join("f"), "file").unwrap();
        std::os::unix::fs::symlink("d", r.join("s")).unwrap();

        // A file over a directory: refused, and the entries before it were written.
        let t = tar_with(&[
            ("first", tar::EntryType::Regular, b"1", None),
            ("d", tar::EntryType::Regular, b"2", None),
            ("after", tar::EntryType::Regular, b"3", None),
        ]);
        let e = copy(&t, r, &refuse).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "cannot overwrite directory {} with non-directory {root}",
                shown("d")
            )
        );
        assert!(r.join("d/keep").exists() && r.join("first").exists());
        assert!(!r.join("after").exists());

        // A directory over a file, over a symlink (not followed), and implied over a file.
        for (t, what) in [
            (
                tar_with(&[("f/", tar::EntryType::Directory, b"", None)]),
                "f",
            ),
            (
                tar_with(&[("s/", tar::EntryType::Directory, b"", None)]),
                "s",
            ),
            (
                tar_with(&[("f/inner", tar::EntryType::Regular, b"x", None)]),
                "f",
            ),
        ] {
            let e = copy(&t, r, &refuse).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "cannot overwrite non-directory {} with directory {root}",
                    shown(what)
                )
            );
        }
        assert_eq!(fs::read(r.join("f")).unwrap(), b"file");
        assert!(fs::symlink_metadata(r.join("s")).unwrap().is_symlink());

        // Same kinds are fine: a directory merges, a file replaces a file.
        let t = tar_with(&[
            ("d/", tar::EntryType::Directory, b"", None),
            ("d/new", tar::EntryType::Regular, b"n", None),
            ("f", tar::EntryType::Regular, b"new", None),
        ]);
        copy(&t, r, &refuse).unwrap();
        assert!(r.join("d/keep").exists() && r.join("d/new").exists());
        assert_eq!(fs::read(r.join("f")).unwrap(), b"new");

        // Without the option, both replacements happen.
        let t = tar_with(&[
            ("d", tar::EntryType::Regular, b"now a file", None),
            ("f/", tar::EntryType::Directory, b"", None),
        ]);
        copy(&t, r, &CopyOptions::default()).unwrap();
        assert_eq!(fs::read(r.join("d")).unwrap(), b"now a file");
        assert!(r.join("f").is_dir());
    }

    /// A tar whose entries are all owned by 1234:1234, with a set-user-ID file.
    fn owned_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut add =
            |name: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: Option<&str>| {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(kind);
                h.set_mode(mode);
                h.set_size(data.len() as u64);
                h.set_uid(1234);
                h.set_gid(1234);
                h.set_mtime(1_700_000_000);
                if let Some(l) = link {
                    h.set_link_name(l).unwrap();
                }
                b.append_data(&mut h, name, data).unwrap();
            };
        add("dir/", tar::EntryType::Directory, 0o755, b"", None);
        add("dir/suid", tar::EntryType::Regular, 0o4755, b"#!", None);
        add("dir/plain", tar::EntryType::Regular, 0o644, b"p", None);
        add(
            "dir/link",
            tar::EntryType::Symlink,
            0o777,
            b"",
            Some("plain"),
        );
        add(
            "dir/hard",
            tar::EntryType::Link,
            0o644,
            b"",
            Some("dir/suid"),
        );
        b.into_inner().unwrap()
    }

    #[test]
    fn an_owner_given_owns_every_entry_and_keeps_set_id_bits() {
        if !wharf_testkit::need_root() {
            return;
        }
        let ids = |p: &Path| {
            let m = fs::symlink_metadata(p).unwrap();
            (m.uid(), m.gid())
        };
        let names = ["dir", "dir/suid", "dir/plain", "dir/link", "dir/hard"];
        // Without one, the archive's owners stay.
        let kept = tempfile::tempdir().unwrap();
        copy(&owned_tar(), kept.path(), &CopyOptions::default()).unwrap();
        for n in names {
            assert_eq!(ids(&kept.path().join(n)), (1234, 1234), "{n}");
        }
        let given = tempfile::tempdir().unwrap();
        let opts = CopyOptions {
            no_overwrite_dir_non_dir: true,
            owner: Some((2375, 2376)),
            ids: None,
        };
        copy(&owned_tar(), given.path(), &opts).unwrap();
        for n in names {
            assert_eq!(ids(&given.path().join(n)), (2375, 2376), "{n}");
        }
        let mode = |p: &str| fs::metadata(given.path().join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode("dir/suid"), 0o4755);
        assert_eq!(mode("dir/hard"), 0o4755);
        assert_eq!(mode("dir/plain"), 0o644);
    }
}
