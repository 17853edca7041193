//! ACL entries, generated: the IOS and NX-OS forms of one rule compare
//! equal, normalising is idempotent, and what a lab device shows back after
//! taking an entry reads as the entry that was written. The lab's reader
//! and printer are its own (`src/lab/acl.rs`), written apart from
//! nightshift's on purpose.

use std::net::Ipv4Addr;

use nightshift::jobs::acl::ace::{Entry, parse_line};
use nightshift::lab::entry_as_shown;
use nightshift::platform::Platform;
use proptest::prelude::*;

/// An address as a rule means it.
#[derive(Debug, Clone)]
enum Addr {
    Any,
    /// Address (host bits possibly set, as engineers type them) and prefix.
    Prefix(Ipv4Addr, u32),
    /// A wildcard that is not a prefix (`0.0.255.0`).
    Wild(Ipv4Addr, Ipv4Addr),
}

fn wildcard(len: u32) -> Ipv4Addr {
    Ipv4Addr::from(if len == 0 {
        u32::MAX
    } else {
        !(u32::MAX << (32 - len))
    })
}

impl Addr {
    /// As IOS takes it: `any`, `host A`, `A W`.
    fn ios(&self, host_keyword: bool) -> String {
        match self {
            Addr::Any => "any".into(),
            Addr::Prefix(a, 32) if host_keyword => format!("host {a}"),
            Addr::Prefix(a, len) => format!("{a} {}", wildcard(*len)),
            Addr::Wild(a, w) => format!("{a} {w}"),
        }
    }
    /// As NX-OS shows it: `any`, `A/len`, `A W`.
    fn nxos(&self) -> String {
        match self {
            Addr::Any => "any".into(),
            Addr::Prefix(a, len) => format!("{a}/{len}"),
            Addr::Wild(a, w) => format!("{a} {w}"),
        }
    }
}

fn addr() -> impl Strategy<Value = Addr> {
    prop_oneof![
        2 => Just(Addr::Any),
        1 => Just(Addr::Prefix(Ipv4Addr::UNSPECIFIED, 0)),
        3 => (any::<u32>(), Just(32u32)).prop_map(|(a, l)| Addr::Prefix(a.into(), l)),
        4 => (any::<u32>(), 1u32..32).prop_map(|(a, l)| Addr::Prefix(a.into(), l)),
        1 => (any::<u32>(), any::<u32>())
            .prop_filter("not a prefix", |(_, w)| {
                let inv = !*w;
                inv.leading_ones() != inv.count_ones()
            })
            .prop_map(|(a, w)| {
                let w = Ipv4Addr::from(w);
                // A wildcard keeps the address's ignored bits clear, as
                // the device shows it; the host bits case is covered above.
                Addr::Wild(Ipv4Addr::from(a & !u32::from(w)), w)
            }),
    ]
}

#[derive(Debug, Clone)]
enum Port {
    Number(u16),
    Name(&'static str),
}

impl Port {
    fn text(&self) -> String {
        match self {
            Port::Number(n) => n.to_string(),
            Port::Name(n) => (*n).to_string(),
        }
    }
}

const TCP_NAMES: &[&str] = &["www", "telnet", "domain", "bgp", "smtp", "ftp", "pop3"];
const UDP_NAMES: &[&str] = &[
    "domain", "ntp", "snmp", "syslog", "tftp", "bootps", "isakmp",
];

fn port(proto: &'static str) -> impl Strategy<Value = Port> {
    let names = if proto == "tcp" { TCP_NAMES } else { UDP_NAMES };
    prop_oneof![
        any::<u16>().prop_map(Port::Number),
        proptest::sample::select(names).prop_map(Port::Name),
    ]
}

fn ports(proto: &'static str) -> BoxedStrategy<Option<String>> {
    if !matches!(proto, "tcp" | "udp") {
        return Just(None).boxed();
    }
    prop_oneof![
        2 => Just(None),
        2 => proptest::collection::vec(port(proto), 1..4)
            .prop_map(|v| Some(format!("eq {}", v.iter().map(Port::text).collect::<Vec<_>>().join(" ")))),
        1 => (prop_oneof![Just("neq"), Just("lt"), Just("gt")], port(proto))
            .prop_map(|(op, p)| Some(format!("{op} {}", p.text()))),
        1 => (any::<u16>(), any::<u16>())
            .prop_map(|(a, b)| Some(format!("range {} {}", a.min(b), a.max(b)))),
    ]
    .boxed()
}

/// One option as each platform may write it: a name on one side, the
/// number on the other, either way round.
fn named_or_number(name: &'static str, number: String) -> BoxedStrategy<(String, String)> {
    prop_oneof![
        Just((name.to_string(), number.clone())),
        Just((number.clone(), name.to_string())),
        Just((name.to_string(), name.to_string())),
    ]
    .boxed()
}

/// What follows the addresses, in the order the devices print it, in
/// (IOS, NX-OS) forms.
fn tail(proto: &'static str) -> impl Strategy<Value = Vec<(String, String)>> {
    let icmp: Vec<(&'static str, u8, Option<u8>)> =
        nightshift::jobs::acl::options::icmp_names().collect();
    let first: BoxedStrategy<Option<(String, String)>> = match proto {
        "icmp" => prop_oneof![
            1 => Just(None),
            4 => proptest::sample::select(icmp).prop_flat_map(|(name, ty, code)| {
                let number = match code {
                    Some(c) => format!("{ty} {c}"),
                    None => ty.to_string(),
                };
                named_or_number(name, number).prop_map(Some)
            }),
        ]
        .boxed(),
        "tcp" => proptest::sample::select(&["", "established", "ack", "syn", "rst"][..])
            .prop_map(|w| (!w.is_empty()).then(|| (w.to_string(), w.to_string())))
            .boxed(),
        _ => Just(None).boxed(),
    };
    let dscp: Vec<(&'static str, u8)> = nightshift::jobs::acl::options::dscp_names().collect();
    let precedence: Vec<(&'static str, u8)> =
        nightshift::jobs::acl::options::precedence_names().collect();
    let marking = prop_oneof![
        2 => Just(None),
        2 => proptest::sample::select(dscp).prop_flat_map(|(n, v)| {
            named_or_number(n, v.to_string())
                .prop_map(|(a, b)| Some((format!("dscp {a}"), format!("dscp {b}"))))
        }),
        1 => proptest::sample::select(precedence).prop_flat_map(|(n, v)| {
            named_or_number(n, v.to_string()).prop_map(|(a, b)| {
                Some((format!("precedence {a}"), format!("precedence {b}")))
            })
        }),
    ];
    let word = |options: &'static [&'static str]| {
        proptest::sample::select(options)
            .prop_map(|w| (!w.is_empty()).then(|| (w.to_string(), w.to_string())))
    };
    (
        first,
        marking,
        word(&["", "fragments"]),
        word(&["", "time-range OFFICE-HOURS"]),
        word(&["", "log", "log-input"]),
    )
        .prop_map(|(a, b, c, d, e)| [a, b, c, d, e].into_iter().flatten().collect())
}

/// One rule in both platforms' forms.
#[derive(Debug, Clone)]
struct Rule {
    ios: String,
    nxos: String,
}

fn rule() -> impl Strategy<Value = Rule> {
    let proto = proptest::sample::select(&["ip", "tcp", "udp", "icmp", "gre", "47", "ospf"][..]);
    (proptest::bool::ANY, proto, proptest::bool::ANY)
        .prop_flat_map(|(permit, proto, host_keyword)| {
            (
                Just(permit),
                Just(proto),
                Just(host_keyword),
                addr(),
                ports(proto),
                addr(),
                ports(proto),
                tail(proto),
            )
        })
        .prop_map(|(permit, proto, host_keyword, src, sp, dst, dp, tail)| {
            let action = if permit { "permit" } else { "deny" };
            let form = |s: String, d: String| {
                let mut parts = vec![action.to_string(), proto.to_string(), s];
                parts.extend(sp.clone());
                parts.push(d);
                parts.extend(dp.clone());
                parts.join(" ")
            };
            let with = |line: String, nxos: bool| {
                let mut parts = vec![line];
                parts.extend(
                    tail.iter()
                        .map(|(i, n)| if nxos { n.clone() } else { i.clone() }),
                );
                parts.join(" ")
            };
            Rule {
                ios: with(form(src.ios(host_keyword), dst.ios(host_keyword)), false),
                nxos: with(form(src.nxos(), dst.nxos()), true),
            }
        })
}

fn entry(line: &str) -> Result<Entry, TestCaseError> {
    parse_line(line)
        .map(|l| l.entry)
        .map_err(|e| TestCaseError::fail(format!("{line:?} not read: {}", e.message)))
}

proptest! {
    #![proptest_config(super::config(2000))]

    #[test]
    fn ios_and_nxos_forms_of_a_rule_compare_equal(r in rule()) {
        prop_assert_eq!(entry(&r.ios)?, entry(&r.nxos)?, "{} / {}", r.ios, r.nxos);
    }

    #[test]
    fn normalising_is_idempotent(r in rule()) {
        let once = entry(&r.ios)?;
        prop_assert_eq!(entry(&once.to_string())?, once.clone());
        // And with what devices add: sequence numbers, padding, counters.
        let shown = format!("    40 {}   (17 matches)", r.nxos.replace(' ', "  "));
        prop_assert_eq!(entry(&shown)?, once);
    }

    #[test]
    fn what_a_device_shows_back_reads_as_what_was_written(r in rule()) {
        let written = entry(&r.ios)?;
        for (platform, line) in [(Platform::CiscoIos, &r.ios), (Platform::CiscoNxos, &r.nxos)] {
            let shown = entry_as_shown(line, platform)
                .map_err(|i| TestCaseError::fail(format!("{platform:?} refuses token {i} of {line}")))?;
            prop_assert_eq!(entry(&shown)?, written.clone(), "{:?} shows {:?}", platform, shown);
        }
    }

    #[test]
    fn remarks_are_sent_as_written_and_read_back(text in "[!-~]([ -~]{0,60}[!-~])?") {
        let line = format!("remark {text}");
        let read = parse_line(&line).map_err(|e| TestCaseError::fail(e.message))?;
        let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
        prop_assert_eq!(&read.text, &format!("remark {collapsed}"));
        prop_assert_eq!(&read.entry, &Entry::Remark(collapsed));
        for platform in [Platform::CiscoIos, Platform::CiscoNxos] {
            let shown = entry_as_shown(&read.text, platform).map_err(|i| TestCaseError::fail(format!("token {i}")))?;
            prop_assert_eq!(entry(&shown)?, read.entry.clone());
        }
    }
}

#[test]
fn any_is_every_address() {
    assert_eq!(
        entry("permit ip 0.0.0.0 255.255.255.255 any").unwrap(),
        entry("permit ip any 0.0.0.0/0").unwrap()
    );
}

#[test]
fn a_remark_that_ends_like_a_hit_counter_is_kept_whole() {
    let read = parse_line("remark rollback plan in CHG-7 (1 match)").unwrap();
    assert_eq!(read.text, "remark rollback plan in CHG-7 (1 match)");
    // Devices print no counters after remarks: read back, it is the same.
    assert_eq!(
        read.entry,
        parse_line("30 remark rollback plan in CHG-7 (1 match)")
            .unwrap()
            .entry
    );
}
