//! The outbox with files cut short, changed or missing: `scan` names every
//! damaged mail and only those, and never panics.

use std::collections::BTreeSet;

use chrono::{TimeZone, Utc};
use nightshift::report::mail::Rendered;
use nightshift::report::outbox::Outbox;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Harm {
    CutState(usize),
    CutMessage(usize),
    FlipMessageByte(usize),
    DeleteMessage,
    DeleteState,
}

fn harm() -> impl Strategy<Value = Harm> {
    prop_oneof![
        any::<usize>().prop_map(Harm::CutState),
        any::<usize>().prop_map(Harm::CutMessage),
        any::<usize>().prop_map(Harm::FlipMessageByte),
        Just(Harm::DeleteMessage),
        Just(Harm::DeleteState),
    ]
}

fn mail(n: usize) -> Rendered {
    Rendered {
        subject: format!("[nightshift] mail {n}"),
        from: "nightshift@example.test".into(),
        to: vec!["netops@example.test".into()],
        bytes: format!(
            "From: nightshift@example.test\r\nTo: netops@example.test\r\nSubject: [nightshift] mail {n}\r\n\r\nbody {n} {}\r\n",
            "x".repeat(n * 37)
        )
        .into_bytes(),
    }
}

proptest! {
    #![proptest_config(super::config(300))]

    #[test]
    fn every_damaged_mail_is_named_and_no_other(
        count in 1usize..6,
        harms in proptest::collection::vec((any::<usize>(), harm()), 0..6),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path());
        let now = Utc.with_ymd_and_hms(2026, 12, 5, 3, 0, 0).unwrap();
        let ids: Vec<String> = (0..count)
            .map(|n| outbox.put("report", &format!("run-{n}"), &mail(n), true, now).unwrap().id)
            .collect();
        let mut damaged = BTreeSet::new();
        let mut gone = BTreeSet::new();
        for (which, h) in &harms {
            let id = &ids[which % ids.len()];
            let state = outbox.dir().join(format!("{id}.json"));
            let message = outbox.dir().join(format!("{id}.eml"));
            let changed = match h {
                Harm::CutState(at) | Harm::CutMessage(at) => {
                    let file = if matches!(h, Harm::CutState(_)) { &state } else { &message };
                    match std::fs::read(file) {
                        Ok(b) if !b.is_empty() => {
                            let at = at % b.len(); // strictly shorter
                            std::fs::write(file, &b[..at]).unwrap();
                            true
                        }
                        _ => false,
                    }
                }
                Harm::FlipMessageByte(at) => match std::fs::read(&message) {
                    Ok(mut b) if !b.is_empty() => {
                        let i = at % b.len();
                        b[i] ^= 0x20;
                        std::fs::write(&message, &b).unwrap();
                        true
                    }
                    _ => false,
                },
                Harm::DeleteMessage => std::fs::remove_file(&message).is_ok(),
                Harm::DeleteState => std::fs::remove_file(&state).is_ok(),
            };
            if changed {
                damaged.insert(id.clone());
            }
            if !state.exists() && !message.exists() {
                gone.insert(id.clone());
            }
        }
        let listing = outbox.scan(true).unwrap();
        let named: BTreeSet<String> = listing.damaged.iter().map(|d| d.id.clone()).collect();
        let want: BTreeSet<String> = damaged.difference(&gone).cloned().collect();
        prop_assert_eq!(&named, &want, "{:?}", listing.damaged);
        let intact: BTreeSet<String> = listing.entries.iter().map(|e| e.id.clone()).collect();
        let expect_intact: BTreeSet<String> = ids.iter().filter(|i| !damaged.contains(*i)).cloned().collect();
        prop_assert_eq!(intact, expect_intact);
        prop_assert!(listing.damaged.iter().all(|d| !d.reason.is_empty()));
    }
}
