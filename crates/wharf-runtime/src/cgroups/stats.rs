//! Statistics beyond [`Stats`] and the parsers of the cgroup stat file formats.

use std::collections::BTreeMap;

use super::Stats;

/// [`Stats`] plus details that only some callers want.
///
/// (Kept apart from [`Stats`] because other crates build `Stats` with struct literals, which
/// new fields would break.)
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DetailedStats {
    /// The summary, as `stats()` returns it.
    pub base: Stats,
    /// Page cache (v1 `total_cache`, v2 `file`).
    pub memory_cache: u64,
    /// Anonymous memory (v1 `total_rss`, v2 `anon`).
    pub memory_rss: u64,
    /// Swap in use (v1 memsw usage − usage; v2 `memory.swap.current`).
    pub swap_usage: u64,
    /// Every counter of `memory.stat`.
    pub memory_stat: BTreeMap<String, u64>,
    /// Per-CPU usage in ns (v1 `cpuacct.usage_percpu`; empty on v2).
    pub cpu_usage_percpu_ns: Vec<u64>,
    /// Enforcement periods (`nr_periods` of `cpu.stat`).
    pub cpu_periods: u64,
    /// Hugepage usage by page size (e.g. `2MB`).
    pub hugetlb_usage: BTreeMap<String, u64>,
}

/// Parses a flat keyed file (`key value` per line, as `memory.stat`, `cpu.stat`,
/// `memory.events`, `cgroup.events`, v1 `memory.oom_control`). Non-numeric values are skipped.
pub fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Sums the `Read` and `Write` rows of a v1 `blkio.*io_service_bytes*` file
/// (`maj:min Op value` lines plus a `Total value` line).
pub fn parse_blkio_bytes(text: &str) -> (u64, u64) {
    let (mut read, mut write) = (0u64, 0u64);
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [_dev, op, value] = f[..] {
            let v: u64 = value.parse().unwrap_or(0);
            match op {
                "Read" => read = read.saturating_add(v),
                "Write" => write = write.saturating_add(v),
                _ => {}
            }
        }
    }
    (read, write)
}

/// Sums `rbytes` and `wbytes` over the devices of a v2 `io.stat`
/// (`maj:min rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=..` lines).
pub fn parse_io_stat(text: &str) -> (u64, u64) {
    let (mut read, mut write) = (0u64, 0u64);
    for line in text.lines() {
        for kv in line.split_whitespace().skip(1) {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let v: u64 = v.parse().unwrap_or(0);
            match k {
                "rbytes" => read = read.saturating_add(v),
                "wbytes" => write = write.saturating_add(v),
                _ => {}
            }
        }
    }
    (read, write)
}

/// Space-separated numbers (v1 `cpuacct.usage_percpu`).
pub fn parse_numbers(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_files_parse() {
        let m = parse_flat_keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\nbad x\n");
        assert_eq!(m["oom_kill"], 3);
        assert!(!m.contains_key("bad"));
    }

    #[test]
    fn blkio_rows_are_summed_per_op() {
        let text = "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 4608\n8:16 Read 100\n8:16 Write 0\nTotal 4708\n";
        assert_eq!(parse_blkio_bytes(text), (4196, 512));
    }

    #[test]
    fn io_stat_is_summed_over_devices() {
        let text = "8:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n\
                    253:0 rbytes=10 wbytes=20 rios=1 wios=1 dbytes=0 dios=0\n";
        assert_eq!(parse_io_stat(text), (1034, 2068));
    }

    #[test]
    fn percpu_numbers_parse() {
        assert_eq!(parse_numbers("10 20 \n"), [10, 20]);
    }
}
