//! `kind = "acl"` jobs: the ACL's name, its lines (checked line by line,
//! each problem at its line and column), and per-device values: lines
//! written as a template are rendered for every target device (see
//! `vars.rs`) and each device's own lines checked.

use std::collections::BTreeMap;
use std::ops::Range;

use regex::Regex;

use super::super::doc::{At, Doc, Table};
use super::super::{Config, JobKind};
use super::jobs::read_on_drift;
use super::vars::{self, Vars};
use crate::jobs::acl::Family;

/// How entries of `family` are written.
fn family_hint(family: Family) -> &'static str {
    match family {
        Family::Extended => {
            "an extended entry is `permit|deny PROTOCOL SOURCE [PORTS] DESTINATION [PORTS] [OPTIONS]`; addresses `any`, `host A`, `A WILDCARD` or `A/LEN`; ports as numbers or IOS names (www, domain, ...)"
        }
        Family::Standard => {
            "a standard entry is `permit|deny SOURCE [log]`, SOURCE `any`, `host A`, `A` or `A WILDCARD`"
        }
        Family::Ipv6 => {
            "an IPv6 entry is `permit|deny PROTOCOL SOURCE [PORTS] DESTINATION [PORTS] [OPTIONS]` with protocol `ipv6`, `tcp`, `udp`, `icmp`…; addresses `any`, `host A` or `A/LEN`"
        }
    }
}

/// What rendering a templated ACL needs once the job's devices are known.
pub(super) struct AclSource {
    lines: At<String>,
    vars: Vars,
    path: String,
    family: Family,
}

/// `family = "extended" | "standard" | "ipv6"`; a numbered ACL's number
/// says its family (1–99, 1300–1999 standard; 100–199, 2000–2699
/// extended), and a `family` that disagrees is a problem.
fn read_family(t: &mut Table<'_, '_>, doc: &mut Doc<'_>, name: Option<&At<String>>) -> Family {
    let given = t.string(doc, "family");
    let stated = given.as_ref().and_then(|f| {
        let family = Family::from_name(&f.value);
        if family.is_none() {
            doc.problem(
                f.span.clone(),
                t.key_path("family"),
                format!("unknown ACL family \"{}\"", f.value),
                Some("family is \"extended\" (the default), \"standard\" or \"ipv6\"".into()),
            );
        }
        family
    });
    let number = name.and_then(|n| n.value.parse::<u32>().ok().map(|v| (n, v)));
    match (number, stated) {
        (Some((_, _)), Some(Family::Ipv6)) | (None, _) => stated.unwrap_or_default(),
        (Some((n, v)), stated) => match Family::of_number(v) {
            Some(implied) => {
                if let (Some(f), Some(stated)) = (&given, stated)
                    && stated != implied
                {
                    doc.problem(
                        f.span.clone(),
                        t.key_path("family"),
                        format!(
                            "ACL {v} is a numbered {} ACL, not {}",
                            implied.name(),
                            stated.name()
                        ),
                        Some("numbers 1-99 and 1300-1999 are standard, 100-199 and 2000-2699 extended: change the number, or remove `family`".into()),
                    );
                }
                implied
            }
            None => {
                doc.problem(
                    n.span.clone(),
                    t.key_path("acl_name"),
                    format!("{v} is not the number of an IOS ACL"),
                    Some("numbered ACLs are 1-99 and 1300-1999 (standard), 100-199 and 2000-2699 (extended); or give a name that starts with a letter".into()),
                );
                stated.unwrap_or_default()
            }
        },
    }
}

/// Where line `n` (0-based) of a multi-line string value sits in the file.
pub(super) fn line_span(src: &str, value: &At<String>, n: usize) -> Range<usize> {
    let text = value.value.lines().nth(n).unwrap_or_default().trim();
    let raw = src.get(value.span.clone()).unwrap_or_default();
    let mut from = 0;
    for (i, l) in value.value.lines().enumerate() {
        let needle = l.trim();
        if needle.is_empty() {
            continue;
        }
        if let Some(pos) = raw[from..].find(needle) {
            if i == n {
                return value.span.start + from + pos..value.span.start + from + pos + text.len();
            }
            from += pos + needle.len();
        }
    }
    value.span.clone()
}

pub(super) fn read_acl(
    t: &mut Table<'_, '_>,
    doc: &mut Doc<'_>,
) -> (Option<JobKind>, Option<AclSource>) {
    let name = t.required_string(
        doc,
        "acl_name",
        "name the ACL to replace, e.g. acl_name = \"LOCK_IT_DOWN\"",
    );
    let family = read_family(t, doc, name.as_ref());
    if let Some(n) = &name
        && n.value.parse::<u32>().is_err()
    {
        let ok = n
            .value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && n.value.len() <= 64
            && n.value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            doc.problem(n.span.clone(), t.key_path("acl_name"), format!("\"{}\" is not a usable ACL name", n.value), Some("start with a letter; use letters, digits, '-', '_', '.'; at most 64 characters (or a number for an IOS numbered ACL)".into()));
        }
    }
    let lines = t.required_string(
        doc,
        "acl_lines",
        "paste the entries as a multi-line string: acl_lines = \"\"\"\\npermit ...\\n\"\"\"",
    );
    let job_vars = vars::read_vars(t, doc);
    let path = t.key_path("acl_lines");
    let mut kept = Vec::new();
    let mut source = None;
    if let Some(l) = &lines {
        if vars::is_template(&l.value) {
            // Checked per device once the job's devices are known.
            kept = l
                .value
                .lines()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            source = Some(AclSource {
                lines: l.clone(),
                vars: job_vars,
                path: path.clone(),
                family,
            });
        } else {
            if let Some(v) = t.raw("vars") {
                doc.problem(
                    v.span(),
                    t.key_path("vars"),
                    "`vars` without a template: acl_lines uses none of them",
                    Some(
                        "write {{ name }} in acl_lines where a value goes, or remove `vars`".into(),
                    ),
                );
            }
            let spans: Vec<Range<usize>> = (0..l.value.lines().count())
                .map(|i| line_span(doc.src(), l, i))
                .collect();
            kept = check_lines(
                doc,
                &path,
                &l.value,
                &|i| spans[i].clone(),
                l.span.clone(),
                "",
                family,
            );
        }
    }
    let save = t.boolean(doc, "save").is_none_or(|b| b.value);
    let safety_net = t.boolean(doc, "safety_net").is_none_or(|b| b.value);
    let revert_minutes = t
        .integer_in(doc, "revert_minutes", 1..=120)
        .map_or(10, |m| m.value as u32);
    let on_drift = read_on_drift(t, doc);
    let Some(name) = name else {
        return (None, None);
    };
    (
        Some(JobKind::Acl {
            acl_name: name.value,
            family,
            acl_lines: kept,
            per_device: BTreeMap::new(),
            save,
            safety_net,
            revert_minutes,
            on_drift,
        }),
        source,
    )
}

/// Renders a templated ACL for every target device and checks each
/// device's lines; returns them by device index.
pub(super) fn render_per_device(
    doc: &mut Doc<'_>,
    source: &AclSource,
    targets: &[usize],
    config: &Config,
) -> BTreeMap<usize, Vec<String>> {
    let mut out = BTreeMap::new();
    let l = &source.lines;
    // One problem per template position: forty devices missing the same
    // variable are one fix.
    let mut reported: Vec<(Range<usize>, String)> = Vec::new();
    let mut report = |doc: &mut Doc<'_>,
                      span: Range<usize>,
                      path: &str,
                      msg: String,
                      hint: Option<String>,
                      device: &str| {
        if reported.iter().any(|(s, _)| *s == span) {
            return;
        }
        reported.push((span.clone(), device.to_string()));
        doc.problem(span, path.to_string(), msg, hint);
    };
    for &i in targets {
        let device = &config.devices[i];
        let vars = match vars::for_device(&source.vars, &config.tag_vars, device) {
            Ok(v) => v,
            Err(why) => {
                report(
                    doc,
                    l.span.clone(),
                    &source.path,
                    format!("device {}: {why}", device.name),
                    None,
                    &device.name,
                );
                continue;
            }
        };
        let text = match vars::render(&l.value, &vars) {
            Ok(t) => t,
            Err(e) => {
                let span = match (&e.at, e.line) {
                    (Some(r), _) => vars::locate(doc.src(), l, r),
                    (None, Some(n)) => line_span(doc.src(), l, n.saturating_sub(1)),
                    _ => l.span.clone(),
                };
                let defined: Vec<&str> = vars.keys().map(String::as_str).collect();
                report(
                    doc,
                    span,
                    &source.path,
                    format!("device {}: {}", device.name, e.message),
                    Some(format!(
                        "set it in `vars` on the device, one of its tags ([tags.NAME]) or the job; {} has {}",
                        device.name,
                        defined.join(", ")
                    )),
                    &device.name,
                );
                continue;
            }
        };
        // A rendered line maps to the template's line of the same number
        // when the template has no blocks (`{% ... %}`) that add or drop lines.
        let plain = !l.value.contains("{%");
        let template_lines = l.value.lines().count();
        let span_of = |n: usize| {
            if plain && n < template_lines {
                line_span(doc.src(), l, n)
            } else {
                l.span.clone()
            }
        };
        let spans: Vec<Range<usize>> = (0..text.lines().count()).map(span_of).collect();
        let before = doc_problems(doc);
        let lines = check_lines(
            doc,
            &source.path,
            &text,
            &|n| spans[n].clone(),
            l.span.clone(),
            &format!("device {}: ", device.name),
            source.family,
        );
        if doc_problems(doc) > before {
            // The rest of the fleet most likely fails the same way.
            break;
        }
        out.insert(i, lines);
    }
    out
}

fn doc_problems(doc: &Doc<'_>) -> usize {
    doc.problem_count()
}

/// Checks ACL lines one by one (entry syntax, sequence numbers, repeats,
/// at least one rule); returns the lines kept (trimmed, blanks dropped).
/// `prefix` starts each message ("device X: " for a rendered template).
fn check_lines(
    doc: &mut Doc<'_>,
    path: &str,
    text: &str,
    span_of: &dyn Fn(usize) -> Range<usize>,
    whole: Range<usize>,
    prefix: &str,
    family: Family,
) -> Vec<String> {
    let Ok(entry) = Regex::new(r"^((?:sequence\s+)?\d+\s+)?(permit|deny|remark)(\s|$)") else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let mut entries = 0;
    // Each rule once: a device keeps one copy (IOS ignores a repeat),
    // so an ACL with a repeat could never equal the intent.
    let mut seen: Vec<(crate::jobs::acl::ace::Entry, usize)> = Vec::new();
    let (mut numbered, mut unnumbered, mut last_seq) = (0, 0, 0u64);
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let at = format!("{path}[line {}]", i + 1);
        match entry.captures(trimmed) {
            Some(c) => {
                if c.get(2).is_some_and(|m| m.as_str() != "remark") {
                    entries += 1;
                }
                let number = c.get(1).and_then(|s| {
                    s.as_str()
                        .trim()
                        .trim_start_matches("sequence")
                        .trim()
                        .parse::<u64>()
                        .ok()
                });
                match number {
                    Some(seq) => {
                        numbered += 1;
                        if seq == 0 || seq > 2_147_483_647 || seq <= last_seq {
                            doc.problem(
                                span_of(i),
                                at.clone(),
                                format!("{prefix}sequence number {seq} is out of order or out of range"),
                                Some("sequence numbers must rise from line to line, from 1 to 2147483647".into()),
                            );
                        }
                        last_seq = seq;
                    }
                    None => unnumbered += 1,
                }
                match crate::jobs::acl::ace::parse_entry(trimmed, family) {
                    Err(e) => {
                        // At the word the error is about, where it can be found.
                        let line_span = span_of(i);
                        let span = e
                            .token
                            .as_deref()
                            .and_then(|tok| {
                                let text = doc.src().get(line_span.clone())?;
                                // The word itself, not a longer word containing it.
                                let pos = text.match_indices(tok).map(|(p, _)| p).find(|&p| {
                                    let before = text[..p].chars().next_back();
                                    let after = text[p + tok.len()..].chars().next();
                                    before.is_none_or(char::is_whitespace)
                                        && after.is_none_or(char::is_whitespace)
                                })?;
                                Some(line_span.start + pos..line_span.start + pos + tok.len())
                            })
                            .unwrap_or(line_span);
                        doc.problem(
                            span,
                            at.clone(),
                            format!("{prefix}{}", e.message),
                            Some(family_hint(family).into()),
                        )
                    }
                    Ok(parsed) if parsed.entry.is_rule() => {
                        if let Some((_, first)) = seen.iter().find(|(e, _)| *e == parsed.entry) {
                            doc.problem(
                                span_of(i),
                                at.clone(),
                                format!("{prefix}this entry repeats line {} (`{}`)", first + 1, parsed.entry),
                                Some("a device keeps one copy of an entry (IOS ignores a repeat): remove one of the two lines".into()),
                            );
                        } else if let Some(k) = (family == Family::Standard)
                            .then(|| {
                                crate::jobs::acl::standard::covered_by(
                                    seen.iter().map(|(e, _)| e),
                                    &parsed.entry,
                                )
                            })
                            .flatten()
                        {
                            let (range, line) = &seen[k];
                            doc.problem(
                                span_of(i),
                                at.clone(),
                                format!("{prefix}IOS refuses this host entry: line {} (`{range}`) already covers it", line + 1),
                                Some(format!("IOS checks a standard ACL's hosts before its ranges, so a host after a range that covers it would change what the ACL does; it refuses it (`% Access rule can't be configured at higher sequence num`): move this line above line {}, or remove it if the range already decides it", line + 1)),
                            );
                        } else {
                            seen.push((parsed.entry, i));
                        }
                    }
                    Ok(_) => {}
                }
                kept.push(trimmed.to_string());
            }
            None => doc.problem(
                span_of(i),
                at,
                format!("{prefix}\"{trimmed}\" is not an ACL entry"),
                Some(
                    "each line is `[SEQ] permit ...`, `[SEQ] deny ...` or `[SEQ] remark ...`"
                        .into(),
                ),
            ),
        }
    }
    if entries == 0 {
        doc.problem(whole.clone(), path.to_string(), format!("{prefix}no permit or deny entry"), Some("an ACL without entries filters nothing on IOS; add at least one permit or deny line".into()));
    }
    if numbered > 0 && unnumbered > 0 {
        doc.problem(
            whole,
            path.to_string(),
            format!("{prefix}some lines have sequence numbers and some do not"),
            Some("number every line, or none (then they are numbered 10, 20, 30 ...)".into()),
        );
    }
    kept
}
