//! cgroup v1 (one hierarchy per controller, or several co-mounted), plus membership in the
//! cgroup2 hierarchy of a hybrid host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxRdma, LinuxResources};

use super::convert::{ns_per_tick, pids_max};
use super::layout::{relative_to_mount, CgroupMount, OwnCgroups};
use super::stats::{parse_blkio_bytes, parse_flat_keyed, parse_numbers, DetailedStats};
use super::v2::{hugetlb_usage, DEFAULT_FREEZE_TIMEOUT};
use super::{devices, files, CgroupError, CgroupManager, CgroupPath, FreezerState, Stats};

/// One container's cgroup in each mounted v1 hierarchy.
#[derive(Debug, Clone)]
pub struct V1Manager {
    /// Controller → hierarchy mount point.
    mounts: BTreeMap<String, PathBuf>,
    /// Controller → the container's cgroup directory in that hierarchy.
    dirs: BTreeMap<String, PathBuf>,
    /// Hybrid hosts: the container's directory in the cgroup2 hierarchy (membership only).
    unified: Option<PathBuf>,
    freeze_timeout: Duration,
}

/// `path` made relative: normal components only.
fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .collect()
}

impl V1Manager {
    /// The cgroup `path` (relative to each hierarchy's root; a leading `/` is ignored) in the
    /// hierarchies `mounts` (controller → mount point, e.g. `memory` →
    /// `/sys/fs/cgroup/memory`, or a temporary directory).
    pub fn with_mounts(mounts: BTreeMap<String, PathBuf>, path: &Path) -> V1Manager {
        let rel = relative(path);
        let dirs = mounts
            .iter()
            .map(|(c, m)| (c.clone(), m.join(&rel)))
            .collect();
        V1Manager {
            mounts,
            dirs,
            unified: None,
            freeze_timeout: DEFAULT_FREEZE_TIMEOUT,
        }
    }

    /// Also joins the cgroup `path` below the cgroup2 mount `root` (hybrid hosts).
    pub fn with_unified(mut self, root: &Path, path: &Path) -> V1Manager {
        self.unified = Some(root.join(relative(path)));
        self
    }

    /// How long `freeze` waits for `freezer.state` to settle on `FROZEN`.
    pub fn with_freeze_timeout(mut self, timeout: Duration) -> V1Manager {
        self.freeze_timeout = timeout;
        self
    }

    /// The manager for `path` on the host's hierarchies, given this process's cgroups: a
    /// relative path is resolved per hierarchy below the runtime's own cgroup there.
    pub fn from_layout(
        controllers: &BTreeMap<String, CgroupMount>,
        unified: Option<&CgroupMount>,
        own: &OwnCgroups,
        path: &CgroupPath,
    ) -> V1Manager {
        let below = |mount: &CgroupMount, own_path: Option<&PathBuf>| {
            let own_dir = own_path
                .map(|p| relative_to_mount(mount, p))
                .unwrap_or_default();
            mount.mount_point.join(path.below_root(&own_dir))
        };
        let mounts = controllers
            .iter()
            .map(|(c, m)| (c.clone(), m.mount_point.clone()))
            .collect();
        let dirs = controllers
            .iter()
            .map(|(c, m)| (c.clone(), below(m, own.v1.get(c))))
            .collect();
        V1Manager {
            mounts,
            dirs,
            unified: unified.map(|m| below(m, own.unified.as_ref())),
            freeze_timeout: DEFAULT_FREEZE_TIMEOUT,
        }
    }

    /// The container's directory for `controller`, if that controller is mounted.
    pub fn path(&self, controller: &str) -> Option<&Path> {
        self.dirs.get(controller).map(PathBuf::as_path)
    }

    /// The cgroup2 directory on a hybrid host.
    pub fn unified_path(&self) -> Option<&Path> {
        self.unified.as_deref()
    }

    fn dir(&self, controller: &str) -> Result<&Path, CgroupError> {
        self.path(controller)
            .ok_or_else(|| CgroupError::ControllerMissing(controller.to_string()))
    }

    /// Every distinct directory (co-mounted controllers share one), then the unified one.
    fn all_dirs(&self) -> Vec<&Path> {
        let mut out: Vec<&Path> = Vec::new();
        for d in self.dirs.values() {
            if !out.contains(&d.as_path()) {
                out.push(d);
            }
        }
        out.extend(self.unified.as_deref());
        out
    }

    /// A new cpuset cgroup has empty `cpuset.cpus`/`cpuset.mems` and takes no process until
    /// they are set: copy them down from the parent at every level (as runc does).
    fn init_cpuset(&self) -> Result<(), CgroupError> {
        let (Some(mount), Some(dir)) = (self.mounts.get("cpuset"), self.dirs.get("cpuset")) else {
            return Ok(());
        };
        let rel = dir.strip_prefix(mount).unwrap_or(Path::new(""));
        let mut parent = mount.clone();
        for comp in rel.components() {
            let current = parent.join(comp);
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let own = files::read_opt(&current, file)?.unwrap_or_default();
                if own.trim().is_empty() {
                    let from = files::read(&parent, file)?;
                    if !from.trim().is_empty() {
                        files::write(&current, file, from.trim())?;
                    }
                }
            }
            parent = current;
        }
        Ok(())
    }

    fn set_memory(&self, m: &LinuxMemory) -> Result<(), CgroupError> {
        let dir = self.dir("memory")?;
        let limit = m.limit().unwrap_or(0);
        let mut swap = m.swap().unwrap_or(0);
        // Unlimited memory without a swap value: swap unlimited too.
        if limit == -1 && swap == 0 {
            swap = -1;
        }
        let write_limit = || files::write(dir, "memory.limit_in_bytes", &limit.to_string());
        let write_swap = || files::write(dir, "memory.memsw.limit_in_bytes", &swap.to_string());
        // The kernel wants limit <= memsw at every step: raising memsw above the current limit
        // goes first, lowering it goes last.
        if limit != 0 && swap != 0 {
            let current = files::read_u64(dir, "memory.limit_in_bytes")?;
            if swap == -1 || current < swap as u64 {
                write_swap()?;
                write_limit()?;
            } else {
                write_limit()?;
                write_swap()?;
            }
        } else if limit != 0 {
            write_limit()?;
        } else if swap != 0 {
            write_swap()?;
        }
        if let Some(r) = m.reservation().filter(|r| *r != 0) {
            files::write(dir, "memory.soft_limit_in_bytes", &r.to_string())?;
        }
        if let Some(tcp) = m.kernel_tcp().filter(|t| *t != 0) {
            files::write(dir, "memory.kmem.tcp.limit_in_bytes", &tcp.to_string())?;
        }
        // memory.kernel is deprecated and gone from current kernels: ignored, as runc does.
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(CgroupError::InvalidResource(format!(
                    "memory.swappiness {s} is not in 0..=100"
                )));
            }
            files::write(dir, "memory.swappiness", &s.to_string())?;
        }
        if m.disable_oom_killer() == Some(true) {
            files::write(dir, "memory.oom_control", "1")?;
        }
        Ok(())
    }

    fn set_cpu(&self, c: &LinuxCpu) -> Result<(), CgroupError> {
        let quota = c.quota().unwrap_or(0);
        let period = c.period().unwrap_or(0);
        let needs_cpu = c.shares().unwrap_or(0) != 0
            || quota != 0
            || period != 0
            || c.burst().is_some()
            || c.idle().is_some()
            || c.realtime_runtime().unwrap_or(0) != 0
            || c.realtime_period().unwrap_or(0) != 0;
        if needs_cpu {
            let dir = self.dir("cpu")?;
            if let Some(shares) = c.shares().filter(|s| *s != 0) {
                files::write(dir, "cpu.shares", &shares.to_string())?;
            }
            // A period below the current quota/period ratio of the parent can be refused
            // (EINVAL) until the quota is set: then set it again after the quota (as runc).
            let mut period_pending = false;
            if period != 0 {
                if let Err(e) = files::write(dir, "cpu.cfs_period_us", &period.to_string()) {
                    let einval = matches!(&e, CgroupError::Write { source, .. }
                        if source.raw_os_error() == Some(libc::EINVAL));
                    if !einval || quota == 0 {
                        return Err(e);
                    }
                    period_pending = true;
                }
            }
            if quota != 0 {
                files::write(dir, "cpu.cfs_quota_us", &quota.to_string())?;
                if period_pending {
                    files::write(dir, "cpu.cfs_period_us", &period.to_string())?;
                }
            }
            if let Some(burst) = c.burst() {
                files::write(dir, "cpu.cfs_burst_us", &burst.to_string())?;
            }
            if let Some(idle) = c.idle() {
                files::write(dir, "cpu.idle", &idle.to_string())?;
            }
            if let Some(p) = c.realtime_period().filter(|p| *p != 0) {
                files::write(dir, "cpu.rt_period_us", &p.to_string())?;
            }
            if let Some(r) = c.realtime_runtime().filter(|r| *r != 0) {
                files::write(dir, "cpu.rt_runtime_us", &r.to_string())?;
            }
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            files::write(self.dir("cpuset")?, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            files::write(self.dir("cpuset")?, "cpuset.mems", mems)?;
        }
        Ok(())
    }

    fn set_blkio(&self, b: &LinuxBlockIo) -> Result<(), CgroupError> {
        let mut lines: Vec<(&str, String)> = Vec::new();
        if let Some(w) = b.weight().filter(|w| *w != 0) {
            lines.push(("weight", w.to_string()));
        }
        if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
            lines.push(("leaf_weight", w.to_string()));
        }
        for wd in b.weight_device().iter().flatten() {
            if let Some(w) = wd.weight() {
                lines.push((
                    "weight_device",
                    format!("{}:{} {w}", wd.major(), wd.minor()),
                ));
            }
            if let Some(w) = wd.leaf_weight() {
                lines.push((
                    "leaf_weight_device",
                    format!("{}:{} {w}", wd.major(), wd.minor()),
                ));
            }
        }
        let throttles = [
            ("throttle.read_bps_device", b.throttle_read_bps_device()),
            ("throttle.write_bps_device", b.throttle_write_bps_device()),
            ("throttle.read_iops_device", b.throttle_read_iops_device()),
            ("throttle.write_iops_device", b.throttle_write_iops_device()),
        ];
        for (file, list) in throttles {
            for td in list.iter().flatten() {
                lines.push((file, format!("{}:{} {}", td.major(), td.minor(), td.rate())));
            }
        }
        if lines.is_empty() {
            return Ok(());
        }
        let dir = self.dir("blkio")?;
        // Without CFQ the weights are BFQ's (blkio.bfq.weight*), as runc handles it.
        let bfq = !dir.join("blkio.weight").exists() && dir.join("blkio.bfq.weight").exists();
        for (file, value) in lines {
            let file = match (bfq, file) {
                (true, "weight") => "blkio.bfq.weight".to_string(),
                (true, "weight_device") => "blkio.bfq.weight_device".to_string(),
                _ => format!("blkio.{file}"),
            };
            files::write(dir, &file, &value)?;
        }
        Ok(())
    }

    fn set_devices(
        &self,
        rules: &[oci_spec::runtime::LinuxDeviceCgroup],
    ) -> Result<(), CgroupError> {
        let rules = devices::normalize(rules)?;
        let dir = self.dir("devices")?;
        // Deny everything, then the rules in order (the kernel applies the same semantics as
        // devices::effective).
        files::write(dir, "devices.deny", "a")?;
        for r in &rules {
            let file = if r.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            files::write(dir, file, &r.v1_line())?;
        }
        Ok(())
    }

    fn set_freezer(&self, state: &str) -> Result<(), CgroupError> {
        let dir = self.dir("freezer")?;
        files::write(dir, "freezer.state", state)?;
        let mut polls = 0u32;
        let done = files::poll_until(self.freeze_timeout, || {
            polls += 1;
            // FREEZING can stall on a task that is busy in the kernel: ask again now and then.
            if polls == 20 {
                polls = 0;
                files::write(dir, "freezer.state", state)?;
            }
            Ok(files::read(dir, "freezer.state")?.trim() == state)
        })?;
        if done {
            return Ok(());
        }
        if state == "FROZEN" {
            let _ = files::write(dir, "freezer.state", "THAWED");
        }
        Err(CgroupError::FreezerTimeout {
            path: dir.to_path_buf(),
            what: if state == "FROZEN" { "freeze" } else { "thaw" },
            timeout: self.freeze_timeout,
        })
    }

    fn collect_stats(&self) -> Result<DetailedStats, CgroupError> {
        let mut s = DetailedStats::default();
        if let Some(d) = self.path("memory") {
            let b = &mut s.base;
            b.memory_usage = files::read_u64(d, "memory.usage_in_bytes")?;
            b.memory_max_usage = files::read_u64(d, "memory.max_usage_in_bytes")?;
            b.memory_limit = files::read_u64_opt(d, "memory.limit_in_bytes")?.unwrap_or(u64::MAX);
            b.memory_failcnt = files::read_u64(d, "memory.failcnt")?;
            let oom = files::read_opt(d, "memory.oom_control")?.unwrap_or_default();
            b.oom_kills = parse_flat_keyed(&oom).get("oom_kill").copied().unwrap_or(0);
            s.memory_stat =
                parse_flat_keyed(&files::read_opt(d, "memory.stat")?.unwrap_or_default());
            s.memory_cache = s.memory_stat.get("total_cache").copied().unwrap_or(0);
            s.memory_rss = s.memory_stat.get("total_rss").copied().unwrap_or(0);
            let memsw = files::read_u64(d, "memory.memsw.usage_in_bytes")?;
            s.swap_usage = memsw.saturating_sub(s.base.memory_usage);
        }
        if let Some(d) = self.path("cpuacct") {
            let b = &mut s.base;
            b.cpu_usage_total_ns = files::read_u64(d, "cpuacct.usage")?;
            let stat = parse_flat_keyed(&files::read_opt(d, "cpuacct.stat")?.unwrap_or_default());
            let tick = ns_per_tick();
            b.cpu_usage_user_ns = stat.get("user").copied().unwrap_or(0).saturating_mul(tick);
            b.cpu_usage_kernel_ns = stat
                .get("system")
                .copied()
                .unwrap_or(0)
                .saturating_mul(tick);
            s.cpu_usage_percpu_ns =
                parse_numbers(&files::read_opt(d, "cpuacct.usage_percpu")?.unwrap_or_default());
        }
        if let Some(d) = self.path("cpu") {
            let stat = parse_flat_keyed(&files::read_opt(d, "cpu.stat")?.unwrap_or_default());
            s.base.cpu_throttled_periods = stat.get("nr_throttled").copied().unwrap_or(0);
            s.base.cpu_throttled_time_ns = stat.get("throttled_time").copied().unwrap_or(0);
            s.cpu_periods = stat.get("nr_periods").copied().unwrap_or(0);
        }
        if let Some(d) = self.path("pids") {
            s.base.pids_current = files::read_u64(d, "pids.current")?;
            s.base.pids_limit = files::read_u64_opt(d, "pids.max")?.unwrap_or(u64::MAX);
        }
        if let Some(d) = self.path("blkio") {
            let text = match files::read_opt(d, "blkio.throttle.io_service_bytes_recursive")? {
                Some(t) => t,
                None => files::read_opt(d, "blkio.throttle.io_service_bytes")?.unwrap_or_default(),
            };
            (s.base.blkio_read_bytes, s.base.blkio_write_bytes) = parse_blkio_bytes(&text);
        }
        if let Some(d) = self.path("hugetlb") {
            s.hugetlb_usage = hugetlb_usage(d, ".usage_in_bytes")?;
        }
        Ok(s)
    }
}

/// An `rdma.max` line: `<device> hca_handle=<n> hca_object=<n>` (the limits given).
pub(super) fn rdma_line(device: &str, l: &LinuxRdma) -> String {
    let mut line = device.to_string();
    if let Some(h) = l.hca_handles() {
        line.push_str(&format!(" hca_handle={h}"));
    }
    if let Some(o) = l.hca_objects() {
        line.push_str(&format!(" hca_object={o}"));
    }
    line
}

impl CgroupManager for V1Manager {
    fn join_sub(&self, pid: i32, sub: &super::SubCgroups) -> Result<(), CgroupError> {
        if let Some(c) = sub
            .keys()
            .find(|c| !c.is_empty() && !self.dirs.contains_key(*c))
        {
            return Err(CgroupError::UnknownController(c.clone()));
        }
        let all = sub.get("");
        // One write per hierarchy: co-mounted controllers share a directory.
        let mut done: Vec<PathBuf> = Vec::new();
        for (c, dir) in &self.dirs {
            let target = match sub.get(c).or(all) {
                Some(rel) => dir.join(rel),
                None => dir.clone(),
            };
            if done.contains(&target) {
                continue;
            }
            super::join_pid(&target, pid)?;
            done.push(target);
        }
        if let Some(u) = &self.unified {
            super::join_pid(&all.map_or_else(|| u.clone(), |rel| u.join(rel)), pid)?;
        }
        Ok(())
    }

    fn join_dirs(&self) -> super::JoinDirs {
        let mut v1: Vec<PathBuf> = Vec::new();
        for d in self.dirs.values() {
            if !v1.contains(d) {
                v1.push(d.clone());
            }
        }
        super::JoinDirs {
            v1,
            v2: self.unified.clone(),
        }
    }

    fn apply(&self, pid: i32) -> Result<(), CgroupError> {
        for dir in self.all_dirs() {
            files::mkdir_all(dir)?;
        }
        self.init_cpuset()?;
        if pid > 0 {
            for dir in self.all_dirs() {
                files::write(dir, "cgroup.procs", &pid.to_string())?;
            }
        }
        Ok(())
    }

    fn set(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(CgroupError::InvalidResource(
                "unified resources need cgroup v2; this host uses v1 controllers".into(),
            ));
        }
        if let Some(c) = r.cpu() {
            self.set_cpu(c)?;
        }
        if let Some(d) = r.devices() {
            self.set_devices(d)?;
        }
        if let Some(m) = r.memory() {
            self.set_memory(m)?;
        }
        if let Some(p) = r.pids() {
            files::write(self.dir("pids")?, "pids.max", &pids_max(p.limit()))?;
        }
        if let Some(b) = r.block_io() {
            self.set_blkio(b)?;
        }
        for h in r.hugepage_limits().iter().flatten() {
            let file = format!("hugetlb.{}.limit_in_bytes", h.page_size());
            files::write(self.dir("hugetlb")?, &file, &h.limit().to_string())?;
        }
        if let Some(n) = r.network() {
            if let Some(id) = n.class_id() {
                files::write(self.dir("net_cls")?, "net_cls.classid", &id.to_string())?;
            }
            for p in n.priorities().iter().flatten() {
                let line = format!("{} {}", p.name(), p.priority());
                files::write(self.dir("net_prio")?, "net_prio.ifpriomap", &line)?;
            }
        }
        for (dev, l) in r.rdma().iter().flatten() {
            files::write(self.dir("rdma")?, "rdma.max", &rdma_line(dev, l))?;
        }
        Ok(())
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        self.set_freezer("FROZEN")
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        self.set_freezer("THAWED")
    }

    fn freezer_state(&self) -> Result<FreezerState, CgroupError> {
        // FREEZING (not yet complete) reads as Thawed: only a complete freeze is Frozen.
        match files::read(self.dir("freezer")?, "freezer.state")?.trim() {
            "FROZEN" => Ok(FreezerState::Frozen),
            _ => Ok(FreezerState::Thawed),
        }
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        self.collect_stats().map(|s| s.base)
    }

    fn detailed_stats(&self) -> Result<DetailedStats, CgroupError> {
        self.collect_stats()
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let dir = ["pids", "freezer", "memory", "devices", "cpu", "cpuacct"]
            .iter()
            .find_map(|c| self.path(c))
            .or_else(|| self.all_dirs().first().copied());
        let mut pids = Vec::new();
        if let Some(dir) = dir {
            files::pids_recursive(dir, &mut pids)?;
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        // Try every hierarchy; report the first failure.
        let dirs = self.all_dirs();
        if dirs.iter().any(|d| self.mounts.values().any(|m| m == d)) {
            return Err(CgroupError::InvalidPath(
                "refusing to remove a cgroup root".into(),
            ));
        }
        let mut first_err = None;
        for dir in dirs {
            if let Err(e) = files::remove_tree(dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(point: &str, root: &str) -> CgroupMount {
        CgroupMount {
            mount_point: point.into(),
            root: root.into(),
        }
    }

    #[test]
    fn relative_paths_resolve_per_hierarchy_below_the_own_cgroup() {
        let mut controllers = BTreeMap::new();
        controllers.insert("memory".to_string(), mount("/sys/fs/cgroup/memory", "/"));
        controllers.insert("cpu".to_string(), mount("/sys/fs/cgroup/cpu", "/ns"));
        let unified = mount("/sys/fs/cgroup/unified", "/");
        let own = OwnCgroups::parse("4:memory:/process_api/x\n1:cpu:/ns/a\n0::/u\n");
        let path = CgroupPath::parse(Path::new("ctr")).unwrap();
        let m = V1Manager::from_layout(&controllers, Some(&unified), &own, &path);
        assert_eq!(
            m.path("memory").unwrap(),
            Path::new("/sys/fs/cgroup/memory/process_api/x/ctr")
        );
        // The cpu hierarchy is mounted at /ns: the own path is relative to that.
        assert_eq!(
            m.path("cpu").unwrap(),
            Path::new("/sys/fs/cgroup/cpu/a/ctr")
        );
        assert_eq!(
            m.unified_path().unwrap(),
            Path::new("/sys/fs/cgroup/unified/u/ctr")
        );

        let path = CgroupPath::parse(Path::new("/wharf/ctr")).unwrap();
        let m = V1Manager::from_layout(&controllers, None, &own, &path);
        assert_eq!(
            m.path("memory").unwrap(),
            Path::new("/sys/fs/cgroup/memory/wharf/ctr")
        );
        assert_eq!(m.unified_path(), None);
    }

    #[test]
    fn destroy_refuses_a_hierarchy_root() {
        let mut mounts = BTreeMap::new();
        mounts.insert("memory".to_string(), PathBuf::from("/nonexistent/memory"));
        let m = V1Manager::with_mounts(mounts, Path::new("/"));
        assert!(matches!(m.destroy(), Err(CgroupError::InvalidPath(_))));
    }

    #[test]
    fn rdma_lines_list_the_limits_given() {
        let l: LinuxRdma = serde_json::from_str(r#"{"hcaHandles": 3}"#).unwrap();
        assert_eq!(rdma_line("mlx5_0", &l), "mlx5_0 hca_handle=3");
    }
}
