//! Stats in the shape of runc's `events --stats` data (what Docker-era tools read).

use crate::cgroups::DetailedStats;
use serde_json::{json, Value};

/// runc reports an unlimited limit as 0 in some fields and as the raw value in others;
/// keep the raw value but map "max" (u64::MAX) to 0 where runc does.
fn limit(v: u64) -> u64 {
    if v == u64::MAX {
        0
    } else {
        v
    }
}

/// The `data` object of one `{"type":"stats"}` event.
pub fn runc_data(d: &DetailedStats) -> Value {
    let s = &d.base;
    json!({
        "cpu": {
            "usage": {
                "total": s.cpu_usage_total_ns,
                "percpu": d.cpu_usage_percpu_ns,
                "kernel": s.cpu_usage_kernel_ns,
                "user": s.cpu_usage_user_ns,
            },
            "throttling": {
                "periods": d.cpu_periods,
                "throttledPeriods": s.cpu_throttled_periods,
                "throttledTime": s.cpu_throttled_time_ns,
            }
        },
        "memory": {
            "cache": d.memory_cache,
            "usage": {
                "usage": s.memory_usage,
                "max": s.memory_max_usage,
                "limit": s.memory_limit,
                "failcnt": s.memory_failcnt,
            },
            "swap": {"usage": d.swap_usage},
            // No OOM count here (runc 1.1 has none): callers look for "oom" in the lines
            // (runc's events.bats greps for it) and must find it only in `{"type":"oom"}`.
            "raw": d.memory_stat,
        },
        "pids": {"current": s.pids_current, "limit": limit(s.pids_limit)},
        "blkio": {
            "ioServiceBytesRecursive": [
                {"major": 0, "minor": 0, "op": "Read", "value": s.blkio_read_bytes},
                {"major": 0, "minor": 0, "op": "Write", "value": s.blkio_write_bytes},
                {"major": 0, "minor": 0, "op": "Total", "value": s.blkio_read_bytes + s.blkio_write_bytes},
            ]
        },
        "hugetlb": d.hugetlb_usage.iter().map(|(k, v)| (k.clone(), json!({"usage": v}))).collect::<serde_json::Map<_, _>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_shape() {
        let mut d = DetailedStats::default();
        d.base.memory_usage = 5;
        d.base.pids_current = 3;
        d.base.pids_limit = u64::MAX;
        d.cpu_usage_percpu_ns = vec![1, 2];
        let v = runc_data(&d);
        assert_eq!(v["memory"]["usage"]["usage"], 5);
        assert_eq!(v["pids"]["current"], 3);
        assert_eq!(v["pids"]["limit"], 0);
        assert_eq!(v["cpu"]["usage"]["percpu"], json!([1, 2]));
    }
}
