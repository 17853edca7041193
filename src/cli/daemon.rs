//! `nightshift daemon` (the systemd service) and `nightshift status`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{EXIT_INVALID, load_config};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::control::{self, Request};
use crate::daemon::{self, DaemonError, Options, SystemdNotify};

pub fn daemon(path: &Path) -> anyhow::Result<ExitCode> {
    let runtime = super::runtime(true)?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let reload = Arc::new(Notify::new());
        let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
        let signals = {
            let shutdown = shutdown.clone();
            let reload = reload.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = term.recv() => { tracing::info!("SIGTERM: no new devices; in-flight devices reach a safe point; the report is still sent"); shutdown.cancel(); }
                        _ = int.recv() => { tracing::info!("SIGINT: stopping as for SIGTERM"); shutdown.cancel(); }
                        _ = hup.recv() => { tracing::info!("SIGHUP: re-reading the config"); reload.notify_one(); }
                    }
                }
            })
        };
        let result = daemon::run(
            path,
            Options {
                clock: Arc::new(SystemClock),
                notifier: Arc::new(SystemdNotify),
                shutdown,
                reload,
            },
        )
        .await;
        signals.abort();
        match result {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(DaemonError::Config(ConfigError::Invalid { file, problems })) => {
                for p in &problems {
                    eprintln!("{p}");
                }
                eprintln!("{file}: {} problem(s) found; the daemon did not start", problems.len());
                Ok(ExitCode::from(EXIT_INVALID))
            }
            Err(e) => Err(anyhow::Error::new(e).context("the daemon stopped")),
        }
    })
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The daemon's control socket [default: the config's [daemon] control_socket, else /run/nightshift/control.sock]
    #[arg(long, env = "NIGHTSHIFT_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Print the status as JSON (`"format": 1`; the README lists the fields)
    #[arg(long)]
    json: bool,
}

/// The daemon's control socket: `--socket`, else the config's. A member
/// of control_group may not read the config (`0640 root:nightshift`): then
/// the default one. A config with problems (say, just after a reload was
/// rejected — when the daemon's state matters most) still names its
/// socket. `Err` is the exit code, the problems printed.
fn socket_of(
    path: &Path,
    socket: Option<&Path>,
    clock: &dyn Clock,
) -> anyhow::Result<Result<PathBuf, ExitCode>> {
    Ok(Ok(match (socket, Config::load(path, clock.now())) {
        (Some(s), _) => s.to_path_buf(),
        (None, Ok(config)) => config.daemon.control_socket,
        (None, Err(ConfigError::Read { source, .. }))
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            PathBuf::from(control::DEFAULT_SOCKET)
        }
        (None, Err(ConfigError::Invalid { problems, .. })) => {
            eprintln!(
                "nightshift: {} has {} problem(s) (`nightshift check-config` lists them); asking the daemon anyway",
                path.display(),
                problems.len()
            );
            std::fs::read_to_string(path)
                .ok()
                .and_then(|t| t.parse::<toml::Table>().ok())
                .and_then(|t| {
                    t.get("daemon")?
                        .get("control_socket")?
                        .as_str()
                        .map(PathBuf::from)
                })
                .unwrap_or_else(|| PathBuf::from(control::DEFAULT_SOCKET))
        }
        (None, Err(_)) => {
            let _ = load_config(path, clock)?;
            return Ok(Err(ExitCode::from(EXIT_INVALID)));
        }
    }))
}

#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    /// The daemon's control socket [default: the config's [daemon] control_socket, else /run/nightshift/control.sock]
    #[arg(long, env = "NIGHTSHIFT_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
}

/// `nightshift reload` (the unit's `ExecReload=`): the running daemon
/// re-reads and validates its config. Exit 0 when it took the new config;
/// 1 when it kept the old one (every problem printed, an alert mailed).
pub fn reload(path: &Path, args: &ReloadArgs, clock: &dyn Clock) -> anyhow::Result<ExitCode> {
    let socket = match socket_of(path, args.socket.as_deref(), clock)? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let runtime = super::runtime(false)?;
    match runtime.block_on(control::call(&socket, &Request::Reload)) {
        Ok(_) => {
            eprintln!("nightshift reload: the daemon took the new config");
            Ok(ExitCode::SUCCESS)
        }
        Err(control::ControlError::Refused { message, hint, .. }) => {
            eprintln!("nightshift reload: {message}");
            if let Some(h) = hint {
                eprintln!("    hint: {h}");
            }
            Ok(ExitCode::from(1))
        }
        Err(e) => {
            eprintln!("nightshift reload: {e}");
            eprintln!("    hint: is the daemon running? `systemctl status nightshift`");
            Ok(ExitCode::from(3))
        }
    }
}

pub fn status(path: &Path, args: &StatusArgs, clock: &dyn Clock) -> anyhow::Result<ExitCode> {
    let socket = match socket_of(path, args.socket.as_deref(), clock)? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let runtime = super::runtime(false)?;
    let v = match runtime.block_on(control::call(&socket, &Request::Status)) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("nightshift status: {e}");
            eprintln!(
                "    hint: is the daemon running? `systemctl status nightshift`; the socket is [daemon] control_socket"
            );
            return Ok(ExitCode::from(3));
        }
    };
    if args.json {
        let mut v = v;
        if let Some(o) = v.as_object_mut() {
            o.insert("format".into(), 1.into());
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    let t = |v: &serde_json::Value| crate::report::show_time(v.as_str(), None);
    println!(
        "nightshift daemon, pid {}, up since {}",
        v["pid"],
        t(&v["started"])
    );
    println!("config:      {}", s(&v["config"]));
    println!("now:         {}", s(&v["line"]));
    for n in v["next"].as_array().into_iter().flatten() {
        println!(
            "next:        {:<16} {}  ({})",
            s(&n["window"]),
            s(&n["opens_local"]),
            t(&n["opens"])
        );
    }
    if let Some(r) = v["running"].as_object() {
        println!("running:     {} {}", s(&r["window"]), s(&r["progress"]));
    }
    match v["last"].as_object() {
        Some(l) => println!(
            "last window: {} ({}): {}",
            s(&l["window"]),
            s(&l["run_id"]),
            s(&l["summary"])
        ),
        None => println!("last window: none since start"),
    }
    for (window, p) in v["plans"].as_object().into_iter().flatten() {
        println!(
            "last plan:   {window} ({}, made {}): {}",
            s(&p["run_id"]),
            t(&p["finished"]),
            s(&p["summary"])
        );
    }
    for (profile, c) in v["credentials"].as_object().into_iter().flatten() {
        println!(
            "credentials: {profile}: {} (checked {}){}",
            s(&c["state"]),
            t(&c["checked"]),
            c["error"]
                .as_str()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
    if let Some(r) = v["last_reload"].as_object() {
        println!("last reload: {} at {}", s(&r["result"]), t(&r["at"]));
    }
    Ok(ExitCode::SUCCESS)
}
