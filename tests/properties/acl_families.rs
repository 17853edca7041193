//! Standard and IPv6 entries, generated: every form IOS and NX-OS take or
//! show for one rule (IOS `host A` in capitals with `sequence N` after
//! the entry, NX-OS lower-case prefixes with host bits as typed and the
//! number before it; a standard source as `A`, `host A`, `A W` or the
//! listing's `A, wildcard bits W`) compares equal; what the lab shows back
//! reads as what was written; and what nightshift writes for an entry
//! reads back as the same entry.

use std::net::{Ipv4Addr, Ipv6Addr};

use nightshift::jobs::acl::Family;
use nightshift::jobs::acl::ace::{Entry, parse_entry, write};
use nightshift::lab::{AclKind, entry_as_shown_of};
use nightshift::platform::Platform;
use proptest::prelude::*;

fn entry(line: &str, family: Family) -> Result<Entry, TestCaseError> {
    parse_entry(line, family)
        .map(|l| l.entry)
        .map_err(|e| TestCaseError::fail(format!("{line:?} not read: {}", e.message)))
}

/// An IPv6 source or destination: (IOS form, NX-OS form).
fn addr6() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        1 => Just(("any".to_string(), "any".to_string())),
        2 => any::<u128>().prop_map(|a| {
            let ip = Ipv6Addr::from(a);
            (format!("host {}", ip.to_string().to_uppercase()), format!("{ip}/128"))
        }),
        4 => (any::<u128>(), 1u32..128).prop_map(|(a, len)| {
            let mask = u128::MAX << (128 - len);
            let clean = Ipv6Addr::from(a & mask);
            // IOS shows the network; NX-OS keeps what was typed.
            (
                format!("{}/{len}", clean.to_string().to_uppercase()),
                format!("{}/{len}", Ipv6Addr::from(a)),
            )
        }),
    ]
}

/// An IPv6 rule: (IOS form, NX-OS form).
fn rule6() -> impl Strategy<Value = (String, String)> {
    let proto = prop_oneof![Just("ipv6"), Just("tcp"), Just("udp"), Just("icmp")];
    (
        prop_oneof![Just("permit"), Just("deny")],
        proto,
        addr6(),
        addr6(),
        prop_oneof![Just(None), (1u16..65535).prop_map(Some)],
        prop_oneof![Just(""), Just(" log")],
    )
        .prop_map(
            |(action, proto, (src_i, src_n), (dst_i, dst_n), port, log)| {
                let port = match (proto, port) {
                    ("tcp" | "udp", Some(p)) => format!(" eq {p}"),
                    _ => String::new(),
                };
                (
                    format!("{action} {proto} {src_i} {dst_i}{port}{log}"),
                    format!("{action} {proto} {src_n} {dst_n}{port}{log}"),
                )
            },
        )
}

/// A standard source in all its forms.
fn std_source() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        1 => Just(vec!["any".to_string(), "0.0.0.0 255.255.255.255".to_string()]),
        2 => any::<u32>().prop_map(|a| {
            let ip = Ipv4Addr::from(a);
            vec![format!("{ip}"), format!("host {ip}"), format!("{ip} 0.0.0.0")]
        }),
        3 => (any::<u32>(), 1u32..32).prop_map(|(a, len)| {
            let w = Ipv4Addr::from(!(u32::MAX << (32 - len)));
            let ip = Ipv4Addr::from(a);
            vec![format!("{ip} {w}"), format!("{ip}, wildcard bits {w}"), format!("{ip}/{len}")]
        }),
    ]
}

proptest! {
    #![proptest_config(super::config(1000))]

    #[test]
    fn ios_and_nxos_forms_of_an_ipv6_rule_compare_equal((ios, nxos) in rule6(), seq in 1u32..100_000) {
        let written = entry(&ios, Family::Ipv6)?;
        prop_assert_eq!(entry(&nxos, Family::Ipv6)?, written.clone(), "{} / {}", ios, nxos);
        // As `show ipv6 access-list` and NX-OS list them.
        prop_assert_eq!(entry(&format!("    {ios} (3 matches) sequence {seq}"), Family::Ipv6)?, written.clone());
        prop_assert_eq!(entry(&format!("  {seq} {nxos}"), Family::Ipv6)?, written.clone());
        for (platform, line) in [(Platform::CiscoIos, &ios), (Platform::CiscoNxos, &nxos)] {
            let shown = entry_as_shown_of(line, platform, AclKind::Ipv6)
                .map_err(|i| TestCaseError::fail(format!("{platform:?} refuses token {i} of {line}")))?;
            prop_assert_eq!(entry(&shown, Family::Ipv6)?, written.clone(), "{:?} shows {}", platform, shown);
            let sent = write(&written, Family::Ipv6, platform);
            prop_assert_eq!(entry(&sent, Family::Ipv6)?, written.clone(), "{:?} writes {}", platform, sent);
            entry_as_shown_of(&sent, platform, AclKind::Ipv6)
                .map_err(|i| TestCaseError::fail(format!("{platform:?} refuses token {i} of what nightshift writes: {sent}")))?;
        }
    }

    #[test]
    fn every_form_of_a_standard_source_compares_equal(
        forms in std_source(),
        deny in any::<bool>(),
        log in any::<bool>(),
    ) {
        let action = if deny { "deny" } else { "permit" };
        let log = if log { " log" } else { "" };
        let first = entry(&format!("{action} {}{log}", forms[0]), Family::Standard)?;
        for f in &forms {
            prop_assert_eq!(entry(&format!("{action} {f}{log}"), Family::Standard)?, first.clone(), "{}", f);
        }
        let sent = write(&first, Family::Standard, Platform::CiscoIos);
        prop_assert_eq!(entry(&sent, Family::Standard)?, first.clone(), "writes {}", sent);
        let shown = entry_as_shown_of(&sent, Platform::CiscoIos, AclKind::Standard)
            .map_err(|i| TestCaseError::fail(format!("IOS refuses token {i} of {sent}")))?;
        prop_assert_eq!(entry(&shown, Family::Standard)?, first, "IOS shows {}", shown);
    }
}
