//! The command line. Each command is a function that returns the process
//! exit code; errors carry context for the edge to print.

mod check;
mod credentials;
mod daemon;
mod demo;
mod exec;
mod generate;
mod lab;
mod next;
mod plan;
mod report;
mod rollback;
mod run;
mod secrets;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError, DEFAULT_PATH};

/// Exit code for an invalid config or invalid arguments.
pub const EXIT_INVALID: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "nightshift",
    version,
    about = "Runs network change windows: safe ACL pushes and POTS line tests on Cisco IOS and NX-OS over SSH",
    long_about = None
)]
pub struct Cli {
    /// Config file [default: /etc/nightshift/nightshift.toml]
    #[arg(
        short,
        long,
        global = true,
        env = "NIGHTSHIFT_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    /// More log output on standard error (-v info, -vv debug, -vvv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the config: exit 0 with a summary, or 2 with every problem and its FILE:LINE:COLUMN
    CheckConfig,
    /// Show the next openings of every window, in the window's zone and in UTC
    Next(next::NextArgs),
    /// Run show commands on devices now and print each device's output (exit 1 if any failed)
    Exec(exec::ExecArgs),
    /// Run a job now in the foreground and print the per-device result (exit 1 if any device failed)
    Run(run::RunArgs),
    /// Read every device a window will change, change nothing, and print (keep, mail) the plan
    Plan(plan::PlanArgs),
    /// Put back, on every device a run changed, the ACL the run found there (same guarantees as a push)
    Rollback(rollback::RollbackArgs),
    /// Set, check or delete credentials (one canary login, OS keyring)
    Credentials(credentials::CredentialsArgs),
    /// Sleep until change windows and run them (the systemd service)
    Daemon,
    /// Ask the running daemon for its state: next windows, progress, last outcome, credentials
    Status(daemon::StatusArgs),
    /// Ask the running daemon to re-read its config: exit 0 when it took it, 1 when it kept the old one
    Reload(daemon::ReloadArgs),
    /// List, show or resend mails (reports and alerts) from the outbox
    Report(report::ReportArgs),
    /// Serve a simulated fleet of IOS/NX-OS devices and modem lines over SSH on loopback
    Lab(lab::LabArgs),
    /// Run a whole change window against the embedded lab, in under a minute
    Demo(demo::DemoArgs),
    /// Write the man pages, or print a shell's completion script
    Generate(generate::GenerateArgs),
}

pub fn init_logging(verbose: u8, daemon: bool) {
    let default = match verbose {
        // The scheduler logs every job it creates at info: noise.
        0 if daemon => "info,tokio_cron_scheduler=warn",
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("NIGHTSHIFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Under systemd, journald adds the time stamp and takes no colours.
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(!journald && std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = if journald {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
}

/// The async runtime a command runs on: all cores for commands that work
/// on many devices at once, one thread for those that make a call or two.
pub(crate) fn runtime(many_devices: bool) -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    let mut builder = if many_devices {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn config_path(cli: &Cli) -> PathBuf {
    cli.config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
}

/// Loads the config, printing every problem when it is invalid. `Ok(None)`
/// means the problems were printed and the caller should exit with
/// [`EXIT_INVALID`].
pub fn load_config(path: &Path, clock: &dyn Clock) -> anyhow::Result<Option<Config>> {
    match Config::load(path, clock.now()) {
        Ok(c) => Ok(Some(c)),
        Err(ConfigError::Invalid { file, problems }) => {
            for p in &problems {
                eprintln!("{p}");
            }
            eprintln!(
                "{file}: {} problem{} found; nothing was loaded",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            Ok(None)
        }
        Err(e @ ConfigError::Read { .. }) => {
            eprintln!("nightshift: error: {:#}", anyhow::Error::new(e));
            eprintln!(
                "    hint: pass the config with -c FILE or NIGHTSHIFT_CONFIG, or create {DEFAULT_PATH}"
            );
            Ok(None)
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let clock = SystemClock;
    let path = config_path(&cli);
    match &cli.command {
        Command::CheckConfig => check::check_config(&path, &clock),
        Command::Next(args) => next::next(&path, args, &clock),
        Command::Exec(args) => exec::exec(&path, args, &clock),
        Command::Run(args) => run::run(&path, args, &clock),
        Command::Plan(args) => plan::plan(&path, args, &clock),
        Command::Rollback(args) => rollback::rollback(&path, args, &clock),
        Command::Credentials(args) => credentials::credentials(&path, args, &clock),
        Command::Daemon => daemon::daemon(&path),
        Command::Status(args) => daemon::status(&path, args, &clock),
        Command::Reload(args) => daemon::reload(&path, args, &clock),
        Command::Report(args) => report::report(&path, args, &clock),
        Command::Lab(args) => lab::lab(args),
        Command::Demo(args) => demo::demo(args),
        Command::Generate(args) => generate::generate(args),
    }
}
