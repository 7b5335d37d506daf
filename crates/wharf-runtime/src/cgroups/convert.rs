//! Conversions between OCI (cgroup v1 flavoured) values and cgroup v2 values, as runc does.

use super::CgroupError;

/// v1 `cpu.shares` (2..=262144) → v2 `cpu.weight` (1..=10000): `1 + ((shares - 2) * 9999) / 262142`.
/// 0 (unset) stays 0.
pub fn cpu_shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262142
}

/// v1 `blkio.weight` (10..=1000) → v2 `io.weight` (1..=10000): `1 + (weight - 10) * 9999 / 990`.
/// 0 (unset) stays 0.
pub fn blkio_weight_to_io_weight(weight: u64) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (weight.saturating_sub(10) * 9999) / 990
}

/// OCI `memory.swap` (memory + swap, v1 style) → v2 `memory.swap.max` (swap alone).
/// `Ok(None)`: leave the file alone; `Ok(Some(-1))`: `max`.
pub fn memory_swap_to_v2(
    swap: Option<i64>,
    limit: Option<i64>,
) -> Result<Option<i64>, CgroupError> {
    let (swap, limit) = (swap.unwrap_or(0), limit.unwrap_or(0));
    // Memory unlimited and swap unset means both unlimited (cgroup v1 compatibility).
    if limit == -1 && swap == 0 {
        return Ok(Some(-1));
    }
    match swap {
        0 => return Ok(None),
        -1 => return Ok(Some(-1)),
        _ => {}
    }
    if limit == 0 || limit == -1 {
        return Err(CgroupError::InvalidResource(
            "memory.swap: cannot set a swap limit without a memory limit".into(),
        ));
    }
    if limit < 0 || swap < 0 {
        return Err(CgroupError::InvalidResource(format!(
            "memory: invalid limit {limit} or swap {swap}"
        )));
    }
    if swap < limit {
        return Err(CgroupError::InvalidResource(format!(
            "memory.swap ({swap}) must be >= memory.limit ({limit}): it is memory + swap"
        )));
    }
    Ok(Some(swap - limit))
}

/// A v2 limit: negative → `max`.
pub fn v2_limit(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

/// `pids.max`: a limit <= 0 means no limit.
pub fn pids_max(limit: i64) -> String {
    if limit <= 0 {
        "max".to_string()
    } else {
        limit.to_string()
    }
}

/// v2 `cpu.max`: `"<quota|max> [period]"`; `None` when neither is set.
pub fn cpu_max(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    let (quota, period) = (quota.unwrap_or(0), period.unwrap_or(0));
    if quota == 0 && period == 0 {
        return None;
    }
    let mut s = if quota > 0 {
        quota.to_string()
    } else {
        "max".to_string()
    };
    if period != 0 {
        s.push_str(&format!(" {period}"));
    }
    Some(s)
}

/// Nanoseconds per USER_HZ tick (v1 `cpuacct.stat` counts in ticks).
pub fn ns_per_tick() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    1_000_000_000 / if hz > 0 { hz as u64 } else { 100 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_to_weight_matches_runc() {
        assert_eq!(cpu_shares_to_weight(0), 0);
        assert_eq!(cpu_shares_to_weight(2), 1);
        assert_eq!(cpu_shares_to_weight(1024), 39);
        assert_eq!(cpu_shares_to_weight(262144), 10000);
    }

    #[test]
    fn blkio_weight_to_io_weight_matches_runc() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10000);
    }

    #[test]
    fn swap_is_converted_to_swap_only() {
        assert_eq!(memory_swap_to_v2(Some(300), Some(100)).unwrap(), Some(200));
        assert_eq!(memory_swap_to_v2(Some(100), Some(100)).unwrap(), Some(0));
        assert_eq!(memory_swap_to_v2(Some(-1), Some(100)).unwrap(), Some(-1));
        assert_eq!(memory_swap_to_v2(None, Some(100)).unwrap(), None);
        assert_eq!(memory_swap_to_v2(None, Some(-1)).unwrap(), Some(-1));
        assert!(memory_swap_to_v2(Some(50), Some(100)).is_err());
        assert!(memory_swap_to_v2(Some(50), None).is_err());
    }

    #[test]
    fn cpu_max_formats_quota_and_period() {
        assert_eq!(cpu_max(None, None), None);
        assert_eq!(cpu_max(Some(50000), Some(100000)).unwrap(), "50000 100000");
        assert_eq!(cpu_max(Some(-1), Some(100000)).unwrap(), "max 100000");
        assert_eq!(cpu_max(Some(20000), None).unwrap(), "20000");
        assert_eq!(cpu_max(Some(-1), None).unwrap(), "max");
    }

    #[test]
    fn limits_format_max() {
        assert_eq!(pids_max(0), "max");
        assert_eq!(pids_max(-1), "max");
        assert_eq!(pids_max(32), "32");
        assert_eq!(v2_limit(-1), "max");
        assert_eq!(v2_limit(4096), "4096");
    }

    #[test]
    fn ticks_are_ten_ms_at_100_hz() {
        // USER_HZ is 100 on every Linux architecture wharf builds for.
        assert_eq!(ns_per_tick(), 10_000_000);
    }
}
