//! `[jump_hosts.NAME]`: bastions, and which devices go through which (the
//! device's `jump`, else a jump host's `tags`, else `[ssh] jump`). Unknown
//! names and loops are reported where they are written.

use std::ops::Range;
use std::path::PathBuf;

use super::super::doc::{At, Doc, Table, as_table, closest};
use super::super::{Device, JumpAuth, JumpHost, SshSettings};
use super::{ssh_keys, valid_name};

const JUMP_KEYS: &[&str] = &[
    "host",
    "port",
    "username",
    "key_file",
    "credentials",
    "jump",
    "tags",
    "connect_timeout",
    "known_hosts",
    "host_key_policy",
    "algorithms",
];

/// A device's own `jump` as written, and the device's key path.
pub type OwnJump = (At<String>, String);

/// A value that means "directly, whatever `[ssh]` or the tags say".
pub const DIRECT: &str = "none";

/// A jump host as read, with where its references are written.
pub struct JumpAt {
    pub host: JumpHost,
    via_span: Option<Range<usize>>,
}

pub fn read_jump_hosts(
    top: &mut Table<'_, '_>,
    doc: &mut Doc<'_>,
    ssh: &SshSettings,
    profiles: &[String],
) -> Vec<JumpAt> {
    let mut out = Vec::new();
    for (name, value) in top.named_tables(doc, "jump_hosts") {
        let path = format!("jump_hosts.{}", name.value);
        if !valid_name(&name.value) || name.value == DIRECT {
            doc.problem(
                name.span.clone(),
                path.clone(),
                "jump host names may use letters, digits, '-', '_' and '.' only, and not be \"none\"",
                None,
            );
        }
        let Some(mut t) = as_table(doc, value, path.clone(), JUMP_KEYS) else {
            continue;
        };
        let host = t.required_string(
            doc,
            "host",
            "name the bastion's address, e.g. host = \"192.0.2.10\"",
        );
        let port = t
            .integer_in(doc, "port", 1..=65535)
            .map_or(22, |p| p.value as u16);
        let username = t.string(doc, "username");
        let key_file = t.string(doc, "key_file");
        let credentials = t.string(doc, "credentials");
        let auth = match (key_file, credentials) {
            (Some(k), None) => match username {
                Some(u) => Some(JumpAuth::Key {
                    username: u.value,
                    file: PathBuf::from(k.value),
                }),
                None => {
                    doc.problem(
                        k.span,
                        format!("{path}.username"),
                        "a key_file needs the user to log in as",
                        Some("add username = \"...\"".into()),
                    );
                    None
                }
            },
            (None, Some(c)) => {
                if profiles.contains(&c.value) {
                    Some(JumpAuth::Profile(c.value))
                } else {
                    doc.problem(
                        c.span,
                        format!("{path}.credentials"),
                        format!("unknown credential profile \"{}\"", c.value),
                        Some(format!("use one of: {}", profiles.join(", "))),
                    );
                    None
                }
            }
            (Some(k), Some(_)) => {
                doc.problem(
                    k.span,
                    format!("{path}.key_file"),
                    "give either key_file or credentials, not both",
                    None,
                );
                None
            }
            (None, None) => {
                doc.problem(
                    t.span.clone(),
                    path.clone(),
                    "no way to log in to the jump host",
                    Some(
                        "add key_file = \"/etc/nightshift/bastion_ed25519\" and username, or credentials = \"PROFILE\""
                            .into(),
                    ),
                );
                None
            }
        };
        let via = t.string(doc, "jump");
        let tags = t
            .string_list(doc, "tags")
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.value)
            .collect();
        let mut settings = ssh_keys(&mut t, doc, ssh);
        // A bastion's own settings never chain through `[ssh] jump`.
        settings.command_timeout = ssh.command_timeout;
        t.finish(doc);
        if let (Some(host), Some(auth)) = (host, auth) {
            let via_span = via.as_ref().map(|v| v.span.clone());
            out.push(JumpAt {
                host: JumpHost {
                    name: name.value,
                    host: host.value,
                    port,
                    auth,
                    ssh: settings,
                    via: via.map(|v| v.value).filter(|v| v != DIRECT),
                    tags,
                },
                via_span,
            });
        }
    }
    check_chains(doc, &out);
    out
}

fn unknown(doc: &mut Doc<'_>, at: &At<String>, key: String, names: &[&str]) {
    let hint = match closest(&at.value, names) {
        Some(c) => format!("did you mean \"{c}\"? (or \"none\": directly)"),
        None if names.is_empty() => "define it as a [jump_hosts.NAME] table".into(),
        None => format!("use one of: {}, or \"none\"", names.join(", ")),
    };
    doc.problem(
        at.span.clone(),
        key,
        format!("unknown jump host \"{}\"", at.value),
        Some(hint),
    );
}

/// Every `jump` of a jump host names one that exists, and no chain comes
/// back to where it started.
fn check_chains(doc: &mut Doc<'_>, hosts: &[JumpAt]) {
    let names: Vec<&str> = hosts.iter().map(|h| h.host.name.as_str()).collect();
    for h in hosts {
        let (Some(via), Some(span)) = (&h.host.via, &h.via_span) else {
            continue;
        };
        let key = format!("jump_hosts.{}.jump", h.host.name);
        if !names.contains(&via.as_str()) {
            let at = At {
                value: via.clone(),
                span: span.clone(),
            };
            unknown(doc, &at, key, &names);
            continue;
        }
        let mut seen = vec![h.host.name.as_str()];
        let mut next = Some(via.as_str());
        while let Some(n) = next {
            if seen.contains(&n) {
                seen.push(n);
                doc.problem(
                    span.clone(),
                    key.clone(),
                    format!("jump hosts form a loop: {}", seen.join(" -> ")),
                    Some("one of them must be reached directly (remove its `jump`)".into()),
                );
                break;
            }
            seen.push(n);
            next = hosts
                .iter()
                .find(|x| x.host.name == n)
                .and_then(|x| x.host.via.as_deref());
        }
    }
}

/// Each device's jump host: its own `jump`, else the first jump host
/// whose `tags` it carries, else `[ssh] jump`. Unknown names are reported.
pub fn resolve(
    doc: &mut Doc<'_>,
    hosts: &[JumpAt],
    default: Option<&At<String>>,
    devices: &mut [(Device, Option<OwnJump>)],
) {
    let names: Vec<&str> = hosts.iter().map(|h| h.host.name.as_str()).collect();
    let check = |doc: &mut Doc<'_>, at: &At<String>, key: String| -> Option<String> {
        if at.value == DIRECT {
            None
        } else if names.contains(&at.value.as_str()) {
            Some(at.value.clone())
        } else {
            unknown(doc, at, key, &names);
            None
        }
    };
    let fallback = default.and_then(|d| check(doc, d, "ssh.jump".into()));
    for (device, own) in devices.iter_mut() {
        device.jump = match own {
            Some((at, path)) => check(doc, at, format!("{path}.jump")),
            None => hosts
                .iter()
                .find(|h| h.host.tags.iter().any(|t| device.tags.contains(t)))
                .map(|h| h.host.name.clone())
                .or_else(|| fallback.clone()),
        };
    }
}
