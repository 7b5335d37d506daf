//! `--userns-remap`: which host ids the containers' users get, from `/etc/subuid` and
//! `/etc/subgid` as dockerd reads them, the `dockremap` user that `default` names (made when
//! missing, with a range appended to both files), and the directories the remapped root must
//! be able to traverse.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use wharf_image::IdMap;

/// The user `--userns-remap default` names, as dockerd's.
pub const DEFAULT_USER: &str = "dockremap";
/// The size of the range appended for `default` (dockerd's).
pub const DEFAULT_RANGE: u32 = 65536;
/// Ranges appended for `default` start at or above this (dockerd's, and shadow's default
/// `SUB_UID_MIN`).
const FIRST_ID: u32 = 100000;

#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("--userns-remap {spec:?}: {reason}")]
    Invalid { spec: String, reason: String },
    #[error("--userns-remap: user {0:?} does not exist (create it, or use \"default\")")]
    NoUser(String),
    #[error("--userns-remap: group {0:?} does not exist")]
    NoGroup(String),
    #[error(
        "--userns-remap: no subordinate {kind} range for {who:?} in {file}: add a line such as \
         \"{who}:{example}:65536\" there (a range no other user has; `usermod --add-sub{short}s \
         {example}-{end} {who}` does it)"
    )]
    NoRange {
        kind: &'static str,
        short: &'static str,
        who: String,
        file: String,
        example: u32,
        end: u32,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("--userns-remap: creating the {DEFAULT_USER} user: {0}")]
    CreateUser(String),
    #[error(
        "--userns-remap: {path} is not traversable by the remapped root ({uid}:{gid}), so \
         containers could not reach their files under it: allow it with `chmod o+x {path}`, or \
         choose a --data-root/--exec-root below directories that are"
    )]
    NotTraversable { path: String, uid: u32, gid: u32 },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> UsernsError + '_ {
    move |source| UsernsError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The subordinate id files (the host's, or a test's).
#[derive(Debug, Clone)]
pub struct SubIdFiles {
    pub subuid: PathBuf,
    pub subgid: PathBuf,
}

impl Default for SubIdFiles {
    fn default() -> Self {
        SubIdFiles {
            subuid: "/etc/subuid".into(),
            subgid: "/etc/subgid".into(),
        }
    }
}

/// The remapping a daemon runs its containers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remap {
    /// The user and group whose ranges are used.
    pub user: String,
    pub group: String,
    pub ids: IdMap,
}

impl Remap {
    /// Host uid and gid of the containers' root.
    pub fn root(&self) -> (u32, u32) {
        self.ids.root()
    }

    /// Where the daemon keeps its state under `data_root`: `<uid>.<gid>`, as dockerd.
    pub fn data_root(&self, data_root: &Path) -> PathBuf {
        let (u, g) = self.root();
        data_root.join(format!("{u}.{g}"))
    }
}

/// The `(start, count)` ranges of `name` (or of its numeric id, which shadow's files may use
/// too) in the contents of a subuid/subgid file.
pub fn ranges_of(contents: &str, name: &str, id: Option<u32>) -> Vec<(u32, u32)> {
    let id = id.map(|i| i.to_string());
    contents
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                return None;
            }
            let mut f = l.split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            if who != name && Some(who) != id.as_deref() {
                return None;
            }
            let (start, count) = (start.trim().parse().ok()?, count.trim().parse().ok()?);
            (count > 0).then_some((start, count))
        })
        .collect()
}

/// The first id after every range of the file (at least 100000): where a new range goes.
pub fn next_free(contents: &str) -> u32 {
    contents
        .lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (_, start, count) = (f.next()?, f.next()?, f.next()?);
            let (start, count): (u64, u64) =
                (start.trim().parse().ok()?, count.trim().parse().ok()?);
            Some(start + count)
        })
        .max()
        .map_or(FIRST_ID, |end| {
            end.clamp(FIRST_ID as u64, u32::MAX as u64) as u32
        })
}

/// Writes `contents` to `path` atomically (a temporary file beside it, fsync, rename, fsync
/// of the directory), keeping the file's mode (0644 for a new one).
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), UsernsError> {
    wharf_fs::AtomicWrite::default()
        .mode(0o644)
        .keep_mode()
        .write(path, contents)
        .map_err(io_err(path))
}

/// Appends a `count`-id range for `name` after the highest range of `file`; returns its start.
pub fn append_range(file: &Path, name: &str, count: u32) -> Result<u32, UsernsError> {
    let old = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io_err(file)(e)),
    };
    let start = next_free(&old);
    let mut new = old;
    if !new.is_empty() && !new.ends_with('\n') {
        new.push('\n');
    }
    new.push_str(&format!("{name}:{start}:{count}\n"));
    write_atomic(file, new.as_bytes())?;
    Ok(start)
}

/// Removes every line of `name` from `file`, atomically (for tests' users).
pub fn remove_ranges(file: &Path, name: &str) -> Result<(), UsernsError> {
    let old = std::fs::read_to_string(file).map_err(io_err(file))?;
    let kept: String = old
        .lines()
        .filter(|l| l.split(':').next() != Some(name))
        .map(|l| format!("{l}\n"))
        .collect();
    if kept != old {
        write_atomic(file, kept.as_bytes())?;
    }
    Ok(())
}

fn read(file: &Path) -> Result<String, UsernsError> {
    match std::fs::read_to_string(file) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(io_err(file)(e)),
    }
}

fn run(cmd: &str, args: &[&str]) -> Result<(), UsernsError> {
    let o = std::process::Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| UsernsError::CreateUser(format!("{cmd}: {e}")))?;
    if !o.status.success() {
        return Err(UsernsError::CreateUser(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    Ok(())
}

/// `default`: the `dockremap` group and user, made when missing (`groupadd -r`, `useradd -r
/// -M -s /bin/false`), and a 65536-id range in each file that has none for it.
pub fn ensure_default(files: &SubIdFiles) -> Result<(), UsernsError> {
    use nix::unistd::{Group, User};
    let lookup_err = |e: nix::Error| UsernsError::CreateUser(e.to_string());
    if Group::from_name(DEFAULT_USER)
        .map_err(lookup_err)?
        .is_none()
    {
        tracing::info!("creating the {DEFAULT_USER} group for --userns-remap default");
        run("groupadd", &["-r", DEFAULT_USER])?;
    }
    if User::from_name(DEFAULT_USER).map_err(lookup_err)?.is_none() {
        tracing::info!("creating the {DEFAULT_USER} user for --userns-remap default");
        run(
            "useradd",
            &[
                "-r",
                "-M",
                "-s",
                "/bin/false",
                "-g",
                DEFAULT_USER,
                DEFAULT_USER,
            ],
        )?;
    }
    for file in [&files.subuid, &files.subgid] {
        if ranges_of(&read(file)?, DEFAULT_USER, None).is_empty() {
            let start = append_range(file, DEFAULT_USER, DEFAULT_RANGE)?;
            tracing::info!(
                "added {DEFAULT_USER}:{start}:{DEFAULT_RANGE} to {}",
                file.display()
            );
        }
    }
    Ok(())
}

/// Resolves `--userns-remap <default|user[:group]|uid[:gid]>` (making what `default` needs).
pub fn resolve(spec: &str, files: &SubIdFiles) -> Result<Remap, UsernsError> {
    use nix::unistd::{Gid, Group, Uid, User};
    let invalid = |reason: &str| UsernsError::Invalid {
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if u.is_empty() || g.is_some_and(str::is_empty) {
        return Err(invalid(
            "expected default, user[:group] or uid[:gid] (an empty name)",
        ));
    }
    let (u, g) = if spec == "default" {
        ensure_default(files)?;
        (DEFAULT_USER, Some(DEFAULT_USER))
    } else {
        (u, g)
    };
    let lookup = |e: nix::Error| invalid(&e.to_string());
    let user = match u.parse::<u32>() {
        Ok(n) => User::from_uid(Uid::from_raw(n)).map_err(lookup)?,
        Err(_) => User::from_name(u).map_err(lookup)?,
    }
    .ok_or_else(|| UsernsError::NoUser(u.to_string()))?;
    let group = match g {
        // As dockerd: the group of the user's name.
        None => Group::from_name(&user.name)
            .map_err(lookup)?
            .ok_or_else(|| UsernsError::NoGroup(user.name.clone()))?,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => Group::from_gid(Gid::from_raw(n)).map_err(lookup)?,
            Err(_) => Group::from_name(g).map_err(lookup)?,
        }
        .ok_or_else(|| UsernsError::NoGroup(g.to_string()))?,
    };
    let subuid = read(&files.subuid)?;
    let subgid = read(&files.subgid)?;
    let uids = ranges_of(&subuid, &user.name, Some(user.uid.as_raw()));
    let gids = ranges_of(&subgid, &group.name, Some(group.gid.as_raw()));
    let missing = |kind, short, who: &str, file: &Path, contents: &str| {
        let example = next_free(contents);
        UsernsError::NoRange {
            kind,
            short,
            who: who.to_string(),
            file: file.display().to_string(),
            example,
            end: example.saturating_add(DEFAULT_RANGE - 1),
        }
    };
    if uids.is_empty() {
        return Err(missing("uid", "uid", &user.name, &files.subuid, &subuid));
    }
    if gids.is_empty() {
        return Err(missing("gid", "gid", &group.name, &files.subgid, &subgid));
    }
    Ok(Remap {
        user: user.name,
        group: group.name,
        ids: IdMap::from_ranges(&uids, &gids),
    })
}

/// `mkdir -p path`, the directories it makes owned by `owner` when given (existing ones are
/// left as they are): a missing bind source for a remapped container, as dockerd makes it.
pub fn mkdir_all_owned(path: &Path, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    let mut missing = Vec::new();
    let mut cur = Some(path);
    while let Some(p) = cur {
        if std::fs::symlink_metadata(p).is_ok() {
            break;
        }
        missing.push(p);
        cur = p.parent();
    }
    std::fs::create_dir_all(path)?;
    if let Some((u, g)) = owner {
        for p in missing {
            std::os::unix::fs::lchown(p, Some(u), Some(g))?;
        }
    }
    Ok(())
}

/// Whether `(uid, gid)` (no supplementary groups) may search the directory `meta`.
fn can_search(meta: &std::fs::Metadata, uid: u32, gid: u32) -> bool {
    let mode = meta.mode();
    if meta.uid() == uid {
        mode & 0o100 != 0
    } else if meta.gid() == gid {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    }
}

/// Makes `dir` (created when missing) root-owned with group `gid` and `mode`.
pub fn own_dir(dir: &Path, mode: u32, gid: u32) -> Result<(), UsernsError> {
    crate::roots::secure_dir(dir, mode).map_err(io_err(dir))?;
    std::os::unix::fs::chown(dir, Some(0), Some(gid)).map_err(io_err(dir))
}

/// The roots of a remapped daemon, as dockerd makes them: the given data root and its
/// `<uid>.<gid>` subdirectory `0710` with the remapped root's group (so that it can traverse
/// them and nothing more), the exec root likewise, and their ancestors checked to be
/// traversable by the remapped root.
pub fn secure_roots(
    remap: &Remap,
    outer_data_root: &Path,
    exec_root: &Path,
) -> Result<(), UsernsError> {
    let (uid, gid) = remap.root();
    // Checked before anything is made. Missing ancestors will be made 0755.
    for root in [outer_data_root, exec_root] {
        let abs = std::path::absolute(root).map_err(io_err(root))?;
        for dir in abs.ancestors().skip(1) {
            let meta = match std::fs::metadata(dir) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(dir)(e)),
            };
            if !can_search(&meta, uid, gid) {
                return Err(UsernsError::NotTraversable {
                    path: dir.display().to_string(),
                    uid,
                    gid,
                });
            }
        }
    }
    let data_root = remap.data_root(outer_data_root);
    own_dir(outer_data_root, crate::roots::DATA_ROOT_MODE, gid)?;
    own_dir(&data_root, crate::roots::DATA_ROOT_MODE, gid)?;
    own_dir(exec_root, crate::roots::DATA_ROOT_MODE, gid)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_by_name_or_id() {
        let f = "# comment\nalice:100000:65536\nbob:165536:65536\n1001:300000:10\nalice:500000:5\nbad:x:1\n";
        assert_eq!(
            ranges_of(f, "alice", Some(1000)),
            vec![(100000, 65536), (500000, 5)]
        );
        assert_eq!(ranges_of(f, "carol", Some(1001)), vec![(300000, 10)]);
        assert!(ranges_of(f, "dave", None).is_empty());
        assert_eq!(next_free(f), 500005);
        assert_eq!(next_free(""), 100000);
        assert_eq!(next_free("x:1000:10\n"), 100000);
    }

    #[test]
    fn ranges_are_appended_and_removed_atomically() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("subuid");
        std::fs::write(&f, "alice:100000:65536").unwrap();
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        assert_eq!(append_range(&f, "dockremap", 65536).unwrap(), 165536);
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "alice:100000:65536\ndockremap:165536:65536\n"
        );
        assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o777, 0o644);
        remove_ranges(&f, "alice").unwrap();
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "dockremap:165536:65536\n"
        );
        // No temporary file is left.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        let fresh = d.path().join("subgid");
        assert_eq!(append_range(&fresh, "x", 10).unwrap(), 100000);
    }

    #[test]
    fn missing_bind_sources_are_made_for_the_remapped_root() {
        let d = tempfile::tempdir().unwrap();
        let owner = nix::unistd::geteuid().is_root().then_some((100000, 100000));
        mkdir_all_owned(&d.path().join("a/b"), owner).unwrap();
        let m = std::fs::metadata(d.path().join("a/b")).unwrap();
        if owner.is_some() {
            assert_eq!((m.uid(), m.gid()), (100000, 100000));
            assert_eq!(std::fs::metadata(d.path().join("a")).unwrap().uid(), 100000);
            // The existing parent is left alone.
            assert_eq!(std::fs::metadata(d.path()).unwrap().uid(), 0);
        }
        assert!(m.is_dir());
    }

    #[test]
    fn named_users_need_their_ranges() {
        let d = tempfile::tempdir().unwrap();
        let files = SubIdFiles {
            subuid: d.path().join("subuid"),
            subgid: d.path().join("subgid"),
        };
        std::fs::write(&files.subuid, "other:100000:65536\n").unwrap();
        std::fs::write(&files.subgid, "").unwrap();
        // root exists everywhere; its group is named root too.
        let e = resolve("root", &files).unwrap_err().to_string();
        assert!(
            e.contains("no subordinate uid range for \"root\"") && e.contains("root:165536:65536"),
            "{e}"
        );
        std::fs::write(&files.subuid, "root:200000:65536\n").unwrap();
        let e = resolve("0:0", &files).unwrap_err().to_string();
        assert!(e.contains("no subordinate gid range"), "{e}");
        std::fs::write(&files.subgid, "0:300000:1000\n").unwrap();
        let r = resolve("root:root", &files).unwrap();
        assert_eq!(r.root(), (200000, 300000));
        assert_eq!(
            r.data_root(Path::new("/var/lib/wharf")),
            Path::new("/var/lib/wharf/200000.300000")
        );
        assert!(matches!(
            resolve("no-such-user-here", &files),
            Err(UsernsError::NoUser(_))
        ));
        assert!(resolve("root:", &files).is_err());
    }
}
