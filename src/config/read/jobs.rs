//! `[jobs.NAME]`: acl, pots and exec jobs.

use std::collections::HashSet;
use std::time::Duration;

use super::super::doc::{Doc, Table, as_table};
use super::super::{Config, Job, JobKind, MaxFailures, OnDrift, PotsLine, Selector};
use super::{Declared, valid_name};
use regex::Regex;

use crate::platform::Platform;

const JOB_KEYS: &[&str] = &[
    "kind",
    "devices",
    "concurrency",
    "caps",
    "max_failures",
    "budget",
    "acl_name",
    "acl_lines",
    "save",
    "safety_net",
    "revert_minutes",
    "lines",
    "guard_time",
    "commands",
    "on_drift",
    "run",
    "vars",
];
const LINE_KEYS: &[&str] = &[
    "branch",
    "dialer",
    "line",
    "number",
    "expect",
    "timeout",
    "retries",
    "retry_pause",
];

/// Default concurrency: the classic script's `threads`.
pub const DEFAULT_CONCURRENCY: usize = 10;
/// Cisco's login prompt after a modem CONNECT.
pub const DEFAULT_EXPECT: &str = r"User Access Verification|[Uu]sername: ?$|[Ll]ogin: ?$";

/// Which keys belong to which kind, for "`X` only applies to kind = Y".
fn key_kind(key: &str) -> Option<&'static str> {
    match key {
        "acl_name" | "acl_lines" | "family" | "save" | "safety_net" | "revert_minutes" | "vars" => {
            Some("acl")
        }
        "lines" | "guard_time" => Some("pots"),
        "commands" => Some("exec"),
        "run" => Some("rollback"),
        _ => None,
    }
}

pub(super) fn read_jobs(
    top: &mut Table<'_, '_>,
    doc: &mut Doc<'_>,
    config: &Config,
    declared: &Declared,
) -> Vec<Job> {
    let mut out = Vec::new();
    for (name, value) in top.named_tables(doc, "jobs") {
        let path = format!("jobs.{}", name.value);
        if !valid_name(&name.value) {
            doc.problem(
                name.span.clone(),
                path.clone(),
                "job names may use letters, digits, '-', '_' and '.' only",
                None,
            );
        }
        let Some(mut t) = as_table(doc, value, path.clone(), JOB_KEYS) else {
            continue;
        };
        let kind = t.required_string(
            doc,
            "kind",
            "set kind = \"acl\", \"pots\", \"exec\" or \"rollback\"",
        );
        let kind_name = match kind {
            Some(k) if matches!(k.value.as_str(), "acl" | "pots" | "exec" | "rollback") => {
                Some(k.value)
            }
            Some(k) => {
                doc.problem(
                    k.span,
                    format!("{path}.kind"),
                    format!("unknown job kind \"{}\"", k.value),
                    Some("use \"acl\", \"pots\", \"exec\" or \"rollback\"".into()),
                );
                None
            }
            None => None,
        };
        // Keys of another kind are reported before the kind's own are read.
        if let Some(kind) = &kind_name {
            // The kind-specific keys are those `key_kind` knows.
            for &key in JOB_KEYS.iter().filter(|k| key_kind(k).is_some()) {
                if key_kind(key) != Some(kind.as_str())
                    && let Some(v) = t.raw(key)
                {
                    doc.problem(
                        v.span(),
                        format!("{path}.{key}"),
                        format!(
                            "`{key}` only applies to kind = \"{}\"",
                            key_kind(key).unwrap_or("?")
                        ),
                        Some(format!("remove it from this \"{kind}\" job")),
                    );
                }
            }
        }
        let concurrency = t
            .integer_in(doc, "concurrency", 1..=100_000)
            .map_or(DEFAULT_CONCURRENCY, |c| c.value as usize);
        let caps = read_caps(&mut t, doc, config);
        let max_failures = read_max_failures(&mut t, doc);
        let budget = t
            .duration(doc, "budget")
            .map_or(Duration::from_secs(300), |b| b.value);
        let selectors = t.string_list(doc, "devices");
        let mut template = None;
        let kind = match kind_name.as_deref() {
            Some("acl") => {
                let (kind, source) = super::acl::read_acl(&mut t, doc);
                template = source;
                kind
            }
            Some("pots") => read_pots(&mut t, doc, config, declared),
            Some("exec") => read_exec(&mut t, doc),
            Some("rollback") => read_rollback(&mut t, doc),
            _ => None,
        };
        // `on_drift` belongs to the kinds that change ACLs.
        if let (Some(k), Some(v)) = (
            kind_name
                .as_deref()
                .filter(|k| !matches!(*k, "acl" | "rollback")),
            t.raw("on_drift"),
        ) {
            doc.problem(
                v.span(),
                format!("{path}.on_drift"),
                "`on_drift` only applies to kind = \"acl\" or \"rollback\"",
                Some(format!("remove it from this \"{k}\" job")),
            );
        }
        let mut targets = Vec::new();
        let mut parsed = Vec::new();
        match (&kind, selectors) {
            (Some(JobKind::Pots { lines, .. }), _) => {
                if let Some(v) = t.raw("devices") {
                    doc.problem(
                        v.span(),
                        format!("{path}.devices"),
                        "pots jobs pick their devices through lines[].dialer",
                        Some(
                            "remove `devices`; each [[jobs.NAME.lines]] entry names its dialer"
                                .into(),
                        ),
                    );
                }
                let dialers: HashSet<&str> = lines.iter().map(|l| l.dialer.as_str()).collect();
                targets = config
                    .devices
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| dialers.contains(d.name.as_str()))
                    .map(|(i, _)| i)
                    .collect();
            }
            // A rollback works on the devices its run changed.
            (Some(JobKind::Rollback { .. }), None) => {
                targets = (0..config.devices.len()).collect();
            }
            (Some(_), None) => doc.problem(
                t.span.clone(),
                format!("{path}.devices"),
                "`devices` is missing",
                Some("list selectors: device names, globs like \"BRANCH1_*\", or \"tag:X\"".into()),
            ),
            (_, Some(sel)) => {
                if let Some(v) = t.raw("devices").filter(|_| sel.is_empty()) {
                    doc.problem(
                        v.span(),
                        format!("{path}.devices"),
                        "no selectors",
                        Some("list at least one device name, glob or tag:X".into()),
                    );
                }
                for (i, s) in sel.iter().enumerate() {
                    let one = Selector::parse(&s.value);
                    if !declared.any_match(&one) {
                        doc.problem(s.span.clone(), format!("{path}.devices[{i}]"), format!("selector \"{}\" matches no device", s.value), Some("name an inventory device, a glob such as \"core-*\", or \"tag:X\" with a tag some device has".into()));
                    }
                    parsed.push(one);
                }
                targets = config.select(&parsed);
            }
            (None, None) => {}
        }
        if let Some(JobKind::Acl { family, .. }) = &kind
            && let Some(d) = targets
                .iter()
                .map(|&i| &config.devices[i])
                .find(|d| !family.on(d.platform))
        {
            let span = t.raw("family").map_or(name.span.clone(), |v| v.span());
            doc.problem(
                span,
                t.key_path("family"),
                format!(
                    "{} ({}) has no {} ACLs",
                    d.name,
                    d.platform.name(),
                    family.name()
                ),
                Some("NX-OS filters IPv4 with extended ACLs only: use family = \"extended\" for NX-OS devices, or limit `devices` to IOS".into()),
            );
        }
        t.finish(doc);
        let mut kind = kind;
        if let (Some(JobKind::Acl { per_device, .. }), Some(source)) = (&mut kind, &template) {
            *per_device = super::acl::render_per_device(doc, source, &targets, config);
        }
        if let Some(kind) = kind {
            out.push(Job {
                name: name.value,
                kind,
                selectors: parsed,
                targets,
                concurrency,
                caps,
                max_failures,
                budget,
            });
        }
    }
    out
}

/// `caps = { "tag:site-fra" = 4 }`: per-group concurrency limits.
fn read_caps(t: &mut Table<'_, '_>, doc: &mut Doc<'_>, config: &Config) -> Vec<(Selector, usize)> {
    let mut out = Vec::new();
    let Some(v) = t.raw("caps") else { return out };
    let path = t.key_path("caps");
    let toml::de::DeValue::Table(table) = v.get_ref() else {
        doc.problem(
            v.span(),
            path,
            "expected a table of selector = limit",
            Some("e.g. caps = { \"tag:site-fra\" = 4 }".into()),
        );
        return out;
    };
    for (k, val) in table.iter() {
        let sel = Selector::parse(k.get_ref());
        match val.get_ref() {
            toml::de::DeValue::Integer(i) => match i.as_str().parse::<usize>() {
                Ok(n) if n >= 1 => {
                    if config.select(std::slice::from_ref(&sel)).is_empty() {
                        doc.problem(
                            k.span(),
                            format!("{path}.{}", k.get_ref()),
                            format!("selector \"{}\" matches no device", k.get_ref()),
                            None,
                        );
                    }
                    out.push((sel, n));
                }
                _ => doc.problem(
                    val.span(),
                    format!("{path}.{}", k.get_ref()),
                    "a cap is a whole number of at least 1",
                    None,
                ),
            },
            _ => doc.problem(
                val.span(),
                format!("{path}.{}", k.get_ref()),
                "a cap is a whole number of at least 1",
                None,
            ),
        }
    }
    out
}

/// `max_failures = 3` or `max_failures = "10%"`.
fn read_max_failures(t: &mut Table<'_, '_>, doc: &mut Doc<'_>) -> Option<MaxFailures> {
    let v = t.raw("max_failures")?;
    let path = t.key_path("max_failures");
    let hint = Some(
        "write a count (max_failures = 3) or a share of the tier (max_failures = \"10%\")"
            .to_string(),
    );
    match v.get_ref() {
        toml::de::DeValue::Integer(i) => match i.as_str().parse::<usize>() {
            Ok(n) => Some(MaxFailures::Count(n)),
            Err(_) => {
                doc.problem(v.span(), path, "not a count", hint);
                None
            }
        },
        toml::de::DeValue::String(s) => match s
            .strip_suffix('%')
            .and_then(|p| p.trim().parse::<f64>().ok())
            .filter(|p| (0.0..=100.0).contains(p))
        {
            Some(p) => Some(MaxFailures::Percent(p)),
            None => {
                doc.problem(v.span(), path, format!("\"{s}\" is not a percentage"), hint);
                None
            }
        },
        _ => {
            doc.problem(v.span(), path, "expected a count or a percentage", hint);
            None
        }
    }
}

/// `on_drift = "skip" | "proceed"` (default skip).
pub(super) fn read_on_drift(t: &mut Table<'_, '_>, doc: &mut Doc<'_>) -> OnDrift {
    match t.string(doc, "on_drift") {
        None => OnDrift::Skip,
        Some(v) => match v.value.as_str() {
            "skip" => OnDrift::Skip,
            "proceed" => OnDrift::Proceed,
            other => {
                doc.problem(
                    v.span,
                    t.key_path("on_drift"),
                    format!("unknown on_drift \"{other}\""),
                    Some("use \"skip\" (a device changed since the plan is left alone) or \"proceed\" (it is replaced anyway)".into()),
                );
                OnDrift::Skip
            }
        },
    }
}

/// `kind = "rollback"`: `run = "RUN_ID"` from the history.
fn read_rollback(t: &mut Table<'_, '_>, doc: &mut Doc<'_>) -> Option<JobKind> {
    let run = t.required_string(
        doc,
        "run",
        "name the run to roll back, as `nightshift report list` shows it: run = \"nightly-20261204T2200Z\"",
    );
    if let Some(r) = &run
        && !super::valid_name(&r.value)
    {
        doc.problem(
            r.span.clone(),
            t.key_path("run"),
            format!("\"{}\" is not a run id", r.value),
            Some("copy the id from `nightshift report list`".into()),
        );
    }
    let on_drift = read_on_drift(t, doc);
    Some(JobKind::Rollback {
        run: run?.value,
        on_drift,
    })
}

fn read_exec(t: &mut Table<'_, '_>, doc: &mut Doc<'_>) -> Option<JobKind> {
    if !t.contains("commands") {
        doc.problem(
            t.span.clone(),
            t.key_path("commands"),
            "`commands` is missing",
            Some("list show commands, e.g. commands = [\"show version\"]".into()),
        );
        return None;
    }
    let commands = t.string_list(doc, "commands")?;
    const READ_ONLY: &[&str] = &["show", "sh", "dir", "ping", "traceroute", "more"];
    for (i, c) in commands.iter().enumerate() {
        let first = c
            .value
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !READ_ONLY.contains(&first.as_str()) {
            doc.problem(c.span.clone(), format!("{}[{i}]", t.key_path("commands")), format!("\"{}\" is not a read-only command", c.value), Some("exec jobs run show commands only (show, dir, ping, traceroute, more); changes go through an acl job".into()));
        }
    }
    if commands.is_empty() {
        doc.problem(t.span.clone(), t.key_path("commands"), "no commands", None);
    }
    Some(JobKind::Exec {
        commands: commands.into_iter().map(|c| c.value).collect(),
    })
}

fn read_pots(
    t: &mut Table<'_, '_>,
    doc: &mut Doc<'_>,
    config: &Config,
    declared: &Declared,
) -> Option<JobKind> {
    let path = t.key_path("lines");
    if !t.contains("lines") {
        doc.problem(
            t.span.clone(),
            path,
            "`lines` is missing",
            Some("add [[jobs.NAME.lines]] entries with branch, dialer, line and number".into()),
        );
        return None;
    }
    let items = t.array_of_tables(doc, "lines")?;
    let number = Regex::new(r"^[0-9*#,wW+\- ]+$").ok()?;
    let mut branches = HashSet::new();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(mut l) = as_table(doc, item, p.clone(), LINE_KEYS) else {
            continue;
        };
        let branch = l.required_string(
            doc,
            "branch",
            "name the branch this line tests, e.g. branch = \"branch-017\"",
        );
        if let Some(b) = &branch
            && !branches.insert(b.value.clone())
        {
            doc.problem(
                b.span.clone(),
                format!("{p}.branch"),
                format!("branch \"{}\" is listed twice in this job", b.value),
                Some("each branch is dialled once per run; remove the duplicate".into()),
            );
        }
        let dialer = l.required_string(
            doc,
            "dialer",
            "name the inventory device whose modem line places the call, e.g. dialer = \"hub-1\"",
        );
        if let Some(d) = &dialer {
            match config.device(&d.value) {
                None if declared.has(&d.value) => {}
                None => doc.problem(
                    d.span.clone(),
                    format!("{p}.dialer"),
                    format!("dialer \"{}\" is not in the inventory", d.value),
                    Some("add the hub router under [[devices]] or fix the name".into()),
                ),
                Some(dev) if dev.platform != Platform::CiscoIos => doc.problem(
                    d.span.clone(),
                    format!("{p}.dialer"),
                    format!(
                        "dialer \"{}\" is {}; modem lines are dialled from IOS routers",
                        d.value, dev.platform
                    ),
                    None,
                ),
                Some(_) => {}
            }
        }
        let line = if l.contains("line") {
            l.integer_in(doc, "line", 0..=9_999)
        } else {
            doc.problem(l.span.clone(), format!("{p}.line"), "`line` is missing", Some("the tty number of the modem line on the dialer (see `show line`), e.g. line = 33".into()));
            None
        };
        let num = l.required_string(
            doc,
            "number",
            "the branch modem's phone number, e.g. number = \"5550117\"",
        );
        if let Some(n) = &num
            && !number.is_match(&n.value)
        {
            doc.problem(
                n.span.clone(),
                format!("{p}.number"),
                format!("\"{}\" is not a phone number", n.value),
                Some("use digits and the dial modifiers * # , W + - only".into()),
            );
        }
        let expect = match l.string(doc, "expect") {
            Some(e) => match Regex::new(&e.value) {
                Ok(_) => e.value,
                Err(err) => {
                    doc.problem(
                        e.span,
                        format!("{p}.expect"),
                        format!("not a valid regular expression: {err}"),
                        None,
                    );
                    String::new()
                }
            },
            None => DEFAULT_EXPECT.to_string(),
        };
        let timeout = l
            .duration(doc, "timeout")
            .map_or(Duration::from_secs(90), |d| d.value);
        let retries = l
            .integer_in(doc, "retries", 0..=10)
            .map_or(0, |r| r.value as u32);
        let retry_pause = l
            .duration(doc, "retry_pause")
            .map_or(Duration::from_secs(30), |d| d.value);
        l.finish(doc);
        if let (Some(branch), Some(dialer), Some(line), Some(num)) = (branch, dialer, line, num) {
            out.push(PotsLine {
                branch: branch.value,
                dialer: dialer.value,
                line: line.value as u32,
                number: num.value,
                expect,
                timeout,
                retries,
                retry_pause,
            });
        }
    }
    if items.is_empty() {
        doc.problem(t.span.clone(), path, "no lines to test", None);
    }
    let guard_time = t
        .duration(doc, "guard_time")
        .map_or(Duration::from_secs(1), |g| g.value);
    Some(JobKind::Pots {
        lines: out,
        guard_time,
    })
}
