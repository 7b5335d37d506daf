//! User-namespace id mappings (`--userns-remap`): container ids ↔ host ids, as in
//! `/proc/<pid>/uid_map`. With a mapping, a layer store extracts files owned by their host
//! ids (the container's root owns what the image's root owns), as dockerd does.

/// One contiguous range: container ids `container..container+size` are host ids
/// `host..host+size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdRange {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// The uid and gid mappings of a user namespace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdMap {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
}

fn to_host(ranges: &[IdRange], id: u32) -> Option<u32> {
    ranges.iter().find_map(|r| {
        id.checked_sub(r.container)
            .filter(|off| *off < r.size)
            .map(|off| r.host + off)
    })
}

fn to_container(ranges: &[IdRange], id: u32) -> Option<u32> {
    ranges.iter().find_map(|r| {
        id.checked_sub(r.host)
            .filter(|off| *off < r.size)
            .map(|off| r.container + off)
    })
}

/// Host ranges `(start, size)` given container ids from 0 upwards, in order of their start
/// (as dockerd builds its mappings from several subordinate ranges).
fn contiguous(host: &[(u32, u32)]) -> Vec<IdRange> {
    let mut sorted = host.to_vec();
    sorted.sort();
    let mut next = 0u32;
    sorted
        .into_iter()
        .map(|(start, size)| {
            let r = IdRange {
                container: next,
                host: start,
                size,
            };
            next = next.saturating_add(size);
            r
        })
        .collect()
}

impl IdMap {
    /// The mapping of subordinate ranges `(start, count)`: container id 0 is the lowest start.
    pub fn from_ranges(uids: &[(u32, u32)], gids: &[(u32, u32)]) -> IdMap {
        IdMap {
            uids: contiguous(uids),
            gids: contiguous(gids),
        }
    }

    /// The host uid of container uid `id`, if mapped.
    pub fn host_uid(&self, id: u32) -> Option<u32> {
        to_host(&self.uids, id)
    }

    /// The host gid of container gid `id`, if mapped.
    pub fn host_gid(&self, id: u32) -> Option<u32> {
        to_host(&self.gids, id)
    }

    /// The container uid of host uid `id`, if mapped.
    pub fn container_uid(&self, id: u32) -> Option<u32> {
        to_container(&self.uids, id)
    }

    /// The container gid of host gid `id`, if mapped.
    pub fn container_gid(&self, id: u32) -> Option<u32> {
        to_container(&self.gids, id)
    }

    /// The host uid and gid of the container's root (the "remapped root").
    pub fn root(&self) -> (u32, u32) {
        (
            self.host_uid(0).unwrap_or(u32::MAX),
            self.host_gid(0).unwrap_or(u32::MAX),
        )
    }

    /// The host ids of a file the container sees owned by `(uid, gid)`; an error naming the
    /// id that has no host id (as dockerd: "Container ID ... cannot be mapped").
    pub fn to_host(&self, uid: u32, gid: u32) -> Result<(u32, u32), String> {
        let u = self
            .host_uid(uid)
            .ok_or_else(|| format!("container ID {uid} cannot be mapped to a host ID"))?;
        let g = self
            .host_gid(gid)
            .ok_or_else(|| format!("container ID {gid} cannot be mapped to a host ID"))?;
        Ok((u, g))
    }

    /// The ids the container sees for a file owned on the host by `(uid, gid)`: unmapped ids
    /// become the overflow id 65534, as the kernel shows them.
    pub fn to_container(&self, uid: u32, gid: u32) -> (u32, u32) {
        (
            self.container_uid(uid).unwrap_or(65534),
            self.container_gid(gid).unwrap_or(65534),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_map_both_ways() {
        let m = IdMap::from_ranges(&[(300000, 10), (100000, 65536)], &[(200000, 65536)]);
        assert_eq!(m.uids[0].host, 100000);
        assert_eq!(m.uids[1].container, 65536);
        assert_eq!(m.root(), (100000, 200000));
        assert_eq!(m.host_uid(65535), Some(165535));
        assert_eq!(m.host_uid(65536), Some(300000));
        assert_eq!(m.host_uid(65546), None);
        assert_eq!(m.container_uid(300005), Some(65541));
        assert_eq!(m.container_uid(0), None);
        assert_eq!(m.to_host(0, 5).unwrap(), (100000, 200005));
        assert!(m.to_host(0, 70000).unwrap_err().contains("70000"));
        assert_eq!(m.to_container(0, 200001), (65534, 1));
    }
}
