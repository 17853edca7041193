//! `nightshift exec`: show commands on many devices at once, printed per
//! device in inventory order.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;
use tokio::sync::Semaphore;

use super::{EXIT_INVALID, load_config, secrets};
use crate::clock::Clock;
use crate::config::{Config, Device, Selector};
use crate::device::{DeviceError, KnownHosts, Login, Negotiated, Session, Target};

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Devices to run on: names, globs ("core-*") or tag:X; repeatable or comma-separated [default: all]
    #[arg(short, long = "devices", value_name = "SEL", value_delimiter = ',')]
    devices: Vec<String>,
    /// Devices worked on at once
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
    /// Also write the results as JSON to FILE
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Read the password (and, on a second line, the enable secret) from standard input
    #[arg(long)]
    password_stdin: bool,
    /// Keep a transcript per device (secrets masked) under <state_dir>/transcripts
    #[arg(long)]
    transcripts: bool,
    /// The show command to run, e.g. `-- show version`; separate several with `;`
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

#[derive(Debug, Serialize)]
struct CommandResult {
    command: String,
    output: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct DeviceResult {
    name: String,
    address: String,
    status: &'static str,
    error: Option<String>,
    hint: Option<String>,
    algorithms: Option<Negotiated>,
    host_key_learned: bool,
    outputs: Vec<CommandResult>,
}

impl DeviceResult {
    fn failed(d: &Device, e: &DeviceError) -> Self {
        DeviceResult {
            name: d.name.clone(),
            address: address(d),
            status: "failed",
            error: Some(e.to_string()),
            hint: e.hint(),
            algorithms: None,
            host_key_learned: false,
            outputs: Vec::new(),
        }
    }
}

fn address(d: &Device) -> String {
    crate::device::session_addr(&d.host, d.port)
}

/// The words after `--` are one command; `;` separates several.
fn commands(args: &ExecArgs) -> Vec<String> {
    args.command
        .join(" ")
        .split(';')
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

pub fn exec(path: &Path, args: &ExecArgs, clock: &dyn Clock) -> anyhow::Result<ExitCode> {
    let Some(config) = load_config(path, clock)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let selectors: Vec<Selector> = args
        .devices
        .iter()
        .map(|s| Selector::parse(s.trim()))
        .collect();
    for s in &selectors {
        if config.select(std::slice::from_ref(s)).is_empty() {
            eprintln!(
                "nightshift exec: --devices {s} matches no device in {}",
                path.display()
            );
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    }
    let targets: Vec<usize> = if selectors.is_empty() {
        (0..config.devices.len()).collect()
    } else {
        config.select(&selectors)
    };
    let logins = secrets::logins_for(&config, &targets, args.password_stdin)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let results = runtime.block_on(run(Arc::new(config), targets, logins, args))?;
    let failed = results.iter().filter(|r| r.status != "ok").count();
    let mut out = std::io::stdout().lock();
    for r in &results {
        print_result(&mut out, r)?;
    }
    eprintln!(
        "nightshift exec: {} ok, {failed} failed",
        results.len() - failed
    );
    if let Some(file) = &args.json {
        let json = serde_json::to_string_pretty(&serde_json::json!({ "devices": results }))
            .context("while rendering JSON")?;
        std::fs::write(file, json + "\n")
            .with_context(|| format!("while writing {}", file.display()))?;
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_result(out: &mut impl std::io::Write, r: &DeviceResult) -> std::io::Result<()> {
    if r.status == "ok" {
        writeln!(out, "=== {} ({}) ===", r.name, r.address)?;
    } else {
        writeln!(out, "=== {} ({}) FAILED ===", r.name, r.address)?;
    }
    if let Some(e) = &r.error {
        writeln!(out, "error: {e}")?;
        if let Some(h) = &r.hint {
            writeln!(out, "hint: {h}")?;
        }
    }
    let many = r.outputs.len() > 1;
    for c in &r.outputs {
        if many {
            writeln!(out, "--- {}", c.command)?;
        }
        match (&c.output, &c.error) {
            (Some(o), _) => writeln!(out, "{o}")?,
            (None, Some(e)) => writeln!(out, "error: {e}")?,
            _ => {}
        }
    }
    writeln!(out)
}

async fn run(
    config: Arc<Config>,
    targets: Vec<usize>,
    logins: HashMap<String, Login>,
    args: &ExecArgs,
) -> anyhow::Result<Vec<DeviceResult>> {
    let commands = Arc::new(commands(args));
    let mut known: HashMap<PathBuf, Arc<KnownHosts>> = HashMap::new();
    for &i in &targets {
        let p = config.devices[i].ssh.known_hosts.clone();
        if let std::collections::hash_map::Entry::Vacant(e) = known.entry(p.clone()) {
            e.insert(Arc::new(
                KnownHosts::load(&p).with_context(|| format!("while reading {}", p.display()))?,
            ));
        }
    }
    let transcripts = args
        .transcripts
        .then(|| config.daemon.state_dir.join("transcripts"));
    let mut results: BTreeMap<usize, DeviceResult> = BTreeMap::new();
    // One login per credential profile goes first, alone: a rejected
    // password must not be tried on every device (account lockout).
    let mut by_profile: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &i in &targets {
        by_profile
            .entry(config.devices[i].credentials.as_str())
            .or_default()
            .push(i);
    }
    let mut rest = Vec::new();
    for (profile, devices) in &by_profile {
        let canary_name = config
            .credentials
            .iter()
            .find(|c| c.name == *profile)
            .map(|c| c.canary.as_str());
        let first = devices
            .iter()
            .copied()
            .find(|&i| Some(config.devices[i].name.as_str()) == canary_name)
            .unwrap_or(devices[0]);
        let login = logins
            .get(*profile)
            .cloned()
            .context("no login for a selected profile")?;
        let r = run_one(
            &config.devices[first],
            &login,
            &known,
            &commands,
            transcripts.as_deref(),
        )
        .await;
        let rejected = r.error.is_some()
            && r.outputs.is_empty()
            && r.hint
                .as_deref()
                .is_some_and(|h| h.contains("credentials set"));
        let who = config.devices[first].name.clone();
        results.insert(first, r);
        for &i in devices.iter().filter(|&&i| i != first) {
            if rejected {
                let d = &config.devices[i];
                results.insert(i, DeviceResult {
                    name: d.name.clone(),
                    address: address(d),
                    status: "failed",
                    error: Some(format!("{}: not tried: the credentials of profile {profile} were rejected by {who}", d.name)),
                    hint: Some(format!("fix the password for profile {profile}; nightshift stops after one rejected login so the account does not lock")),
                    algorithms: None,
                    host_key_learned: false,
                    outputs: Vec::new(),
                });
            } else {
                rest.push((i, login.clone()));
            }
        }
    }
    let limit = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, login) in rest {
        let (config, known, commands, limit, transcripts) = (
            config.clone(),
            known.clone(),
            commands.clone(),
            limit.clone(),
            transcripts.clone(),
        );
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (
                i,
                run_one(
                    &config.devices[i],
                    &login,
                    &known,
                    &commands,
                    transcripts.as_deref(),
                )
                .await,
            )
        });
    }
    while let Some(done) = set.join_next().await {
        let (i, r) = done.context("a device task failed")?;
        results.insert(i, r);
    }
    Ok(results.into_values().collect())
}

async fn run_one(
    d: &Device,
    login: &Login,
    known: &HashMap<PathBuf, Arc<KnownHosts>>,
    commands: &[String],
    transcripts: Option<&Path>,
) -> DeviceResult {
    let mut target = Target::from_device(d);
    target.transcript = transcripts.map(|dir| dir.join(format!("{}.log", d.name)));
    let Some(kh) = known.get(&d.ssh.known_hosts) else {
        return DeviceResult::failed(
            d,
            &DeviceError::Ssh {
                device: d.name.clone(),
                stage: crate::device::Stage::Connect,
                reason: "known_hosts not loaded".into(),
            },
        );
    };
    let mut session = match Session::open(&target, login, kh).await {
        Ok(s) => s,
        Err(e) => return DeviceResult::failed(d, &e),
    };
    let mut outputs = Vec::new();
    let mut first_error: Option<DeviceError> = None;
    for c in commands {
        match session.command(c).await {
            Ok(output) => outputs.push(CommandResult {
                command: c.clone(),
                output: Some(output),
                error: None,
            }),
            Err(e) => {
                outputs.push(CommandResult {
                    command: c.clone(),
                    output: None,
                    error: Some(e.to_string()),
                });
                let fatal = !matches!(e, DeviceError::CommandRejected { .. });
                first_error.get_or_insert(e);
                if fatal {
                    break;
                }
            }
        }
    }
    let negotiated = session.negotiated().clone();
    let learned = session.learned_host_key();
    session.close().await;
    DeviceResult {
        name: d.name.clone(),
        address: address(d),
        status: if first_error.is_none() {
            "ok"
        } else {
            "failed"
        },
        hint: first_error.as_ref().and_then(DeviceError::hint),
        error: first_error.map(|e| e.to_string()),
        algorithms: Some(negotiated),
        host_key_learned: learned,
        outputs,
    }
}
