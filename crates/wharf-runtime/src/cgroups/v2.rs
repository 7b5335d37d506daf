//! cgroup v2 (the unified hierarchy).

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::convert::{
    blkio_weight_to_io_weight, cpu_max, cpu_shares_to_weight, memory_swap_to_v2, pids_max, v2_limit,
};
use super::layout::{relative_to_mount, CgroupMount, OwnCgroups};
use super::stats::{parse_flat_keyed, parse_io_stat, DetailedStats};
use super::{
    devices, devices_bpf, files, CgroupError, CgroupManager, CgroupPath, FreezerState, Stats,
};

/// How long `freeze`/`thaw` wait for the kernel by default.
pub const DEFAULT_FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

/// One container's cgroup in a cgroup2 hierarchy.
#[derive(Debug, Clone)]
pub struct V2Manager {
    root: PathBuf,
    dir: PathBuf,
    freeze_timeout: Duration,
}

impl V2Manager {
    /// The cgroup `path` (relative to the hierarchy, a leading `/` is ignored, `..` dropped)
    /// below the cgroup2 mount `root` — e.g. a temporary directory laid out like cgroupfs.
    pub fn with_root(root: &Path, path: &Path) -> V2Manager {
        let rel: PathBuf = path
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        V2Manager {
            root: root.to_path_buf(),
            dir: root.join(rel),
            freeze_timeout: DEFAULT_FREEZE_TIMEOUT,
        }
    }

    /// The manager for `path` on the host's cgroup2 mount, given this process's cgroups.
    pub fn from_layout(mount: &CgroupMount, own: &OwnCgroups, path: &CgroupPath) -> V2Manager {
        let own_dir = own
            .unified
            .as_deref()
            .map(|p| relative_to_mount(mount, p))
            .unwrap_or_default();
        V2Manager::with_root(&mount.mount_point, &path.below_root(&own_dir))
    }

    /// How long `freeze`/`thaw` wait for `cgroup.events` to report the new state.
    pub fn with_freeze_timeout(mut self, timeout: Duration) -> V2Manager {
        self.freeze_timeout = timeout;
        self
    }

    /// The cgroup directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Enables, in `dir`'s `cgroup.subtree_control`, every controller it has. Failures are
    /// ignored controller by controller (as runc does): e.g. a threaded cgroup refuses some.
    fn enable_controllers(dir: &Path) -> Result<(), CgroupError> {
        let Some(available) = files::read_opt(dir, "cgroup.controllers")? else {
            return Ok(());
        };
        let enabled = files::read_opt(dir, "cgroup.subtree_control")?.unwrap_or_default();
        let missing: Vec<String> = available
            .split_whitespace()
            .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
            .map(|c| format!("+{c}"))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if files::write(dir, "cgroup.subtree_control", &missing.join(" ")).is_err() {
            for c in &missing {
                if let Err(e) = files::write(dir, "cgroup.subtree_control", c) {
                    tracing::debug!("cgroup: {e}");
                }
            }
        }
        Ok(())
    }

    fn set_memory(&self, m: &LinuxMemory) -> Result<(), CgroupError> {
        if let Some(swap) = memory_swap_to_v2(m.swap(), m.limit())? {
            // Without swap accounting there is no memory.swap.max: fine unless a limit is asked.
            if self.dir.join("memory.swap.max").exists() {
                files::write(&self.dir, "memory.swap.max", &v2_limit(swap))?;
            } else if swap != -1 {
                return Err(CgroupError::InvalidResource(
                    "memory.swap: swap accounting is not available (no memory.swap.max)".into(),
                ));
            }
        }
        if let Some(limit) = m.limit().filter(|l| *l != 0) {
            files::write(&self.dir, "memory.max", &v2_limit(limit))?;
        }
        if let Some(low) = m.reservation().filter(|l| *l != 0) {
            files::write(&self.dir, "memory.low", &v2_limit(low))?;
        }
        if m.swappiness().is_some() {
            tracing::warn!("cgroup v2 has no per-cgroup swappiness; ignoring memory.swappiness");
        }
        if m.disable_oom_killer() == Some(true) {
            tracing::warn!("cgroup v2 cannot disable the OOM killer; ignoring disableOOMKiller");
        }
        Ok(())
    }

    fn set_cpu(&self, c: &LinuxCpu) -> Result<(), CgroupError> {
        if c.realtime_runtime().unwrap_or(0) != 0 || c.realtime_period().unwrap_or(0) != 0 {
            return Err(CgroupError::InvalidResource(
                "cpu.realtimeRuntime/realtimePeriod are not supported on cgroup v2".into(),
            ));
        }
        if let Some(shares) = c.shares().filter(|s| *s != 0) {
            files::write(
                &self.dir,
                "cpu.weight",
                &cpu_shares_to_weight(shares).to_string(),
            )?;
        }
        if let Some(max) = cpu_max(c.quota(), c.period()) {
            files::write(&self.dir, "cpu.max", &max)?;
        }
        if let Some(burst) = c.burst() {
            files::write(&self.dir, "cpu.max.burst", &burst.to_string())?;
        }
        if let Some(idle) = c.idle() {
            files::write(&self.dir, "cpu.idle", &idle.to_string())?;
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            files::write(&self.dir, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            files::write(&self.dir, "cpuset.mems", mems)?;
        }
        Ok(())
    }

    fn set_io(&self, b: &LinuxBlockIo) -> Result<(), CgroupError> {
        // With BFQ the v1 range is native (as runc); otherwise io.weight's 1..=10000.
        let bfq = self.dir.join("io.bfq.weight").exists();
        let (file, conv): (&str, fn(u64) -> u64) = if bfq {
            ("io.bfq.weight", |w| w)
        } else {
            ("io.weight", blkio_weight_to_io_weight)
        };
        if let Some(w) = b.weight().filter(|w| *w != 0) {
            files::write(&self.dir, file, &conv(u64::from(w)).to_string())?;
        }
        for wd in b.weight_device().iter().flatten() {
            if let Some(w) = wd.weight().filter(|w| *w != 0) {
                let line = format!("{}:{} {}", wd.major(), wd.minor(), conv(u64::from(w)));
                files::write(&self.dir, file, &line)?;
            }
        }
        // io.max: one line per device with every limit given for it ("max" for a rate of 0,
        // which removes the limit as in v1).
        let mut devices: Vec<((i64, i64), Vec<String>)> = Vec::new();
        let throttles = [
            ("rbps", b.throttle_read_bps_device()),
            ("wbps", b.throttle_write_bps_device()),
            ("riops", b.throttle_read_iops_device()),
            ("wiops", b.throttle_write_iops_device()),
        ];
        for (key, list) in throttles {
            for td in list.iter().flatten() {
                let rate = if td.rate() == 0 {
                    "max".to_string()
                } else {
                    td.rate().to_string()
                };
                let dev = (td.major(), td.minor());
                let entry = format!("{key}={rate}");
                match devices.iter_mut().find(|(d, _)| *d == dev) {
                    Some((_, e)) => e.push(entry),
                    None => devices.push((dev, vec![entry])),
                }
            }
        }
        for ((major, minor), limits) in devices {
            files::write(
                &self.dir,
                "io.max",
                &format!("{major}:{minor} {}", limits.join(" ")),
            )?;
        }
        Ok(())
    }

    fn set_unified(
        &self,
        unified: &std::collections::HashMap<String, String>,
    ) -> Result<(), CgroupError> {
        let mut keys: Vec<&String> = unified.keys().collect();
        keys.sort();
        for key in keys {
            if key.contains('/') || key.starts_with('.') || key.is_empty() {
                return Err(CgroupError::InvalidResource(format!(
                    "unified: invalid key {key:?}"
                )));
            }
            files::write(&self.dir, key, &unified[key])?;
        }
        Ok(())
    }

    fn set_freeze(&self, freeze: bool) -> Result<(), CgroupError> {
        let want = if freeze { "1" } else { "0" };
        files::write(&self.dir, "cgroup.freeze", want)?;
        let done = files::poll_until(self.freeze_timeout, || Ok(self.events_frozen()? == freeze))?;
        if done {
            return Ok(());
        }
        if freeze {
            // Do not leave it half frozen.
            let _ = files::write(&self.dir, "cgroup.freeze", "0");
        }
        Err(CgroupError::FreezerTimeout {
            path: self.dir.clone(),
            what: if freeze { "freeze" } else { "thaw" },
            timeout: self.freeze_timeout,
        })
    }

    /// `frozen 1` in `cgroup.events`.
    fn events_frozen(&self) -> Result<bool, CgroupError> {
        let events = files::read(&self.dir, "cgroup.events")?;
        Ok(parse_flat_keyed(&events).get("frozen") == Some(&1))
    }

    fn collect_stats(&self) -> Result<DetailedStats, CgroupError> {
        let d = &self.dir;
        let mut s = DetailedStats::default();
        let b = &mut s.base;
        b.memory_usage = files::read_u64(d, "memory.current")?;
        b.memory_max_usage = files::read_u64(d, "memory.peak")?;
        b.memory_limit = files::read_u64_opt(d, "memory.max")?.unwrap_or(u64::MAX);
        let events = parse_flat_keyed(&files::read_opt(d, "memory.events")?.unwrap_or_default());
        b.memory_failcnt = events.get("max").copied().unwrap_or(0);
        b.oom_kills = events.get("oom_kill").copied().unwrap_or(0);
        let cpu = parse_flat_keyed(&files::read_opt(d, "cpu.stat")?.unwrap_or_default());
        let us = |k: &str| cpu.get(k).copied().unwrap_or(0).saturating_mul(1000);
        b.cpu_usage_total_ns = us("usage_usec");
        b.cpu_usage_user_ns = us("user_usec");
        b.cpu_usage_kernel_ns = us("system_usec");
        b.cpu_throttled_periods = cpu.get("nr_throttled").copied().unwrap_or(0);
        b.cpu_throttled_time_ns = us("throttled_usec");
        b.pids_current = files::read_u64(d, "pids.current")?;
        b.pids_limit = files::read_u64_opt(d, "pids.max")?.unwrap_or(u64::MAX);
        let (r, w) = parse_io_stat(&files::read_opt(d, "io.stat")?.unwrap_or_default());
        b.blkio_read_bytes = r;
        b.blkio_write_bytes = w;
        s.cpu_periods = cpu.get("nr_periods").copied().unwrap_or(0);
        s.memory_stat = parse_flat_keyed(&files::read_opt(d, "memory.stat")?.unwrap_or_default());
        s.memory_cache = s.memory_stat.get("file").copied().unwrap_or(0);
        s.memory_rss = s.memory_stat.get("anon").copied().unwrap_or(0);
        s.swap_usage = files::read_u64(d, "memory.swap.current")?;
        s.hugetlb_usage = hugetlb_usage(d, ".current")?;
        Ok(s)
    }
}

/// `hugetlb.<size><suffix>` files of `dir`, by page size.
pub(super) fn hugetlb_usage(
    dir: &Path,
    suffix: &str,
) -> Result<std::collections::BTreeMap<String, u64>, CgroupError> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(size) = name
            .strip_prefix("hugetlb.")
            .and_then(|n| n.strip_suffix(suffix))
        {
            if !size.contains('.') {
                out.insert(size.to_string(), files::read_u64(dir, &name)?);
            }
        }
    }
    Ok(out)
}

impl CgroupManager for V2Manager {
    fn join_dirs(&self) -> super::JoinDirs {
        super::JoinDirs {
            v1: Vec::new(),
            v2: Some(self.dir.clone()),
        }
    }

    fn apply(&self, pid: i32) -> Result<(), CgroupError> {
        let rel = self.dir.strip_prefix(&self.root).unwrap_or(Path::new(""));
        let mut current = self.root.clone();
        for comp in rel.components() {
            // Every ancestor hands its controllers down to the next level.
            V2Manager::enable_controllers(&current)?;
            current.push(comp);
            files::mkdir_all(&current)?;
        }
        if pid > 0 {
            files::write(&self.dir, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    fn set(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        if let Some(c) = r.cpu() {
            self.set_cpu(c)?;
        }
        if let Some(m) = r.memory() {
            self.set_memory(m)?;
        }
        if let Some(p) = r.pids() {
            files::write(&self.dir, "pids.max", &pids_max(p.limit()))?;
        }
        if let Some(b) = r.block_io() {
            self.set_io(b)?;
        }
        for h in r.hugepage_limits().iter().flatten() {
            let file = format!("hugetlb.{}.max", h.page_size());
            files::write(&self.dir, &file, &v2_limit(h.limit()))?;
        }
        for (dev, l) in r.rdma().iter().flatten() {
            files::write(&self.dir, "rdma.max", &super::v1::rdma_line(dev, l))?;
        }
        if let Some(n) = r.network() {
            if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
                return Err(CgroupError::InvalidResource(
                    "network classID/priorities need the v1 net_cls/net_prio controllers".into(),
                ));
            }
        }
        if let Some(u) = r.unified() {
            self.set_unified(u)?;
        }
        if let Some(d) = r.devices() {
            let eff = devices::effective(&devices::normalize(d)?);
            devices_bpf::apply(&self.dir, &eff)?;
        }
        Ok(())
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        self.set_freeze(true)
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        self.set_freeze(false)
    }

    fn freezer_state(&self) -> Result<FreezerState, CgroupError> {
        // The root has no cgroup.freeze: never frozen.
        match files::read_opt(&self.dir, "cgroup.freeze")?
            .as_deref()
            .map(str::trim)
        {
            Some("1") if self.events_frozen()? => Ok(FreezerState::Frozen),
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
        let mut pids = Vec::new();
        files::pids_recursive(&self.dir, &mut pids)?;
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        if self.dir == self.root {
            return Err(CgroupError::InvalidPath(
                "refusing to remove the cgroup root".into(),
            ));
        }
        files::remove_tree(&self.dir)
    }
}
