//! The route table: (method, path) → a typed `Route`, with the optional `/vX.Y` prefix.

use crate::error::ApiError;

/// One Engine API endpoint, with its path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Ping,
    /// `POST /auth` (docker login).
    Auth,
    Version,
    Info,
    Events,
    SystemDf,
    /// `POST /build` (the classic builder's protocol).
    Build,
    /// `POST /build/prune`.
    BuildPrune,
    /// `POST /build/context?id=`: wharf's own, the stat listing of a context kept between
    /// builds (`wharf_build::synced`); wharfd answers which entries it needs.
    BuildContext,
    ContainerCreate,
    ContainerList,
    ContainerPrune,
    ContainerInspect(String),
    ContainerStart(String),
    ContainerStop(String),
    ContainerRestart(String),
    ContainerKill(String),
    ContainerWait(String),
    ContainerDelete(String),
    ContainerLogs(String),
    ContainerAttach(String),
    ContainerResize(String),
    ContainerRename(String),
    ContainerTop(String),
    ContainerChanges(String),
    ContainerExport(String),
    ContainerPause(String),
    ContainerUnpause(String),
    ContainerUpdate(String),
    ContainerStats(String),
    ArchiveGet(String),
    ArchivePut(String),
    ArchiveHead(String),
    ExecCreate(String),
    ExecStart(String),
    ExecResize(String),
    ExecInspect(String),
    ImageCreate,
    ImageList,
    ImageLoad,
    ImagePrune,
    ImageGetAll,
    ImageInspect(String),
    ImageTag(String),
    ImageDelete(String),
    ImageHistory(String),
    ImageGet(String),
    ImagePush(String),
    /// `GET /distribution/{name}/json`: the registry's descriptor and platforms of an image.
    DistributionInspect(String),
    Commit,
    VolumeList,
    VolumeCreate,
    VolumePrune,
    VolumeInspect(String),
    VolumeDelete(String),
    NetworkList,
    NetworkCreate,
    NetworkPrune,
    NetworkInspect(String),
    NetworkDelete(String),
    NetworkConnect(String),
    NetworkDisconnect(String),
    /// `POST /swarm/leave`: wharfd is never part of a swarm (answered as dockerd answers
    /// on a node that is not: 503, which clients' `leave_swarm(force=True)` accept).
    SwarmLeave,
}

/// A parsed API version `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    fn parse(s: &str) -> Option<ApiVersion> {
        let (a, b) = s.split_once('.')?;
        Some(ApiVersion(a.parse().ok()?, b.parse().ok()?))
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// Resolves a request to its route and the API version it asked for (ours when unversioned).
/// A path segment with its `%XX` escapes decoded (an invalid escape, or bytes that are not
/// UTF-8 once decoded, are kept as they were).
fn path_decode(seg: &str) -> String {
    if !seg.contains('%') {
        return seg.to_string();
    }
    let b = seg.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| seg.to_string())
}

pub fn route(method: &str, path: &str) -> Result<(ApiVersion, Route), ApiError> {
    let max = ApiVersion::parse(crate::API_VERSION).expect("valid");
    let min = ApiVersion::parse(crate::MIN_API_VERSION).expect("valid");
    let mut rest = path.trim_end_matches('/');
    let mut version = max;
    if let Some(after) = rest.strip_prefix("/v") {
        let (v, tail) = after.split_at(after.find('/').unwrap_or(after.len()));
        if let Some(parsed) = ApiVersion::parse(v) {
            if parsed > max {
                return Err(ApiError::bad_request(format!(
                    "client version {parsed} is too new. Maximum supported API version is {max}"
                )));
            }
            if parsed < min {
                return Err(ApiError::bad_request(format!(
                    "client version {parsed} is too old. Minimum supported API version is {min}, please upgrade your client to a newer version"
                )));
            }
            version = parsed;
            rest = tail;
        }
    }
    let not_found = || ApiError::not_found("page not found");
    // Segments are percent-decoded, as Go's router sees the path (`/networks/test%2001` is
    // network `test 01`); `+` stays itself in a path.
    let decoded: Vec<String> = rest
        .trim_start_matches('/')
        .split('/')
        .map(path_decode)
        .collect();
    let segs: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let id = |i: usize| segs[i].to_string();
    use Route::*;
    let r = match (method, segs.as_slice()) {
        ("GET" | "HEAD", ["_ping"]) => Ping,
        ("POST", ["auth"]) => Auth,
        ("GET", ["version"]) => Version,
        ("GET", ["info"]) => Info,
        ("GET", ["events"]) => Events,
        ("GET", ["system", "df"]) => SystemDf,
        ("POST", ["build"]) => Build,
        ("POST", ["build", "prune"]) => BuildPrune,
        ("POST", ["build", "context"]) => BuildContext,
        ("POST", ["containers", "create"]) => ContainerCreate,
        ("GET", ["containers", "json"]) => ContainerList,
        ("POST", ["containers", "prune"]) => ContainerPrune,
        ("GET", ["containers", _, "json"]) => ContainerInspect(id(1)),
        ("POST", ["containers", _, "start"]) => ContainerStart(id(1)),
        ("POST", ["containers", _, "stop"]) => ContainerStop(id(1)),
        ("POST", ["containers", _, "restart"]) => ContainerRestart(id(1)),
        ("POST", ["containers", _, "kill"]) => ContainerKill(id(1)),
        ("POST", ["containers", _, "wait"]) => ContainerWait(id(1)),
        ("DELETE", ["containers", _]) => ContainerDelete(id(1)),
        ("GET", ["containers", _, "logs"]) => ContainerLogs(id(1)),
        ("POST", ["containers", _, "attach"]) => ContainerAttach(id(1)),
        ("POST", ["containers", _, "resize"]) => ContainerResize(id(1)),
        ("POST", ["containers", _, "rename"]) => ContainerRename(id(1)),
        ("GET", ["containers", _, "top"]) => ContainerTop(id(1)),
        ("GET", ["containers", _, "changes"]) => ContainerChanges(id(1)),
        ("GET", ["containers", _, "export"]) => ContainerExport(id(1)),
        ("POST", ["containers", _, "pause"]) => ContainerPause(id(1)),
        ("POST", ["containers", _, "unpause"]) => ContainerUnpause(id(1)),
        ("POST", ["containers", _, "update"]) => ContainerUpdate(id(1)),
        ("GET", ["containers", _, "stats"]) => ContainerStats(id(1)),
        ("GET", ["containers", _, "archive"]) => ArchiveGet(id(1)),
        ("PUT", ["containers", _, "archive"]) => ArchivePut(id(1)),
        ("HEAD", ["containers", _, "archive"]) => ArchiveHead(id(1)),
        ("POST", ["containers", _, "exec"]) => ExecCreate(id(1)),
        ("POST", ["exec", _, "start"]) => ExecStart(id(1)),
        ("POST", ["exec", _, "resize"]) => ExecResize(id(1)),
        ("GET", ["exec", _, "json"]) => ExecInspect(id(1)),
        ("POST", ["images", "create"]) => ImageCreate,
        ("GET", ["images", "json"]) => ImageList,
        ("POST", ["images", "load"]) => ImageLoad,
        ("POST", ["images", "prune"]) => ImagePrune,
        ("GET", ["images", "get"]) => ImageGetAll,
        ("POST", ["commit"]) => Commit,
        ("GET", ["volumes"]) => VolumeList,
        ("POST", ["volumes", "create"]) => VolumeCreate,
        ("POST", ["volumes", "prune"]) => VolumePrune,
        ("GET", ["volumes", _]) => VolumeInspect(id(1)),
        ("DELETE", ["volumes", _]) => VolumeDelete(id(1)),
        ("GET", ["networks"]) => NetworkList,
        ("POST", ["networks", "create"]) => NetworkCreate,
        ("POST", ["networks", "prune"]) => NetworkPrune,
        ("GET", ["networks", _]) => NetworkInspect(id(1)),
        ("DELETE", ["networks", _]) => NetworkDelete(id(1)),
        ("POST", ["networks", _, "connect"]) => NetworkConnect(id(1)),
        ("POST", ["networks", _, "disconnect"]) => NetworkDisconnect(id(1)),
        ("POST", ["swarm", "leave"]) => SwarmLeave,
        // Image names contain slashes: everything between /images/ and the action.
        ("GET", ["images", name @ .., "json"]) if !name.is_empty() => ImageInspect(name.join("/")),
        ("POST", ["images", name @ .., "tag"]) if !name.is_empty() => ImageTag(name.join("/")),
        ("GET", ["images", name @ .., "history"]) if !name.is_empty() => {
            ImageHistory(name.join("/"))
        }
        ("GET", ["images", name @ .., "get"]) if !name.is_empty() => ImageGet(name.join("/")),
        ("POST", ["images", name @ .., "push"]) if !name.is_empty() => ImagePush(name.join("/")),
        ("GET", ["distribution", name @ .., "json"]) if !name.is_empty() => {
            DistributionInspect(name.join("/"))
        }
        ("DELETE", ["images", name @ ..]) if !name.is_empty() => ImageDelete(name.join("/")),
        _ => return Err(not_found()),
    };
    Ok((version, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_decoded() {
        assert_eq!(
            route("GET", "/v1.41/networks/test%2001").unwrap().1,
            Route::NetworkInspect("test 01".into())
        );
        assert_eq!(
            route("GET", "/images/localhost:5000%2Fa/b+c/json")
                .unwrap()
                .1,
            Route::ImageInspect("localhost:5000/a/b+c".into())
        );
        // Broken escapes are kept as they are.
        assert_eq!(path_decode("a%2"), "a%2");
        assert_eq!(path_decode("%zz%41"), "%zzA");
        assert_eq!(path_decode("%ff"), "%ff");
    }

    #[test]
    fn versioned_and_plain_paths() {
        assert_eq!(route("GET", "/_ping").unwrap().1, Route::Ping);
        assert_eq!(
            route("HEAD", "/v1.50/_ping").unwrap(),
            (ApiVersion(1, 50), Route::Ping)
        );
        assert_eq!(
            route("POST", "/v1.41/containers/abc/start").unwrap(),
            (ApiVersion(1, 41), Route::ContainerStart("abc".into()))
        );
        assert_eq!(
            route("GET", "/v1.50/images/localhost:5000/ns/app:1/json")
                .unwrap()
                .1,
            Route::ImageInspect("localhost:5000/ns/app:1".into())
        );
        assert_eq!(
            route("DELETE", "/images/busybox:latest").unwrap().1,
            Route::ImageDelete("busybox:latest".into())
        );
        assert_eq!(
            route("POST", "/v1.41/swarm/leave").unwrap().1,
            Route::SwarmLeave
        );
        assert_eq!(
            route("GET", "/v1.44/distribution/127.0.0.1:5000/a/b:1/json")
                .unwrap()
                .1,
            Route::DistributionInspect("127.0.0.1:5000/a/b:1".into())
        );
        assert_eq!(
            route("POST", "/v1.50/networks/n1/connect").unwrap().1,
            Route::NetworkConnect("n1".into())
        );
        assert_eq!(route("GET", "/networks").unwrap().1, Route::NetworkList);
    }

    #[test]
    fn versions_out_of_range_and_unknown_paths() {
        let e = route("GET", "/v1.99/version").unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("too new"), "{}", e.message);
        assert_eq!(route("GET", "/v1.12/version").unwrap_err().status, 400);
        assert_eq!(route("GET", "/nope").unwrap_err().status, 404);
        assert_eq!(route("PUT", "/containers/x/start").unwrap_err().status, 404);
    }
}
