//! The shim's command line, one type for both ends: the daemon builds [`ShimArgs`] and turns
//! it into flags with [`ShimArgs::to_args`]; the shim reads them back with
//! [`ShimArgs::parse`]. Parsed by hand: the shim stays small (no clap).

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// Everything the shim is started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimArgs {
    pub id: String,
    pub bundle: PathBuf,
    pub state_dir: PathBuf,
    pub runtime_root: PathBuf,
    /// `builtin` (the in-process `wharf_runtime`) or the path of an OCI CLI runtime.
    pub runtime: PathBuf,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    /// The json-file log; `None`: the `none` log driver.
    pub log_path: Option<PathBuf>,
    pub log_max_size: Option<u64>,
    pub log_max_file: u32,
    pub cgroup_path: Option<String>,
    /// The control socket (default `<state-dir>/shim.sock`).
    pub socket: Option<PathBuf>,
    /// Where the shim writes its one [`crate::proto::Ready`] line; -1: nowhere.
    pub ready_fd: i32,
}

impl ShimArgs {
    /// The defaults of every optional flag, for container `id`.
    pub fn new(id: impl Into<String>, bundle: PathBuf, state_dir: PathBuf) -> Self {
        ShimArgs {
            id: id.into(),
            bundle,
            state_dir,
            runtime_root: PathBuf::from("/run/wharf/runtime"),
            runtime: PathBuf::from("builtin"),
            tty: false,
            stdin: false,
            stdin_once: false,
            log_path: None,
            log_max_size: None,
            log_max_file: 1,
            cgroup_path: None,
            socket: None,
            ready_fd: -1,
        }
    }

    /// The flags that [`ShimArgs::parse`] reads back into `self`.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = Vec::with_capacity(24);
        let mut flag = |name: &str, value: OsString| {
            v.push(name.into());
            v.push(value);
        };
        flag("--id", self.id.clone().into());
        flag("--bundle", self.bundle.clone().into());
        flag("--state-dir", self.state_dir.clone().into());
        flag("--runtime-root", self.runtime_root.clone().into());
        flag("--runtime", self.runtime.clone().into());
        match &self.log_path {
            Some(p) => flag("--log-path", p.clone().into()),
            None => flag("--log-driver", "none".into()),
        }
        if let Some(s) = self.log_max_size {
            flag("--log-max-size", s.to_string().into());
        }
        flag("--log-max-file", self.log_max_file.to_string().into());
        if let Some(c) = &self.cgroup_path {
            flag("--cgroup-path", c.clone().into());
        }
        if let Some(s) = &self.socket {
            flag("--socket", s.clone().into());
        }
        flag("--ready-fd", self.ready_fd.to_string().into());
        for (on, name) in [
            (self.tty, "--tty"),
            (self.stdin, "--stdin"),
            (self.stdin_once, "--stdin-once"),
        ] {
            if on {
                v.push(name.into());
            }
        }
        v
    }

    /// Reads the flags (without the program name).
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Self, ArgsError> {
        let mut a = ShimArgs::new(String::new(), PathBuf::new(), PathBuf::new());
        let mut log_driver = "json-file".to_string();
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            let flag = flag
                .into_string()
                .map_err(|f| ArgsError(format!("flag {f:?} is not UTF-8")))?;
            let mut os_val = || {
                it.next()
                    .ok_or_else(|| ArgsError(format!("{flag} needs a value")))
            };
            match flag.as_str() {
                "--tty" => a.tty = true,
                "--stdin" => a.stdin = true,
                "--stdin-once" => a.stdin_once = true,
                "--bundle" => a.bundle = os_val()?.into(),
                "--state-dir" => a.state_dir = os_val()?.into(),
                "--runtime-root" => a.runtime_root = os_val()?.into(),
                "--runtime" => a.runtime = os_val()?.into(),
                "--log-path" => a.log_path = Some(os_val()?.into()),
                "--socket" => a.socket = Some(os_val()?.into()),
                "--id" | "--log-driver" | "--log-max-size" | "--log-max-file" | "--cgroup-path"
                | "--ready-fd" => {
                    let v = os_val()?
                        .into_string()
                        .map_err(|v| ArgsError(format!("{flag} {v:?}: not UTF-8")))?;
                    let bad = |what: &str| ArgsError(format!("{flag} {v:?}: {what}"));
                    match flag.as_str() {
                        "--id" => a.id = v,
                        "--log-driver" => log_driver = v,
                        "--log-max-size" => {
                            a.log_max_size = Some(v.parse().map_err(|_| bad("not a byte count"))?)
                        }
                        "--log-max-file" => {
                            a.log_max_file = v.parse().map_err(|_| bad("not a file count"))?
                        }
                        "--cgroup-path" => a.cgroup_path = Some(v),
                        "--ready-fd" => {
                            a.ready_fd = v.parse().map_err(|_| bad("not a descriptor"))?
                        }
                        _ => unreachable!("the outer match lists these flags"),
                    }
                }
                _ => return Err(ArgsError(format!("unknown flag {flag}"))),
            }
        }
        match log_driver.as_str() {
            "none" => a.log_path = None,
            "json-file" => {}
            other => return Err(ArgsError(format!("unsupported log driver {other:?}"))),
        }
        if a.id.is_empty() || a.state_dir.as_os_str().is_empty() || a.bundle.as_os_str().is_empty()
        {
            return Err(ArgsError(
                "--id, --bundle and --state-dir are required".into(),
            ));
        }
        Ok(a)
    }
}

/// A command line the shim cannot run with.
#[derive(Debug, PartialEq, Eq)]
pub struct ArgsError(pub String);

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgsError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn every_field_survives_the_round_trip() {
        let mut a = ShimArgs::new("c1", "/b".into(), "/s".into());
        let plain = ShimArgs::parse(a.to_args()).unwrap();
        assert_eq!(plain, a);
        a.runtime_root = "/rr".into();
        a.runtime = "/usr/bin/runc".into();
        a.tty = true;
        a.stdin = true;
        a.stdin_once = true;
        a.log_path = Some("/l/c1-json.log".into());
        a.log_max_size = Some(10 << 20);
        a.log_max_file = 3;
        a.cgroup_path = Some("/wharf/c1".into());
        a.socket = Some("/run/s/c1.sock".into());
        a.ready_fd = 3;
        assert_eq!(ShimArgs::parse(a.to_args()).unwrap(), a);
    }

    #[test]
    fn the_none_driver_drops_the_log_path_whatever_the_order() {
        let a = ShimArgs::parse(os(&[
            "--log-driver",
            "none",
            "--id",
            "x",
            "--bundle",
            "/b",
            "--state-dir",
            "/s",
            "--log-path",
            "/l",
        ]))
        .unwrap();
        assert_eq!(a.log_path, None);
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        let err = |v: &[&str]| ShimArgs::parse(os(v)).unwrap_err().0;
        assert_eq!(err(&["--id"]), "--id needs a value");
        assert_eq!(err(&["--nope"]), "unknown flag --nope");
        assert_eq!(
            err(&["--log-max-size", "10m"]),
            "--log-max-size \"10m\": not a byte count"
        );
        assert_eq!(
            err(&["--log-driver", "syslog"]),
            "unsupported log driver \"syslog\""
        );
        assert_eq!(
            err(&["--id", "x"]),
            "--id, --bundle and --state-dir are required"
        );
    }
}
