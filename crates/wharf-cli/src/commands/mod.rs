//! The commands, one module per object kind, and what they share: the context (client,
//! output), docker's status errors, and "do this to each named object" loops.

pub mod build;
pub mod compose;
pub mod container;
pub mod image;
pub mod login;
pub mod network;
pub mod system;
pub mod volume;

use crate::cli::{BuilderCmd, Cmd, ContainerCmd, ImageCmd, NetworkCmd, SystemCmd, VolumeCmd};
use crate::client::Client;
use anyhow::Result;
use std::future::Future;
use std::sync::Arc;

/// What every command gets.
pub struct Ctx {
    pub client: Arc<Client>,
    /// The client config directory (`--config`, `$DOCKER_CONFIG`, `~/.docker`).
    pub config_dir: std::path::PathBuf,
}

/// An error that ends the command with a given exit status (docker's `StatusError`); an
/// empty message prints nothing.
#[derive(Debug)]
pub struct StatusError {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StatusError {}

pub fn status(code: i32, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(StatusError {
        code,
        message: message.into(),
    })
}

/// Runs `f` for each name, printing the name on success (as docker's stop/rm/kill do) and
/// the errors together at the end; fails (exit 1) when any failed.
pub async fn each<F, Fut>(names: &[String], print: bool, mut f: F) -> Result<i32>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let mut errs = Vec::new();
    for n in names {
        match f(n.clone()).await {
            Ok(()) => {
                if print {
                    println!("{n}");
                }
            }
            Err(e) => {
                if e.downcast_ref::<crate::client::ConnectError>().is_some() {
                    return Err(e);
                }
                errs.push(format!("{e:#}"));
            }
        }
    }
    if errs.is_empty() {
        Ok(0)
    } else {
        Err(status(1, errs.join("\n")))
    }
}

/// Asks for confirmation on the terminal, as docker's prune commands do without `-f`.
pub fn confirm(question: &str) -> bool {
    use std::io::{BufRead, Write};
    print!("{question}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
}

/// Asks for confirmation with the question and the choices on one line, as docker's
/// `PromptForConfirmation` does (`builder prune`).
pub fn confirm_line(question: &str) -> bool {
    use std::io::{BufRead, Write};
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
}

/// Dispatches a parsed command; returns the exit code.
pub async fn dispatch(ctx: &Ctx, cmd: Cmd) -> Result<i32> {
    use container as c;
    use image as i;
    match cmd {
        Cmd::Run(a) => c::run(ctx, a).await,
        Cmd::Create(a) => c::create(ctx, a).await,
        Cmd::Start(a) => c::start(ctx, a).await,
        Cmd::Stop(a) => c::stop(ctx, a, false).await,
        Cmd::Restart(a) => c::stop(ctx, a, true).await,
        Cmd::Kill(a) => c::kill(ctx, a).await,
        Cmd::Rm(a) => c::rm(ctx, a).await,
        Cmd::Ps(a) => c::ps(ctx, a).await,
        Cmd::Logs(a) => c::logs(ctx, a).await,
        Cmd::Attach(a) => c::attach(ctx, a).await,
        Cmd::Exec(a) => c::exec(ctx, a).await,
        Cmd::Inspect(a) => system::inspect(ctx, a).await,
        Cmd::Top(a) => c::top(ctx, a).await,
        Cmd::Stats(a) => c::stats(ctx, a).await,
        Cmd::Cp(a) => c::cp(ctx, a).await,
        Cmd::Diff(a) => c::diff(ctx, a).await,
        Cmd::Export(a) => c::export(ctx, a).await,
        Cmd::Commit(a) => c::commit(ctx, a).await,
        Cmd::Pause(a) => c::pause(ctx, a, true).await,
        Cmd::Unpause(a) => c::pause(ctx, a, false).await,
        Cmd::Rename(a) => c::rename(ctx, a).await,
        Cmd::Update(a) => c::update(ctx, a).await,
        Cmd::Wait(a) => c::wait(ctx, a).await,
        Cmd::Port(a) => c::port(ctx, a).await,
        Cmd::Images(a) => i::images(ctx, a).await,
        Cmd::Rmi(a) => i::rmi(ctx, a).await,
        Cmd::Pull(a) => i::pull(ctx, a).await,
        Cmd::Push(a) => i::push(ctx, a).await,
        Cmd::Tag(a) => i::tag(ctx, a).await,
        Cmd::Save(a) => i::save(ctx, a).await,
        Cmd::Load(a) => i::load(ctx, a).await,
        Cmd::Import(a) => i::import(ctx, a).await,
        Cmd::History(a) => i::history(ctx, a).await,
        Cmd::Login(a) => login::login(ctx, a).await,
        Cmd::Logout(a) => login::logout(ctx, a).await,
        Cmd::Version(a) => system::version(ctx, a).await,
        Cmd::Info(a) => system::info(ctx, a).await,
        Cmd::Events(a) => system::events(ctx, a).await,
        Cmd::Container(sub) => match sub {
            ContainerCmd::Attach(a) => c::attach(ctx, a).await,
            ContainerCmd::Commit(a) => c::commit(ctx, a).await,
            ContainerCmd::Cp(a) => c::cp(ctx, a).await,
            ContainerCmd::Create(a) => c::create(ctx, a).await,
            ContainerCmd::Diff(a) => c::diff(ctx, a).await,
            ContainerCmd::Exec(a) => c::exec(ctx, a).await,
            ContainerCmd::Export(a) => c::export(ctx, a).await,
            ContainerCmd::Inspect(a) => {
                system::inspect_typed(ctx, "container", a.names, a.format, a.size).await
            }
            ContainerCmd::Kill(a) => c::kill(ctx, a).await,
            ContainerCmd::Logs(a) => c::logs(ctx, a).await,
            ContainerCmd::Ls(a) => c::ps(ctx, a).await,
            ContainerCmd::Pause(a) => c::pause(ctx, a, true).await,
            ContainerCmd::Port(a) => c::port(ctx, a).await,
            ContainerCmd::Prune(a) => c::prune(ctx, a).await,
            ContainerCmd::Rename(a) => c::rename(ctx, a).await,
            ContainerCmd::Restart(a) => c::stop(ctx, a, true).await,
            ContainerCmd::Rm(a) => c::rm(ctx, a).await,
            ContainerCmd::Run(a) => c::run(ctx, a).await,
            ContainerCmd::Start(a) => c::start(ctx, a).await,
            ContainerCmd::Stats(a) => c::stats(ctx, a).await,
            ContainerCmd::Stop(a) => c::stop(ctx, a, false).await,
            ContainerCmd::Top(a) => c::top(ctx, a).await,
            ContainerCmd::Unpause(a) => c::pause(ctx, a, false).await,
            ContainerCmd::Update(a) => c::update(ctx, a).await,
            ContainerCmd::Wait(a) => c::wait(ctx, a).await,
        },
        Cmd::Image(sub) => match sub {
            ImageCmd::Build(a) => build::build(ctx, *a).await,
            ImageCmd::History(a) => i::history(ctx, a).await,
            ImageCmd::Import(a) => i::import(ctx, a).await,
            ImageCmd::Inspect(a) => {
                system::inspect_typed(ctx, "image", a.names, a.format, false).await
            }
            ImageCmd::Load(a) => i::load(ctx, a).await,
            ImageCmd::Ls(a) => i::images(ctx, a).await,
            ImageCmd::Prune(a) => i::prune(ctx, a).await,
            ImageCmd::Pull(a) => i::pull(ctx, a).await,
            ImageCmd::Push(a) => i::push(ctx, a).await,
            ImageCmd::Rm(a) => i::rmi(ctx, a).await,
            ImageCmd::Save(a) => i::save(ctx, a).await,
            ImageCmd::Tag(a) => i::tag(ctx, a).await,
        },
        Cmd::Compose(a) => compose::run(ctx, a).await,
        Cmd::Volume(sub) => match sub {
            VolumeCmd::Create(a) => volume::create(ctx, a).await,
            VolumeCmd::Inspect(a) => {
                system::inspect_typed(ctx, "volume", a.names, a.format, false).await
            }
            VolumeCmd::Ls(a) => volume::ls(ctx, a).await,
            VolumeCmd::Prune(a) => volume::prune(ctx, a).await,
            VolumeCmd::Rm(a) => volume::rm(ctx, a).await,
        },
        Cmd::Network(sub) => match sub {
            NetworkCmd::Create(a) => network::create(ctx, a).await,
            NetworkCmd::Inspect(a) => {
                system::inspect_typed(ctx, "network", a.names, a.format, false).await
            }
            NetworkCmd::Ls(a) => network::ls(ctx, a).await,
            NetworkCmd::Rm(a) => network::rm(ctx, a).await,
            NetworkCmd::Prune(a) => network::prune(ctx, a).await,
            NetworkCmd::Connect(a) => network::connect(ctx, a).await,
            NetworkCmd::Disconnect(a) => network::disconnect(ctx, a).await,
        },
        Cmd::System(sub) => match sub {
            SystemCmd::Df(a) => system::df(ctx, a).await,
            SystemCmd::Events(a) => system::events(ctx, a).await,
            SystemCmd::Info(a) => system::info(ctx, a).await,
            SystemCmd::Prune(a) => system::prune(ctx, a).await,
        },
        Cmd::Build(a) => build::build(ctx, a).await,
        Cmd::Builder(sub) => match sub {
            BuilderCmd::Build(a) => build::build(ctx, *a).await,
            BuilderCmd::Prune(a) => build::prune(ctx, a).await,
        },
        Cmd::Completion(_) => unreachable!("handled before connecting"),
    }
}
