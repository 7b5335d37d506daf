//! The shim's control protocol: one request line per connection on `shim.sock`, one reply line
//! (`OK[ data]` / `ERR message`), and for attach/exec a stream of Docker's 8-byte frames.

use std::fmt;

/// Stream byte of the final exec frame that carries the exit code (4 bytes, big-endian).
pub const STREAM_EXIT: u8 = 3;

/// A request to the shim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Start,
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Wait,
    Kill {
        signal: i32,
        all: bool,
    },
    Resize {
        rows: u16,
        cols: u16,
    },
    State,
    Pause,
    Resume,
    Pids,
    Stats,
    Exec {
        id: String,
        tty: bool,
        stdin: bool,
        process: String,
    },
    ExecResize {
        id: String,
        rows: u16,
        cols: u16,
    },
    /// Applies new OCI `linux.resources` (a JSON file) to the running container.
    Update {
        resources: String,
    },
}

/// A malformed request line.
#[derive(Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad request: {}", self.0)
    }
}

impl std::error::Error for ParseError {}

fn flag(s: Option<&str>) -> Result<bool, ParseError> {
    match s {
        Some("1") => Ok(true),
        Some("0") => Ok(false),
        other => Err(ParseError(format!("expected 0 or 1, got {other:?}"))),
    }
}

fn num<T: std::str::FromStr>(s: Option<&str>) -> Result<T, ParseError> {
    s.and_then(|v| v.parse().ok())
        .ok_or_else(|| ParseError(format!("expected a number, got {s:?}")))
}

fn word(s: Option<&str>) -> Result<String, ParseError> {
    s.filter(|w| !w.is_empty())
        .map(String::from)
        .ok_or_else(|| ParseError("missing argument".into()))
}

impl Request {
    /// Parses one request line (without its newline).
    pub fn parse(line: &str) -> Result<Request, ParseError> {
        let mut it = line.split(' ');
        let verb = it.next().unwrap_or_default();
        let req = match verb {
            "START" => Request::Start,
            "ATTACH" => Request::Attach {
                stdin: flag(it.next())?,
                stdout: flag(it.next())?,
                stderr: flag(it.next())?,
            },
            "WAIT" => Request::Wait,
            "KILL" => Request::Kill {
                signal: num(it.next())?,
                all: match it.next() {
                    None => false,
                    Some("all") => true,
                    Some(x) => return Err(ParseError(format!("unexpected {x:?}"))),
                },
            },
            "RESIZE" => Request::Resize {
                rows: num(it.next())?,
                cols: num(it.next())?,
            },
            "STATE" => Request::State,
            "PAUSE" => Request::Pause,
            "RESUME" => Request::Resume,
            "PIDS" => Request::Pids,
            "STATS" => Request::Stats,
            "EXEC" => Request::Exec {
                id: word(it.next())?,
                tty: flag(it.next())?,
                stdin: flag(it.next())?,
                process: word(it.next())?,
            },
            "UPDATE" => Request::Update {
                resources: word(it.next())?,
            },
            "EXEC-RESIZE" => Request::ExecResize {
                id: word(it.next())?,
                rows: num(it.next())?,
                cols: num(it.next())?,
            },
            other => return Err(ParseError(format!("unknown request {other:?}"))),
        };
        if let Some(extra) = it.next() {
            return Err(ParseError(format!("unexpected {extra:?}")));
        }
        Ok(req)
    }

    /// The request as a line, with its newline.
    pub fn encode(&self) -> String {
        let b = |v: bool| if v { 1 } else { 0 };
        match self {
            Request::Start => "START\n".into(),
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => format!("ATTACH {} {} {}\n", b(*stdin), b(*stdout), b(*stderr)),
            Request::Wait => "WAIT\n".into(),
            Request::Kill { signal, all } => {
                format!("KILL {signal}{}\n", if *all { " all" } else { "" })
            }
            Request::Resize { rows, cols } => format!("RESIZE {rows} {cols}\n"),
            Request::State => "STATE\n".into(),
            Request::Pause => "PAUSE\n".into(),
            Request::Resume => "RESUME\n".into(),
            Request::Pids => "PIDS\n".into(),
            Request::Stats => "STATS\n".into(),
            Request::Exec {
                id,
                tty,
                stdin,
                process,
            } => format!("EXEC {id} {} {} {process}\n", b(*tty), b(*stdin)),
            Request::ExecResize { id, rows, cols } => format!("EXEC-RESIZE {id} {rows} {cols}\n"),
            Request::Update { resources } => format!("UPDATE {resources}\n"),
        }
    }
}

/// A reply line: `Ok(data)` for `OK[ data]`, `Err(message)` for `ERR message`.
pub fn parse_reply(line: &str) -> Result<String, String> {
    let line = line.trim_end_matches('\n');
    if line == "OK" {
        Ok(String::new())
    } else if let Some(d) = line.strip_prefix("OK ") {
        Ok(d.to_string())
    } else if let Some(e) = line.strip_prefix("ERR ") {
        Err(e.to_string())
    } else {
        Err(format!("malformed reply from shim: {line:?}"))
    }
}

/// Docker's frame header: `[stream, 0, 0, 0, len as u32 big-endian]`.
pub fn frame_header(stream: u8, len: usize) -> [u8; 8] {
    let l = (len as u32).to_be_bytes();
    [stream, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// Decodes a frame header into (stream, payload length).
pub fn parse_frame_header(h: &[u8; 8]) -> (u8, usize) {
    (h[0], u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize)
}

/// How a container ended, as recorded in the `exit` file and the WAIT reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitStatus {
    /// Docker's exit code: the status, or 128 + signal.
    pub code: i32,
    pub oom_killed: bool,
    /// RFC 3339 with nanoseconds, UTC.
    pub finished_at: String,
}

impl ExitStatus {
    /// `<code> <oom 0|1> <finished-at>` (no newline).
    pub fn encode(&self) -> String {
        format!(
            "{} {} {}",
            self.code,
            if self.oom_killed { 1 } else { 0 },
            self.finished_at
        )
    }

    /// Parses what `encode` wrote.
    pub fn parse(s: &str) -> Option<ExitStatus> {
        let mut it = s.trim().split(' ');
        let code = it.next()?.parse().ok()?;
        let oom = match it.next()? {
            "0" => false,
            "1" => true,
            _ => return None,
        };
        let finished_at = it.next().filter(|t| !t.is_empty())?.to_string();
        if it.next().is_some() {
            return None;
        }
        Some(ExitStatus {
            code,
            oom_killed: oom,
            finished_at,
        })
    }
}

/// The one line the shim writes on its ready descriptor once the container is created (or
/// could not be): `ok <init pid>` or `err <message on one line>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    Created { pid: i32 },
    Failed(String),
}

impl Ready {
    /// The line, with its newline (a message's own newlines become spaces).
    pub fn encode(&self) -> String {
        match self {
            Ready::Created { pid } => format!("ok {pid}\n"),
            Ready::Failed(msg) => format!("err {}\n", msg.replace('\n', " ")),
        }
    }

    /// Reads the line back; an empty line means the shim died before it could say anything.
    pub fn parse(line: &str) -> Result<Ready, ParseError> {
        let line = line.trim_end_matches('\n');
        if let Some(pid) = line.strip_prefix("ok ") {
            pid.parse()
                .map(|pid| Ready::Created { pid })
                .map_err(|_| ParseError(format!("ready line {line:?}: not a pid")))
        } else if let Some(msg) = line.strip_prefix("err ") {
            Ok(Ready::Failed(msg.to_string()))
        } else if line.is_empty() {
            Err(ParseError(
                "the shim exited without reporting (see the daemon log)".into(),
            ))
        } else {
            Err(ParseError(format!("unexpected ready line {line:?}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let all = [
            Request::Start,
            Request::Attach {
                stdin: true,
                stdout: true,
                stderr: false,
            },
            Request::Wait,
            Request::Kill {
                signal: 9,
                all: true,
            },
            Request::Kill {
                signal: 15,
                all: false,
            },
            Request::Resize { rows: 24, cols: 80 },
            Request::State,
            Request::Pause,
            Request::Resume,
            Request::Pids,
            Request::Stats,
            Request::Exec {
                id: "abc".into(),
                tty: false,
                stdin: true,
                process: "/run/x/p.json".into(),
            },
            Request::ExecResize {
                id: "abc".into(),
                rows: 1,
                cols: 2,
            },
            Request::Update {
                resources: "/run/r.json".into(),
            },
        ];
        for r in all {
            let line = r.encode();
            assert!(line.ends_with('\n'));
            assert_eq!(Request::parse(line.trim_end()).unwrap(), r);
        }
    }

    #[test]
    fn malformed_requests_are_rejected() {
        for bad in [
            "",
            "NOPE",
            "ATTACH 1 1",
            "ATTACH 1 1 2",
            "KILL x",
            "KILL 9 some",
            "START now",
            "EXEC a 1 1",
        ] {
            assert!(Request::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn replies_and_frames() {
        assert_eq!(parse_reply("OK 42\n"), Ok("42".into()));
        assert_eq!(parse_reply("OK\n"), Ok(String::new()));
        assert_eq!(
            parse_reply("ERR no such thing"),
            Err("no such thing".into())
        );
        assert!(parse_reply("HUH").is_err());
        let h = frame_header(2, 70000);
        assert_eq!(parse_frame_header(&h), (2, 70000));
        let e = ExitStatus {
            code: 137,
            oom_killed: true,
            finished_at: "2026-01-01T00:00:00.000000001Z".into(),
        };
        assert_eq!(ExitStatus::parse(&e.encode()), Some(e));
        assert_eq!(
            ExitStatus::parse("3 0 2026-01-01T00:00:00.000000000Z\n").map(|s| s.code),
            Some(3)
        );
    }

    #[test]
    fn frame_header_is_dockers_layout() {
        assert_eq!(frame_header(2, 0x1170), [2, 0, 0, 0, 0, 0, 0x11, 0x70]);
        assert_eq!(frame_header(STREAM_EXIT, 4)[0], 3);
    }

    #[test]
    fn malformed_exit_files_are_rejected() {
        for bad in ["", "x 0 t", "0", "0 0", "0 2 t", "0 0 t extra", "137 yes t"] {
            assert_eq!(ExitStatus::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ready_lines_round_trip() {
        for r in [
            Ready::Created { pid: 4242 },
            Ready::Failed("exec: \"nope\": executable file not found in $PATH".into()),
        ] {
            assert_eq!(Ready::parse(&r.encode()).unwrap(), r);
        }
        assert_eq!(
            Ready::parse(&Ready::Failed("a\nb".into()).encode()).unwrap(),
            Ready::Failed("a b".into())
        );
        assert!(Ready::parse("")
            .unwrap_err()
            .0
            .contains("without reporting"));
        assert!(Ready::parse("ok x").is_err());
        assert!(Ready::parse("hello").is_err());
    }
}
