//! `wharf`: the docker-compatible command-line client of wharfd.
#![recursion_limit = "256"]

mod cli;
mod client;
mod commands;
mod credentials;
mod format;
mod opts;
mod stream;
mod tls;
mod tty;

use clap::{CommandFactory, Parser};
use std::io::Write;
use std::sync::Arc;

/// Exit status for errors of the client itself (usage, daemon refusals on run): docker's 125.
const EXIT_USAGE: i32 = 125;

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let cli = match cli::Cli::try_parse_from(&argv) {
        Ok(c) => c,
        Err(e) => std::process::exit(usage_error(e, &argv)),
    };
    let code = real_main(cli);
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

/// Prints a clap error the way docker reports flag errors and returns its exit status.
fn usage_error(e: clap::Error, argv: &[String]) -> i32 {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    match e.kind() {
        // docker: "docker: unknown command: docker image foo" (exit 1); docker's commands that
        // wharf does not have say so.
        ErrorKind::InvalidSubcommand => {
            let Some(ContextValue::String(name)) = e.get(ContextKind::InvalidSubcommand) else {
                let _ = e.print();
                return 1;
            };
            if cli::UNSUPPORTED_COMMANDS.contains(&name.as_str()) {
                eprintln!("wharf: '{name}' is not supported yet (see docs/compatibility.md)");
                return 1;
            }
            // The command words before the unknown one (global flags and their values left out).
            let pos = argv.iter().position(|a| a == name).unwrap_or(argv.len());
            let mut words = vec!["wharf".to_string()];
            let mut skip = false;
            for a in &argv[1..pos] {
                if skip {
                    skip = false;
                } else if a.starts_with('-') {
                    skip = !a.contains('=')
                        && matches!(
                            a.as_str(),
                            "-H" | "--host"
                                | "-l"
                                | "--log-level"
                                | "--config"
                                | "-c"
                                | "--context"
                                | "--tlscacert"
                                | "--tlscert"
                                | "--tlskey"
                        );
                } else {
                    words.push(a.clone());
                }
            }
            let parent = words.join(" ");
            eprintln!("wharf: unknown command: {parent} {name}\n");
            if words.len() > 1 {
                eprintln!("Usage:  {parent}\n");
            }
            eprintln!("Run '{parent} --help' for more information");
            1
        }
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            0
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            0
        }
        ErrorKind::UnknownArgument => {
            if let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) {
                let flag = arg.split('=').next().unwrap_or(arg);
                if cli::UNSUPPORTED_FLAGS.contains(&flag) {
                    eprintln!(
                        "wharf: the flag {flag} is not supported yet (see docs/compatibility.md)"
                    );
                    return EXIT_USAGE;
                }
            }
            let _ = e.print();
            EXIT_USAGE
        }
        // docker 28 exits 1 when positional arguments are missing.
        ErrorKind::MissingRequiredArgument => {
            let _ = e.print();
            1
        }
        _ => {
            let _ = e.print();
            EXIT_USAGE
        }
    }
}

fn real_main(cli: cli::Cli) -> i32 {
    if cli.version {
        println!("wharf version {}", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    let Some(cmd) = cli.cmd else {
        let _ = cli::Cli::command().print_help();
        return 0;
    };
    if let cli::Cmd::Completion(a) = &cmd {
        let mut c = cli::Cli::command();
        // Generated into memory: clap_complete panics when its writer fails (`| head`).
        let mut script = Vec::new();
        clap_complete::generate(a.shell, &mut c, "wharf", &mut script);
        use std::io::Write;
        return match std::io::stdout().write_all(&script) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                eprintln!("wharf: writing the completion script: {e}");
                1
            }
            _ => 0,
        };
    }
    let tls_flags = tls::TlsFlags {
        tls: cli.tls,
        tlsverify: cli.tlsverify,
        tlscacert: cli.tlscacert.clone(),
        tlscert: cli.tlscert.clone(),
        tlskey: cli.tlskey.clone(),
        config_dir: cli.config.clone(),
    };
    let tls = match tls_flags
        .resolve()
        .and_then(|o| o.map(|o| o.client_config()).transpose())
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("wharf: {e:#}");
            return 1;
        }
    };
    if let Some(c) = cli.context.as_deref() {
        if c != "default" {
            eprintln!("wharf: context \"{c}\" does not exist (wharf knows only \"default\")");
            return 1;
        }
    }
    let (host_str, host) = match client::Host::resolve(cli.host.as_deref(), tls.is_some()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{e:#}");
            return 1;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wharf: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let ctx = commands::Ctx {
        client: Arc::new(client::Client::new(host_str, host).with_tls(tls)),
        config_dir: credentials::config_dir(cli.config.as_deref()),
    };
    // `run` reports errors as usage errors (125, "wharf: ..."); docker 28's `create` does so
    // only for its flags (handled in the command), the rest are plain errors (exit 1).
    let is_run = matches!(
        cmd,
        cli::Cmd::Run(_) | cli::Cmd::Container(cli::ContainerCmd::Run(_))
    );
    let result = rt.block_on(commands::dispatch(&ctx, cmd));
    // A blocking read of our stdin may still be pending: do not wait for it.
    rt.shutdown_background();
    let _ = std::io::stdout().flush();
    match result {
        Ok(code) => code,
        Err(e) => report(e, is_run),
    }
}

/// Prints an error as docker does and returns the exit status.
fn report(e: anyhow::Error, is_run: bool) -> i32 {
    if let Some(s) = e.downcast_ref::<commands::StatusError>() {
        if !s.message.is_empty() {
            eprintln!("{}", s.message);
        }
        return s.code;
    }
    if e.downcast_ref::<client::ConnectError>().is_some() && !is_run {
        eprintln!("{e}");
        return 1;
    }
    if is_run {
        eprintln!("wharf: {e:#}");
        return EXIT_USAGE;
    }
    eprintln!("{e:#}");
    1
}
