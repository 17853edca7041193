//! Configuration mode: commands applied to a [`RunningConfig`], shared by
//! IOS and NX-OS where they agree. Pure over the config so that an NX-OS
//! `configure session` can check commands on a scratch copy and `commit`
//! them all at once.

use super::acl::{Acl, AclKind, Dialect, Entry, parse_entry};
use super::cli::{ConfigMode, Words, abbrev, choose};
use super::device::{Interface, RunningConfig};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyError {
    Invalid(usize),
    Incomplete,
    Ambiguous(usize),
    /// A message the device prints as is.
    Message(String),
}

/// Canonical interface name for what the user typed (`gi0/1`, `e1/1`).
pub fn find_interface(rc: &RunningConfig, typed: &str) -> Option<String> {
    let lower = typed.to_ascii_lowercase();
    let split = lower.find(|c: char| c.is_ascii_digit())?;
    let (kind, num) = lower.split_at(split);
    rc.interfaces
        .iter()
        .find(|i| {
            let name = i.name.to_ascii_lowercase();
            let s = name
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(name.len());
            let (ik, inum) = name.split_at(s);
            inum == num.trim() && !kind.trim().is_empty() && ik.starts_with(kind.trim())
        })
        .map(|i| i.name.clone())
}

fn is_acl_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Applies one configuration line in `mode`. Returns the new mode (if it
/// changes) and any output.
pub fn apply(
    rc: &mut RunningConfig,
    mode: &ConfigMode,
    w: &Words<'_>,
    dialect: Dialect,
) -> Result<(Option<ConfigMode>, String), ApplyError> {
    let sub = match mode {
        ConfigMode::Global => Err(ApplyError::Invalid(0)),
        ConfigMode::Interface(name) => apply_interface(rc, name, w),
        ConfigMode::Acl(kind, name) => apply_acl(rc, *kind, name, w, dialect),
        ConfigMode::Line => apply_line(rc, w),
        ConfigMode::Archive => apply_archive(rc, w),
    };
    match sub {
        // Like IOS, an unknown sub-mode command is tried as a global one.
        Err(ApplyError::Invalid(0)) => apply_global(rc, w, dialect),
        other => other,
    }
}

fn apply_global(
    rc: &mut RunningConfig,
    w: &Words<'_>,
    dialect: Dialect,
) -> Result<(Option<ConfigMode>, String), ApplyError> {
    let first = w.get(0).ok_or(ApplyError::Incomplete)?;
    let (negate, base) = if first.eq_ignore_ascii_case("no") {
        (true, 1)
    } else {
        (false, 0)
    };
    let kw = w.get(base).ok_or(ApplyError::Incomplete)?;
    let choices: &[(&str, usize)] = &[
        ("ip", 2),
        ("interface", 3),
        ("hostname", 3),
        ("archive", 3),
        ("resequence", 3),
        ("ipv6", 4),
        ("access-list", 3),
        ("line", 2),
    ];
    match choose(kw, choices) {
        Ok(0) => ip_command(rc, w, base + 1, negate, dialect),
        Ok(5) => ipv6_command(rc, w, base + 1, negate, dialect),
        Ok(6) if dialect == Dialect::Ios => numbered_line(rc, w, base + 1, negate),
        Ok(7) if !negate => {
            // IOS `line vty 0 4`, NX-OS `line vty`; the console is not modelled.
            if !w.get(base + 1).is_some_and(|s| abbrev(s, "vty", 1)) {
                return Err(ApplyError::Invalid(base + 1));
            }
            Ok((Some(ConfigMode::Line), String::new()))
        }
        Ok(1) if !negate => {
            let typed = w.rest(base + 1).replace(' ', "");
            if typed.is_empty() {
                return Err(ApplyError::Incomplete);
            }
            match find_interface(rc, &typed) {
                Some(name) => Ok((Some(ConfigMode::Interface(name)), String::new())),
                None => Err(ApplyError::Invalid(base + 1)),
            }
        }
        Ok(2) if !negate => {
            let name = w.get(base + 1).ok_or(ApplyError::Incomplete)?;
            rc.hostname = name.to_string();
            Ok((None, String::new()))
        }
        Ok(3) if dialect == Dialect::Ios => {
            if negate {
                rc.archive_path = None;
                Ok((None, String::new()))
            } else {
                Ok((Some(ConfigMode::Archive), String::new()))
            }
        }
        Ok(4) if dialect == Dialect::Nxos && !negate => {
            // resequence ip|ipv6 access-list NAME START STEP
            let kind = match w.get(base + 1) {
                Some("ip") => AclKind::Extended,
                Some("ipv6") => AclKind::Ipv6,
                _ => return Err(ApplyError::Invalid(base + 1)),
            };
            if !w.get(base + 2).is_some_and(|s| abbrev(s, "access-list", 6)) {
                return Err(ApplyError::Invalid(base + 2));
            }
            resequence(rc, kind, w, base + 3)
        }
        Err(true) => Err(ApplyError::Ambiguous(base)),
        _ => Err(ApplyError::Invalid(base)),
    }
}

fn resequence(
    rc: &mut RunningConfig,
    kind: AclKind,
    w: &Words<'_>,
    at: usize,
) -> Result<(Option<ConfigMode>, String), ApplyError> {
    let name = w.get(at).ok_or(ApplyError::Incomplete)?;
    let num = |i: usize| -> Result<u32, ApplyError> {
        w.get(i)
            .ok_or(ApplyError::Incomplete)?
            .parse()
            .map_err(|_| ApplyError::Invalid(i))
    };
    let (start, step) = (num(at + 1)?, num(at + 2)?);
    if start == 0 || step == 0 {
        return Err(ApplyError::Invalid(at + 1));
    }
    match rc.table(kind).get_mut(name) {
        Some(acl) => {
            acl.resequence(start, step);
            Ok((None, String::new()))
        }
        None => Err(ApplyError::Message(format!(
            "% Access list {name} does not exist\r\n"
        ))),
    }
}

fn ip_command(
    rc: &mut RunningConfig,
    w: &Words<'_>,
    at: usize,
    negate: bool,
    dialect: Dialect,
) -> Result<(Option<ConfigMode>, String), ApplyError> {
    let kw = w.get(at).ok_or(ApplyError::Incomplete)?;
    if !abbrev(kw, "access-list", 6) {
        return Err(ApplyError::Invalid(at));
    }
    let mut i = at + 1;
    let mut kind = AclKind::Extended;
    if dialect == Dialect::Ios {
        let typed = w.get(i).ok_or(ApplyError::Incomplete)?;
        if abbrev(typed, "resequence", 3) && !negate {
            return resequence(rc, AclKind::Extended, w, i + 1);
        }
        kind = if abbrev(typed, "extended", 2) {
            AclKind::Extended
        } else if abbrev(typed, "standard", 2) {
            AclKind::Standard
        } else {
            return Err(ApplyError::Invalid(i));
        };
        i += 1;
    }
    enter_acl(rc, w, i, negate, kind, dialect)
}

/// `ipv6 access-list NAME`, IOS `ipv6 access-list resequence NAME S S`.
fn ipv6_command(
    rc: &mut RunningConfig,
    w: &Words<'_>,
    at: usize,
    negate: bool,
    dialect: Dialect,
) -> Result<(Option<ConfigMode>, String), ApplyError> {
    let kw = w.get(at).ok_or(ApplyError::Incomplete)?;
    if !abbrev(kw, "access-list", 6) {
        return Err(ApplyError::Invalid(at));
    }
    if dialect == Dialect::Ios
        && !negate
        && w.get(at + 1).is_some_and(|t| abbrev(t, "resequence", 3))
    {
        return resequence(rc, AclKind::Ipv6, w, at + 2);
    }
    enter_acl(rc, w, at + 1, negate, AclKind::Ipv6, dialect)
}

/// Enters (or with `no`, deletes) the ACL named at word `i`. IOS takes a
/// number in its kind's range for a numbered ACL.
fn enter_acl(
    rc: &mut RunningConfig,
    w: &Words<'_>,
    i: usize,
    negate: bool,
    kind: AclKind,
    dialect: Dialect,
) -> Result<(Option<ConfigMode>, String), ApplyError> {
    let name = w.get(i).ok_or(ApplyError::Incomplete)?;
    let numbered = dialect == Dialect::Ios && kind != AclKind::Ipv6;
    let number_ok = |n: u32| AclKind::of_number(n) == Some(kind);
    let valid = match name.parse::<u32>() {
        Ok(n) if numbered => number_ok(n),
        Ok(_) => false,
        Err(_) => is_acl_name(name),
    };
    if !valid || w.len() > i + 1 {
        return Err(ApplyError::Invalid(if valid { i + 1 } else { i }));
    }
    if negate {
        rc.table(kind).remove(name);
        return Ok((None, String::new()));
    }
    let table = rc.table(kind);
    if let Some(existing) = table.get(name)
        && existing.kind != kind
    {
        return Err(ApplyError::Message(
            "% Access-list type conflicts with prior definition\r\n".into(),
        ));
    }
    table.entry(name.to_string()).or_insert_with(|| Acl {
        kind,
        statistics: dialect == Dialect::Nxos,
        ..Default::default()
    });
    Ok((Some(ConfigMode::Acl(kind, name.to_string())), String::new()))
}

/// IOS's classic numbered form: `access-list N permit|deny|remark …`
/// appends an entry; `no access-list N` deletes the whole list.
fn numbered_line(
    rc: &mut RunningConfig,
    w: &Words<'_>,
    at: usize,
    negate: bool,
) -> Result<(Option<ConfigMode>, String), ApplyError> {
    let typed = w.get(at).ok_or(ApplyError::Incomplete)?;
    let n: u32 = typed.parse().map_err(|_| ApplyError::Invalid(at))?;
    let kind = AclKind::of_number(n).ok_or(ApplyError::Invalid(at))?;
    if negate {
        rc.acls.remove(typed);
        return Ok((None, String::new()));
    }
    let rest = w.rest(at + 1);
    if rest.is_empty() {
        return Err(ApplyError::Incomplete);
    }
    let (_, entry) = parse_entry(rest, Dialect::Ios, kind).map_err(|e| bad_token(e, at + 1))?;
    let acl = rc.acls.entry(typed.to_string()).or_insert_with(|| Acl {
        kind,
        ..Default::default()
    });
    if acl.kind != kind {
        return Err(ApplyError::Message(
            "% Access-list type conflicts with prior definition\r\n".into(),
        ));
    }
    add_entry(rc, kind, typed, None, entry, Dialect::Ios)
}

/// A parse error at token `index` of the part that starts at word `at`.
fn bad_token(e: super::acl::BadToken, at: usize) -> ApplyError {
    if e.incomplete {
        ApplyError::Incomplete
    } else {
        ApplyError::Invalid(at + e.index)
    }
}

/// Adds an entry to an ACL as the device does: a reference to an
/// object-group it lacks and a taken sequence number are refused; IOS
/// (IP access list entry sequence numbering, IOS 15 / IOS XE configuration
/// guides): "If the user enters an entry that matches an already existing
/// entry (except for the sequence number), then no changes are made." —
/// accepted, silently, and nothing changes.
fn add_entry(
    rc: &mut RunningConfig,
    kind: AclKind,
    name: &str,
    seq: Option<u32>,
    entry: Entry,
    dialect: Dialect,
) -> Result<(Option<ConfigMode>, String), ApplyError> {
    if let Some(missing) = entry
        .groups()
        .into_iter()
        .find(|g| !rc.object_groups.contains(*g))
    {
        return Err(ApplyError::Message(match dialect {
            Dialect::Ios => format!("% Object-group {missing} does not exist\r\n"),
            Dialect::Nxos => format!("ERROR: object-group {missing} does not exist\r\n"),
        }));
    }
    let acl: &mut Acl = rc.table(kind).entry(name.to_string()).or_default();
    let seq = seq.unwrap_or_else(|| acl.next_seq());
    if acl.entries.contains_key(&seq) {
        return Err(ApplyError::Message(match dialect {
            Dialect::Ios => "% Duplicate sequence number\r\n".into(),
            Dialect::Nxos => "ERROR: Duplicate sequence number\r\n".into(),
        }));
    }
    if dialect == Dialect::Ios && entry.is_ace() && acl.entries.values().any(|e| *e == entry) {
        return Ok((None, String::new()));
    }
    if dialect == Dialect::Ios
        && let Some(at) = super::standard::refused_by(acl, seq, &entry)
    {
        return Err(ApplyError::Message(format!(
            "% Access rule can't be configured at higher sequence num as it is part of the existing rule at sequence num {at}\r\n"
        )));
    }
    if let Entry::Remark(r) = &entry
        && r.len() > 100
    {
        return Err(ApplyError::Invalid(1));
    }
    acl.entries.insert(seq, entry);
    Ok((None, String::new()))
}

/// `line vty`: `access-class NAME in`, `ipv6 access-class NAME in`.
fn apply_line(
    rc: &mut RunningConfig,
    w: &Words<'_>,
) -> Result<(Option<ConfigMode>, String), ApplyError> {
    let first = w.get(0).ok_or(ApplyError::Incomplete)?;
    let (negate, base) = if first.eq_ignore_ascii_case("no") {
        (true, 1)
    } else {
        (false, 0)
    };
    let kw = w.get(base).ok_or(ApplyError::Incomplete)?;
    let (v6, at) = if kw == "ipv6" {
        (true, base + 1)
    } else {
        (false, base)
    };
    match w.get(at) {
        Some(k) if abbrev(k, "access-class", 8) => {}
        // `login local`, `transport input ssh` and the like.
        Some(k) if !v6 && ["login", "transport", "exec-timeout"].contains(&k) => {
            return Ok((None, String::new()));
        }
        _ => return Err(ApplyError::Invalid(0)),
    }
    let (acl, dir_at) = match (w.get(at + 1), w.get(at + 2)) {
        (Some(d), None) if negate && d == "in" => (None, at + 1),
        (Some(n), Some(_)) => (Some(n.to_string()), at + 2),
        (Some(_), None) | (None, _) => return Err(ApplyError::Incomplete),
    };
    if w.get(dir_at) != Some("in") {
        return Err(ApplyError::Invalid(dir_at));
    }
    let slot = if v6 {
        &mut rc.vty.class6_in
    } else {
        &mut rc.vty.class_in
    };
    *slot = if negate { None } else { acl };
    Ok((None, String::new()))
}

fn apply_interface(
    rc: &mut RunningConfig,
    name: &str,
    w: &Words<'_>,
) -> Result<(Option<ConfigMode>, String), ApplyError> {
    let first = w.get(0).ok_or(ApplyError::Incomplete)?;
    let (negate, base) = if first.eq_ignore_ascii_case("no") {
        (true, 1)
    } else {
        (false, 0)
    };
    let kw = w.get(base).ok_or(ApplyError::Incomplete)?;
    let iface: &mut Interface = rc.interface_mut(name).ok_or(ApplyError::Invalid(0))?;
    let choices = [("ip", 2), ("description", 3), ("shutdown", 3), ("ipv6", 4)];
    match choose(kw, &choices) {
        Ok(k @ (0 | 3)) => {
            let v6 = k == 3;
            let sub = w.get(base + 1).ok_or(ApplyError::Incomplete)?;
            let word = if v6 { "traffic-filter" } else { "access-group" };
            if !abbrev(sub, word, 8) {
                return Err(ApplyError::Invalid(base + 1));
            }
            // ip access-group NAME in|out ; no ip access-group [NAME] in|out
            let (acl, dir_at) = match (w.get(base + 2), w.get(base + 3)) {
                (Some(d), None) if negate && (d == "in" || d == "out") => (None, base + 2),
                (Some(n), Some(_)) if is_acl_name(n) => (Some(n.to_string()), base + 3),
                (Some(_), _) if !negate => return Err(ApplyError::Incomplete),
                (None, _) => return Err(ApplyError::Incomplete),
                _ => return Err(ApplyError::Invalid(base + 2)),
            };
            let dir = w.get(dir_at).ok_or(ApplyError::Incomplete)?;
            let slot = match (dir, v6) {
                ("in", false) => &mut iface.access_in,
                ("out", false) => &mut iface.access_out,
                ("in", true) => &mut iface.filter6_in,
                ("out", true) => &mut iface.filter6_out,
                _ => return Err(ApplyError::Invalid(dir_at)),
            };
            *slot = if negate { None } else { acl };
            Ok((None, String::new()))
        }
        Ok(1) => {
            iface.description = if negate {
                None
            } else {
                Some(w.rest(base + 1).to_string())
            };
            Ok((None, String::new()))
        }
        Ok(2) => Ok((None, String::new())),
        Err(true) => Err(ApplyError::Ambiguous(base)),
        Err(false) | Ok(_) => Err(ApplyError::Invalid(base)),
    }
}

fn apply_acl(
    rc: &mut RunningConfig,
    kind: AclKind,
    name: &str,
    w: &Words<'_>,
    dialect: Dialect,
) -> Result<(Option<ConfigMode>, String), ApplyError> {
    let first = w.get(0).ok_or(ApplyError::Incomplete)?;
    // IOS IPv6 numbers entries with `sequence N`.
    let ios6 = dialect == Dialect::Ios && kind == AclKind::Ipv6;
    let acl: &mut Acl = rc.table(kind).entry(name.to_string()).or_default();
    if first.eq_ignore_ascii_case("no") {
        let mut second = w.get(1).ok_or(ApplyError::Incomplete)?;
        let mut words = 2;
        if ios6 && second == "sequence" {
            second = w.get(2).ok_or(ApplyError::Incomplete)?;
            words = 3;
        }
        if let Ok(seq) = second.parse::<u32>() {
            // IOS removes silently; NX-OS too. Extra words are an error.
            if w.len() > words || (ios6 && words == 2) {
                return Err(ApplyError::Invalid(words.min(w.len() - 1)));
            }
            acl.entries.remove(&seq);
            return Ok((None, String::new()));
        }
        if dialect == Dialect::Nxos && abbrev(second, "statistics", 4) {
            acl.statistics = false;
            return Ok((None, String::new()));
        }
        let (_, entry) = parse_entry(w.rest(1), dialect, kind).map_err(|e| bad_token(e, 1))?;
        acl.entries.retain(|_, e| *e != entry);
        return Ok((None, String::new()));
    }
    if dialect == Dialect::Nxos && abbrev(first, "statistics", 4) {
        if !w.get(1).is_some_and(|s| abbrev(s, "per-entry", 3)) {
            return Err(ApplyError::Invalid(1));
        }
        acl.statistics = true;
        return Ok((None, String::new()));
    }
    let looks_like_entry = first.parse::<u32>().is_ok()
        || ["permit", "deny", "remark"].contains(&first)
        || (ios6 && first == "sequence");
    if !looks_like_entry {
        return Err(ApplyError::Invalid(0));
    }
    let (seq, entry) = parse_entry(w.line.trim(), dialect, kind).map_err(|e| bad_token(e, 0))?;
    add_entry(rc, kind, name, seq, entry, dialect)
}

fn apply_archive(
    rc: &mut RunningConfig,
    w: &Words<'_>,
) -> Result<(Option<ConfigMode>, String), ApplyError> {
    let kw = w.get(0).ok_or(ApplyError::Incomplete)?;
    match choose(kw, &[("path", 2), ("maximum", 3), ("write-memory", 3)]) {
        Ok(0) => {
            let p = w.get(1).ok_or(ApplyError::Incomplete)?;
            rc.archive_path = Some(p.to_string());
            Ok((None, String::new()))
        }
        Ok(_) => Ok((None, String::new())),
        Err(true) => Err(ApplyError::Ambiguous(0)),
        Err(false) => Err(ApplyError::Invalid(0)),
    }
}
