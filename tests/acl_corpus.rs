//! Real output: every ACL listing and running config in
//! `tests/data/device-output/` (IOS, IOS-XE and NX-OS, from ntc-templates,
//! genieparser and NAPALM; see its README) is read without error, and each
//! entry of a family nightshift replaces round-trips: read, written in the
//! platform's syntax, read again gives the same entry. Families nightshift
//! does not replace (MAC, FQDN, role-based, reflexive) are recognised, not
//! parsed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use nightshift::jobs::acl::Family;
use nightshift::jobs::acl::ace::{parse_entry, write};
use nightshift::jobs::acl::listing::listings;
use nightshift::platform::Platform;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "raw") {
            out.push(p);
        }
    }
}

#[test]
fn every_acl_in_the_corpus_is_read_and_round_trips() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/device-output");
    let mut all = Vec::new();
    files(&root, &mut all);
    all.sort();
    assert!(all.len() >= 40, "the corpus is there: {}", all.len());
    let (mut acls, mut entries, mut other, mut families) =
        (0, 0, 0, std::collections::BTreeSet::new());
    let mut problems = Vec::new();
    let mut mismatched = Vec::new();
    let mut configs_with_acls = 0;
    for path in &all {
        let rel = path.strip_prefix(&root).unwrap().display().to_string();
        let platform = if rel.starts_with("cisco_nxos") {
            Platform::CiscoNxos
        } else {
            Platform::CiscoIos
        };
        let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
        let listed = match listings(&text, platform) {
            Ok(l) => l,
            Err(e) => {
                problems.push(format!("{rel}:{}: `{}`: {}", e.line, e.text, e.error));
                continue;
            }
        };
        if rel.contains("access-lists") {
            assert!(!listed.is_empty(), "{rel}: no ACL found");
        } else if !listed.is_empty() {
            configs_with_acls += 1;
        }
        for acl in &listed {
            acls += 1;
            other += acl.other.len();
            families.insert(format!("{:?}", acl.family));
            if !acl.mismatched.is_empty() {
                // One published sample lists extended entries under a
                // standard title (ntc-templates' own test data): read as
                // extended, kept apart.
                mismatched.push(format!("{rel} {} ({})", acl.name, acl.mismatched.len()));
                for line in &acl.mismatched {
                    let written = write(&line.entry, Family::Extended, platform);
                    let again = parse_entry(&written, Family::Extended).map(|l| l.entry);
                    assert_eq!(again.as_ref(), Ok(&line.entry), "{rel}: `{written}`");
                }
            }
            let Some(family) = acl.family else { continue };
            for line in &acl.entries {
                entries += 1;
                let written = write(&line.entry, family, platform);
                match parse_entry(&written, family) {
                    Ok(again) if again.entry == line.entry => {}
                    Ok(again) => problems.push(format!(
                        "{rel}: {} `{}` wrote `{written}`, read back as `{}` (was `{}`)",
                        acl.name, line.text, again.entry, line.entry
                    )),
                    Err(e) => problems.push(format!(
                        "{rel}: {} `{}` wrote `{written}`, which does not read: {e}",
                        acl.name, line.text
                    )),
                }
            }
        }
    }
    eprintln!(
        "{} files, {acls} ACLs, {entries} entries round-tripped, {other} entries of other families; families {families:?}",
        all.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(
        mismatched,
        ["cisco_ios/show_access-lists/ntc__cisco_ios_show_access-list.raw 10 (2)"],
        "only the one sample mixes families"
    );
    assert!(
        configs_with_acls >= 3,
        "running configs with ACLs: {configs_with_acls}"
    );
    assert!(entries > 300, "{entries}");
    for f in ["Some(Standard)", "Some(Extended)", "Some(Ipv6)", "None"] {
        assert!(families.contains(f), "{f} in the corpus");
    }
}
