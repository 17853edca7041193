//! Second pass: from the spanned TOML tree to a validated [`Config`],
//! recording every problem on the way.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use toml::de::DeTable;

use super::doc::{At, Doc, Problem, Table, as_table};
use super::{
    AlgorithmProfile, Config, CredentialProfile, DEFAULT_MAIL_MAX_SIZE, Device, HostKeyPolicy,
    MailSettings, MailTls, SshSettings,
};
use crate::platform::Platform;
use crate::schedule::parse_zone;

mod acl;
mod daemon;
mod jobs;
pub use jobs::DEFAULT_CONCURRENCY;
mod jump;
mod vars;
mod windows;

use daemon::read_daemon;

const TOP_KEYS: &[&str] = &[
    "version",
    "daemon",
    "ssh",
    "credentials",
    "mail",
    "devices",
    "jobs",
    "windows",
    "jump_hosts",
    "tags",
];
const SSH_KEYS: &[&str] = &[
    "connect_timeout",
    "command_timeout",
    "known_hosts",
    "host_key_policy",
    "algorithms",
    "jump",
];
const CREDENTIAL_KEYS: &[&str] = &["username", "canary"];
const MAIL_KEYS: &[&str] = &[
    "relay",
    "port",
    "tls",
    "from",
    "to",
    "username",
    "timeout",
    "ca_file",
    "max_size_kb",
];
const DEVICE_KEYS: &[&str] = &[
    "name",
    "host",
    "port",
    "platform",
    "credentials",
    "tier",
    "tags",
    "connect_timeout",
    "command_timeout",
    "known_hosts",
    "host_key_policy",
    "algorithms",
    "jump",
    "vars",
];

pub const DEFAULT_STATE_DIR: &str = "/var/lib/nightshift";

/// Reads an enum-like string: one of `options`, reported with the list.
fn choice<T: Copy>(
    t: &mut Table<'_, '_>,
    doc: &mut Doc<'_>,
    key: &str,
    options: &[(&str, T)],
) -> Option<T> {
    let at = t.string(doc, key)?;
    if let Some((_, v)) = options.iter().find(|(n, _)| *n == at.value) {
        return Some(*v);
    }
    let names: Vec<String> = options.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    doc.problem(
        at.span,
        t.key_path(key),
        format!("\"{}\" is not one of {}", at.value, names.join(", ")),
        Some(format!("use one of {}", names.join(", "))),
    );
    None
}

fn zone(t: &mut Table<'_, '_>, doc: &mut Doc<'_>, key: &str) -> Option<Tz> {
    let at = t.string(doc, key)?;
    match parse_zone(&at.value) {
        Ok(z) => Some(z),
        Err(e) => {
            doc.problem(
                at.span,
                t.key_path(key),
                e.to_string(),
                Some(
                    "use an IANA zone name such as \"Europe/Berlin\", \"America/New_York\" or \"UTC\""
                        .into(),
                ),
            );
            None
        }
    }
}

const POLICIES: &[(&str, HostKeyPolicy)] = &[
    ("strict", HostKeyPolicy::Strict),
    ("accept-new", HostKeyPolicy::AcceptNew),
];
const PROFILES: &[(&str, AlgorithmProfile)] = &[
    ("modern", AlgorithmProfile::Modern),
    ("legacy", AlgorithmProfile::Legacy),
];

/// Applies the `[ssh]` keys present in `t` on top of `base` (used for both
/// `[ssh]` itself and a device's overrides).
fn ssh_keys(t: &mut Table<'_, '_>, doc: &mut Doc<'_>, base: &SshSettings) -> SshSettings {
    let mut s = base.clone();
    if let Some(d) = t.duration(doc, "connect_timeout") {
        s.connect_timeout = d.value;
    }
    if let Some(d) = t.duration(doc, "command_timeout") {
        s.command_timeout = d.value;
    }
    if let Some(p) = t.string(doc, "known_hosts") {
        s.known_hosts = PathBuf::from(p.value);
    }
    if let Some(p) = choice(t, doc, "host_key_policy", POLICIES) {
        s.host_key_policy = p;
    }
    if let Some(a) = choice(t, doc, "algorithms", PROFILES) {
        s.algorithms = a;
    }
    s
}

pub(super) fn read(file: &str, src: &str, now: DateTime<Utc>) -> Result<Config, Vec<Problem>> {
    let mut doc = Doc::new(file, src);
    let (root, errors) = DeTable::parse_recoverable(src);
    if !errors.is_empty() {
        // Syntax errors first and alone: a half-parsed tree would only add
        // misleading follow-on problems.
        for e in errors {
            doc.problem(
                e.span().unwrap_or(0..0),
                "",
                format!("TOML syntax: {}", e.message().trim()),
                Some("fix the TOML syntax here (quote strings, one key per line)".into()),
            );
        }
        return Err(doc.into_problems());
    }
    let mut top = Table::new(root.get_ref(), "", root.span(), TOP_KEYS);

    match top.integer(&mut doc, "version") {
        Some(v) if v.value == 1 => {}
        Some(v) => {
            doc.problem(
                v.span,
                "version",
                format!("unsupported config version {}", v.value),
                Some("this nightshift reads `version = 1`".into()),
            );
            return Err(doc.into_problems());
        }
        None if !top.contains("version") => doc.problem(
            0..0,
            "version",
            "`version` is missing",
            Some("start the file with `version = 1`".into()),
        ),
        None => {}
    }

    let daemon = read_daemon(&mut top, &mut doc);
    let defaults = SshSettings {
        connect_timeout: Duration::from_secs(10),
        command_timeout: Duration::from_secs(30),
        known_hosts: daemon.state_dir.join("known_hosts"),
        host_key_policy: HostKeyPolicy::Strict,
        algorithms: AlgorithmProfile::Modern,
    };
    let (ssh, default_jump) = match top.table(&mut doc, "ssh", SSH_KEYS) {
        Some(mut t) => {
            let s = ssh_keys(&mut t, &mut doc, &defaults);
            let jump = t.string(&mut doc, "jump");
            t.finish(&mut doc);
            (s, jump)
        }
        None => (defaults, None),
    };
    let profiles = read_credentials(&mut top, &mut doc);
    let mail = read_mail(&mut top, &mut doc);
    let profile_names: Vec<String> = profiles.iter().map(|p| p.profile.name.clone()).collect();
    let jump_hosts = jump::read_jump_hosts(&mut top, &mut doc, &ssh, &profile_names);
    let mut declared = Declared::default();
    let devices = read_devices(&mut top, &mut doc, &ssh, &profiles, &mut declared);
    check_canaries(&mut doc, &profiles, &devices, &declared, &jump_hosts);
    let mut devices: Vec<_> = devices.into_iter().map(|d| (d.device, d.jump)).collect();
    jump::resolve(&mut doc, &jump_hosts, default_jump.as_ref(), &mut devices);

    let mut config = Config {
        source: PathBuf::from(file),
        daemon,
        ssh,
        credentials: profiles.into_iter().map(|p| p.profile).collect(),
        mail,
        devices: devices.into_iter().map(|(d, _)| d).collect(),
        jobs: Vec::new(),
        windows: Vec::new(),
        jump_hosts: jump_hosts.into_iter().map(|j| j.host).collect(),
        tag_vars: read_tags(&mut top, &mut doc, &declared),
    };
    config.jobs = jobs::read_jobs(&mut top, &mut doc, &config, &declared);
    config.windows = windows::read_windows(&mut top, &mut doc, &config, now);
    top.finish(&mut doc);

    if doc.has_problems() {
        Err(doc.into_problems())
    } else {
        Ok(config)
    }
}

/// `[tags.NAME]`: `vars` for the devices with tag NAME.
fn read_tags(
    top: &mut Table<'_, '_>,
    doc: &mut Doc<'_>,
    declared: &Declared,
) -> std::collections::BTreeMap<String, vars::Vars> {
    let mut out = std::collections::BTreeMap::new();
    for (name, value) in top.named_tables(doc, "tags") {
        let path = format!("tags.{}", name.value);
        if !declared
            .devices
            .iter()
            .any(|(_, tags)| tags.contains(&name.value))
        {
            doc.problem(
                name.span.clone(),
                path.clone(),
                format!("no device has tag \"{}\"", name.value),
                Some("add it to some device's `tags`, or fix the name".into()),
            );
        }
        let Some(mut t) = as_table(doc, value, path, &["vars"]) else {
            continue;
        };
        let vars = vars::read_vars(&mut t, doc);
        t.finish(doc);
        out.insert(name.value, vars);
    }
    out
}

struct ProfileAt {
    profile: CredentialProfile,
    canary_span: std::ops::Range<usize>,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn read_credentials(top: &mut Table<'_, '_>, doc: &mut Doc<'_>) -> Vec<ProfileAt> {
    let mut out = Vec::new();
    for (name, value) in top.named_tables(doc, "credentials") {
        let path = format!("credentials.{}", name.value);
        if !valid_name(&name.value) {
            doc.problem(
                name.span.clone(),
                path.clone(),
                "profile names may use letters, digits, '-', '_' and '.' only",
                None,
            );
        }
        let Some(mut t) = as_table(doc, value, path, CREDENTIAL_KEYS) else {
            continue;
        };
        let username = t.string(doc, "username").map(|u| u.value);
        let canary = t.required_string(
            doc,
            "canary",
            "name the one inventory device on which a login is tried first, e.g. canary = \"core-1\"",
        );
        t.finish(doc);
        if let Some(canary) = canary {
            out.push(ProfileAt {
                profile: CredentialProfile {
                    name: name.value,
                    username,
                    canary: canary.value,
                },
                canary_span: canary.span,
            });
        }
    }
    out
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn plausible_address(a: &str) -> bool {
    let mut parts = a.rsplitn(2, '@');
    let domain = parts.next().unwrap_or_default();
    let local = parts.next().unwrap_or_default();
    !local.is_empty() && !domain.is_empty() && !a.contains(char::is_whitespace)
}

fn read_mail(top: &mut Table<'_, '_>, doc: &mut Doc<'_>) -> Option<MailSettings> {
    let mut t = top.table(doc, "mail", MAIL_KEYS)?;
    let relay = t.required_string(
        doc,
        "relay",
        "name the SMTP relay, e.g. relay = \"smtp.example.net\"",
    );
    let tls = choice(
        &mut t,
        doc,
        "tls",
        &[
            ("starttls", MailTls::StartTls),
            ("tls", MailTls::Tls),
            ("none", MailTls::None),
        ],
    )
    .unwrap_or(MailTls::StartTls);
    let default_port = match tls {
        MailTls::StartTls => 587,
        MailTls::Tls => 465,
        MailTls::None => 25,
    };
    let port = t
        .integer_in(doc, "port", 1..=65535)
        .map_or(default_port, |p| p.value as u16);
    let from = t.required_string(
        doc,
        "from",
        "set the sender, e.g. from = \"nightshift@example.net\"",
    );
    let to = if t.contains("to") {
        t.string_list(doc, "to").unwrap_or_default()
    } else {
        doc.problem(
            t.span.clone(),
            "mail.to",
            "`to` is missing",
            Some("list the recipients, e.g. to = [\"netops@example.net\"]".into()),
        );
        Vec::new()
    };
    if t.contains("to")
        && to.is_empty()
        && let Some(v) = t.raw("to")
    {
        doc.problem(
            v.span(),
            "mail.to",
            "no recipients",
            Some("add at least one address".into()),
        );
    }
    for (i, a) in to.iter().enumerate() {
        if !plausible_address(&a.value) {
            doc.problem(
                a.span.clone(),
                format!("mail.to[{i}]"),
                format!("\"{}\" is not a mail address", a.value),
                None,
            );
        }
    }
    if let Some(f) = &from
        && !plausible_address(&f.value)
    {
        doc.problem(
            f.span.clone(),
            "mail.from",
            format!("\"{}\" is not a mail address", f.value),
            None,
        );
    }
    if let (Some(r), MailTls::None) = (&relay, tls)
        && !is_loopback(&r.value)
    {
        doc.problem(
                r.span.clone(),
                "mail.relay",
                "plain SMTP (tls = \"none\") would send reports unencrypted over the network",
                Some("use tls = \"starttls\" (port 587) or \"tls\" (465); \"none\" is only for a relay on 127.0.0.1".into()),
            );
    }
    let username = t.string(doc, "username").map(|u| u.value);
    let timeout = t
        .duration(doc, "timeout")
        .map_or(Duration::from_secs(30), |d| d.value);
    let ca_file = t.string(doc, "ca_file").map(|p| PathBuf::from(p.value));
    let max_size = t
        .integer_in(doc, "max_size_kb", 100..=1_000_000)
        .map_or(DEFAULT_MAIL_MAX_SIZE, |m| m.value as usize * 1000);
    t.finish(doc);
    Some(MailSettings {
        relay: relay?.value,
        port,
        tls,
        from: from?.value,
        to: to.into_iter().map(|a| a.value).collect(),
        username,
        timeout,
        ca_file,
        max_size,
    })
}

struct DeviceAt {
    device: Device,
    /// Its own `jump`, and the device's key path.
    jump: Option<(At<String>, String)>,
}

/// Every device entry that has a name, valid or not, so that references to
/// a device with some other problem are not reported a second time.
#[derive(Default)]
pub(super) struct Declared {
    pub devices: Vec<(String, Vec<String>)>,
}

impl Declared {
    pub fn has(&self, name: &str) -> bool {
        self.devices.iter().any(|(n, _)| n == name)
    }

    pub fn any_match(&self, selector: &super::Selector) -> bool {
        self.devices
            .iter()
            .any(|(n, tags)| selector.matches(n, tags))
    }
}

fn read_devices(
    top: &mut Table<'_, '_>,
    doc: &mut Doc<'_>,
    ssh: &SshSettings,
    profiles: &[ProfileAt],
    declared: &mut Declared,
) -> Vec<DeviceAt> {
    let Some(items) = top.array_of_tables(doc, "devices") else {
        return Vec::new();
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("devices[{i}]");
        let Some(mut t) = as_table(doc, item, path.clone(), DEVICE_KEYS) else {
            continue;
        };
        let name = t.required_string(
            doc,
            "name",
            "give every device a unique name, e.g. name = \"core-1\"",
        );
        if let Some(n) = &name {
            let line = doc.locate(n.span.start).line;
            if !valid_name(&n.value) {
                doc.problem(
                    n.span.clone(),
                    format!("{path}.name"),
                    "device names may use letters, digits, '-', '_' and '.' only",
                    None,
                );
            } else if let Some(first) = seen.insert(n.value.clone(), line) {
                doc.problem(
                    n.span.clone(),
                    format!("{path}.name"),
                    format!(
                        "duplicate device name \"{}\" (first defined on line {first})",
                        n.value
                    ),
                    Some("device names must be unique; rename or remove one of them".into()),
                );
            }
        }
        let host = t.required_string(
            doc,
            "host",
            "set the address or DNS name to connect to, e.g. host = \"192.0.2.10\"",
        );
        if let Some(h) = &host
            && (h.value.trim().is_empty() || h.value.contains(char::is_whitespace))
        {
            doc.problem(
                h.span.clone(),
                format!("{path}.host"),
                "not a host name or address",
                None,
            );
        }
        let port = t
            .integer_in(doc, "port", 1..=65535)
            .map_or(22, |p| p.value as u16);
        let platform = if t.contains("platform") {
            let p = t.string(doc, "platform");
            p.and_then(|p| match Platform::from_name(&p.value) {
                Some(pl) => Some(pl),
                None => {
                    doc.problem(
                        p.span,
                        format!("{path}.platform"),
                        format!("unknown platform \"{}\"", p.value),
                        Some(format!("use one of \"{}\"", Platform::NAMES.join("\", \""))),
                    );
                    None
                }
            })
        } else {
            doc.problem(
                t.span.clone(),
                format!("{path}.platform"),
                "`platform` is missing",
                Some("set platform = \"cisco_ios\" or \"cisco_nxos\"".into()),
            );
            None
        };
        let credentials = match t.string(doc, "credentials") {
            Some(c) => {
                if !profiles.iter().any(|p| p.profile.name == c.value) {
                    let known: Vec<&str> =
                        profiles.iter().map(|p| p.profile.name.as_str()).collect();
                    doc.problem(
                        c.span,
                        format!("{path}.credentials"),
                        format!("unknown credential profile \"{}\"", c.value),
                        Some(if known.is_empty() {
                            "define it as a [credentials.NAME] table with a canary device".into()
                        } else {
                            format!(
                                "define [credentials.{}] or use one of: {}",
                                c.value,
                                known.join(", ")
                            )
                        }),
                    );
                    None
                } else {
                    Some(c.value)
                }
            }
            None if profiles.len() == 1 => Some(profiles[0].profile.name.clone()),
            None => {
                doc.problem(
                    t.span.clone(),
                    format!("{path}.credentials"),
                    "`credentials` is missing",
                    Some(if profiles.is_empty() {
                        "define a [credentials.NAME] profile and name it here".into()
                    } else {
                        "several credential profiles exist: name the one this device uses".into()
                    }),
                );
                None
            }
        };
        let tier = t
            .integer_in(doc, "tier", 0..=10_000)
            .map_or(1, |v| v.value as u32);
        let tags = t.string_list(doc, "tags").unwrap_or_default();
        if let Some(n) = &name {
            declared.devices.push((
                n.value.clone(),
                tags.iter().map(|t| t.value.clone()).collect(),
            ));
        }
        let device_ssh = ssh_keys(&mut t, doc, ssh);
        let jump = t.string(doc, "jump").map(|j| (j, path.clone()));
        let vars = vars::read_vars(&mut t, doc);
        t.finish(doc);
        if let (Some(name), Some(host), Some(platform), Some(credentials)) =
            (name, host, platform, credentials)
        {
            out.push(DeviceAt {
                device: Device {
                    name: name.value,
                    host: host.value,
                    port,
                    platform,
                    credentials,
                    tier,
                    tags: tags.into_iter().map(|t| t.value).collect(),
                    ssh: device_ssh,
                    jump: None,
                    vars,
                },
                jump,
            });
        }
    }
    out
}

fn check_canaries(
    doc: &mut Doc<'_>,
    profiles: &[ProfileAt],
    devices: &[DeviceAt],
    declared: &Declared,
    jump_hosts: &[jump::JumpAt],
) {
    for p in profiles {
        let key = format!("credentials.{}.canary", p.profile.name);
        // A jump host that logs in with this profile proves it too.
        if let Some(j) = jump_hosts.iter().find(|j| j.host.name == p.profile.canary) {
            if j.host.auth != crate::config::JumpAuth::Profile(p.profile.name.clone()) {
                doc.problem(
                    p.canary_span.clone(),
                    key,
                    format!(
                        "jump host \"{}\" does not log in with profile \"{}\", so it cannot prove it",
                        j.host.name, p.profile.name
                    ),
                    Some(format!("set credentials = \"{}\" on the jump host, or name a device", p.profile.name)),
                );
            }
            continue;
        }
        match devices.iter().find(|d| d.device.name == p.profile.canary) {
            // Declared but invalid: its own problems are already reported.
            None if declared.has(&p.profile.canary) => {}
            None => doc.problem(
                p.canary_span.clone(),
                key,
                format!("canary \"{}\" is not in the inventory", p.profile.canary),
                Some(if declared.devices.is_empty() {
                    "add the device under [[devices]]".into()
                } else {
                    "name a device defined under [[devices]] that uses this profile".into()
                }),
            ),
            Some(d) if d.device.credentials != p.profile.name => doc.problem(
                p.canary_span.clone(),
                key,
                format!(
                    "canary \"{}\" logs in with profile \"{}\", so it cannot prove \"{}\"",
                    p.profile.canary, d.device.credentials, p.profile.name
                ),
                Some("choose a canary device whose `credentials` is this profile".into()),
            ),
            Some(_) => {}
        }
    }
}
