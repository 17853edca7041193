//! `nightshift exec`: show commands on many devices at once, printed per
//! device in inventory order.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use super::{EXIT_INVALID, load_config, secrets};
use crate::clock::Clock;
use crate::config::{Config, Selector};
use crate::device::{DeviceLink, GateTicket, session_addr};
use crate::jobs::exec::{DeviceResult, run_commands_on};
use crate::jobs::fleet;

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

/// Selected devices (all when no selector is given); `None` after printing
/// which selector matched nothing.
pub fn select(
    config: &Config,
    path: &Path,
    selectors: &[String],
    command: &str,
) -> Option<Vec<usize>> {
    let parsed: Vec<Selector> = selectors
        .iter()
        .map(|s| Selector::parse(s.trim()))
        .collect();
    for s in &parsed {
        if config.select(std::slice::from_ref(s)).is_empty() {
            eprintln!(
                "nightshift {command}: --devices {s} matches no device in {}",
                path.display()
            );
            return None;
        }
    }
    Some(if parsed.is_empty() {
        (0..config.devices.len()).collect()
    } else {
        config.select(&parsed)
    })
}

pub fn exec(path: &Path, args: &ExecArgs, clock: &dyn Clock) -> anyhow::Result<ExitCode> {
    let Some(config) = load_config(path, clock)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let Some(targets) = select(&config, path, &args.devices, "exec") else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let commands: Vec<String> = args
        .command
        .join(" ")
        .split(';')
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    let logins = match secrets::proven_logins(&config, &targets, args.password_stdin)? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let mut links =
        fleet::links(&config, &targets, &logins).context("while loading known_hosts")?;
    if args.transcripts {
        for l in links.values_mut() {
            l.target.transcript = Some(
                config
                    .daemon
                    .state_dir
                    .join("transcripts")
                    .join(format!("{}.log", l.target.name)),
            );
        }
    }
    let runtime = super::runtime(true)?;
    let results = runtime.block_on(run_commands(
        Arc::new(config),
        targets,
        links,
        Arc::new(commands),
        args.concurrency,
    ));
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

pub async fn run_commands(
    config: Arc<Config>,
    targets: Vec<usize>,
    links: std::collections::BTreeMap<usize, DeviceLink>,
    commands: Arc<Vec<String>>,
    concurrency: usize,
) -> Vec<DeviceResult> {
    let links = Arc::new(links);
    let cfg = config.clone();
    let work = move |i: usize, ticket: Arc<GateTicket>| {
        let (links, commands, config) = (links.clone(), commands.clone(), cfg.clone());
        async move {
            let d = &config.devices[i];
            match links.get(&i) {
                Some(link) => {
                    let mut link = link.clone();
                    link.gate = Some(ticket);
                    run_commands_on(&link, &commands).await
                }
                None => DeviceResult {
                    error: Some(format!("{}: no login for its credential profile", d.name)),
                    ..DeviceResult::new(&d.name, session_addr(&d.host, d.port))
                },
            }
        }
    };
    let not_tried = |i: usize, why: String| {
        let d = &config.devices[i];
        DeviceResult {
            hint: why.contains("were rejected").then(|| "nightshift stops after one rejected login so the account does not lock; fix the credentials first".into()),
            error: Some(format!("{}: not tried: {why}", d.name)),
            ..DeviceResult::new(&d.name, session_addr(&d.host, d.port))
        }
    };
    fleet::run_fleet(&config, &targets, concurrency, work, not_tried)
        .await
        .into_values()
        .collect()
}

fn print_result(out: &mut impl std::io::Write, r: &DeviceResult) -> std::io::Result<()> {
    let failed = if r.status == "ok" { "" } else { " FAILED" };
    writeln!(out, "=== {} ({}){failed} ===", r.name, r.address)?;
    // A refused command's error is the device's error too: say it once,
    // under the command, with the hint after it.
    let under_a_command = r
        .error
        .as_ref()
        .is_some_and(|e| r.outputs.iter().any(|c| c.error.as_ref() == Some(e)));
    if let Some(e) = &r.error
        && !under_a_command
    {
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
    if under_a_command && let Some(h) = &r.hint {
        writeln!(out, "hint: {h}")?;
    }
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::exec::CommandResult;

    fn printed(r: &DeviceResult) -> String {
        let mut out = Vec::new();
        print_result(&mut out, r).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_refused_command_is_reported_once_with_its_hint() {
        let refused = "r1: `show clock` was refused: % Invalid input detected at '^' marker.";
        let mut r = DeviceResult::new("r1", "192.0.2.1:22".into());
        r.error = Some(refused.into());
        r.hint = Some("the device does not accept this command as written".into());
        r.outputs.push(CommandResult {
            command: "show clock".into(),
            output: None,
            error: Some(refused.into()),
        });
        let text = printed(&r);
        assert_eq!(text.matches(refused).count(), 1, "{text}");
        assert!(
            text.ends_with("hint: the device does not accept this command as written\n\n"),
            "{text}"
        );
    }

    #[test]
    fn a_device_that_could_not_be_reached_shows_its_error_and_hint() {
        let mut r = DeviceResult::new("r2", "192.0.2.2:22".into());
        r.error = Some("r2: cannot connect".into());
        r.hint = Some("check that the device is up".into());
        let text = printed(&r);
        assert!(
            text.contains("error: r2: cannot connect\nhint: check that the device is up\n"),
            "{text}"
        );
    }
}
