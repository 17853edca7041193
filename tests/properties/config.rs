//! The config reader on generated input: any bytes, and any mutation of a
//! valid config, either load or report problems, each located inside the
//! file. Never a panic, never a problem without a place to look.

use std::path::Path;

use chrono::{TimeZone, Utc};
use nightshift::config::{Config, ConfigError, Problem};
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../../config/nightshift.toml");
const BROKEN: &[&str] = &[
    include_str!("../configs/broken/bad-acl.toml"),
    include_str!("../configs/broken/bad-values.toml"),
    include_str!("../configs/broken/duplicate-devices.toml"),
];

/// Lines and their lengths in characters, as an editor shows them.
fn line_lengths(src: &str) -> Vec<usize> {
    src.split('\n').map(|l| l.chars().count()).collect()
}

/// Every problem points at a line and column that exist in `src` (the
/// column may be one past the end of its line: "missing value at end").
fn check_located(src: &str, problems: &[Problem]) -> Result<(), TestCaseError> {
    prop_assert!(!problems.is_empty(), "invalid without a problem");
    let lines = line_lengths(src);
    for p in problems {
        prop_assert_eq!(&p.file, "t.toml");
        prop_assert!(
            p.at.line >= 1 && p.at.line <= lines.len(),
            "line {} outside 1..={}: {}",
            p.at.line,
            lines.len(),
            p
        );
        let len = lines[p.at.line - 1];
        prop_assert!(
            p.at.column >= 1 && p.at.column <= len + 1,
            "column {} outside line {} of {} characters: {}",
            p.at.column,
            p.at.line,
            len,
            p
        );
        prop_assert!(!p.message.trim().is_empty(), "empty message at {}", p);
    }
    Ok(())
}

fn load_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
    let now = Utc.with_ymd_and_hms(2026, 12, 5, 3, 0, 0).unwrap();
    match Config::from_bytes(Path::new("t.toml"), bytes, now) {
        Ok(_) => Ok(()),
        Err(ConfigError::Invalid { problems, .. }) => {
            // Located in the text as an editor shows it: invalid UTF-8 is
            // shown as U+FFFD, one per bad sequence.
            check_located(&String::from_utf8_lossy(bytes), &problems)
        }
        Err(e) => Err(TestCaseError::fail(format!("not located: {e}"))),
    }
}

/// A change an editor, a bad merge or a careless script could make.
#[derive(Debug, Clone)]
enum Mutation {
    Delete {
        at: usize,
        len: usize,
    },
    Duplicate {
        at: usize,
        len: usize,
    },
    SwapLines {
        a: usize,
        b: usize,
    },
    Insert {
        at: usize,
        text: String,
    },
    /// Replace the value of the n-th `key = value` line.
    Value {
        line: usize,
        value: String,
    },
}

fn odd_values() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("99999999999999999999999999".to_string()),
        Just("-9223372036854775808".to_string()),
        Just("1e309".to_string()),
        Just("nan".to_string()),
        Just("true".to_string()),
        Just("[]".to_string()),
        Just("[1, \"a\", {}]".to_string()),
        Just("{ a = 1 }".to_string()),
        Just("\"\"".to_string()),
        Just("\"\u{202e}\u{0}\u{fffd}🦀\"".to_string()),
        Just("\"\\uD800\"".to_string()),
        Just("1979-05-27T07:32:00Z".to_string()),
        Just("\"99999999999999999999h\"".to_string()),
        Just("\"-5m\"".to_string()),
        Just("\"0s\"".to_string()),
        Just("'''\nmulti\n'''".to_string()),
        "\"[ -~]{0,12}\"".prop_map(|s| s),
        any::<i64>().prop_map(|n| n.to_string()),
    ]
}

fn inserts() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\u{0}".to_string()),
        Just("\u{feff}".to_string()),
        Just("é".to_string()),
        Just("\r".to_string()),
        Just("[".to_string()),
        Just("]]".to_string()),
        Just("\"".to_string()),
        Just("=".to_string()),
        Just("\n[devices]\n".to_string()),
        Just("\n[[jobs]]\n".to_string()),
        Just("\nversion = 2\n".to_string()),
        Just("\n[windows.x]\ncron = \"61 * * * *\"\n".to_string()),
        "\\PC{0,8}".prop_map(|s| s),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 1usize..200).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        (any::<usize>(), inserts()).prop_map(|(at, text)| Mutation::Insert { at, text }),
        (any::<usize>(), odd_values()).prop_map(|(line, value)| Mutation::Value { line, value }),
    ]
}

/// The nearest character boundary at or below `at`.
fn floor(s: &str, at: usize) -> usize {
    let mut at = at % (s.len() + 1);
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(src: &str, m: &Mutation) -> String {
    match m {
        Mutation::Delete { at, len } => {
            let a = floor(src, *at);
            let b = floor(src, (a + len).min(src.len()));
            format!("{}{}", &src[..a], &src[b.max(a)..])
        }
        Mutation::Duplicate { at, len } => {
            let a = floor(src, *at);
            let b = floor(src, (a + len).min(src.len())).max(a);
            format!("{}{}{}", &src[..b], &src[a..b], &src[b..])
        }
        Mutation::SwapLines { a, b } => {
            let mut lines: Vec<&str> = src.split('\n').collect();
            let n = lines.len();
            lines.swap(a % n, b % n);
            lines.join("\n")
        }
        Mutation::Insert { at, text } => {
            let a = floor(src, *at);
            format!("{}{}{}", &src[..a], text, &src[a..])
        }
        Mutation::Value { line, value } => {
            let assignments: Vec<usize> = src
                .split('\n')
                .enumerate()
                .filter(|(_, l)| !l.trim_start().starts_with('#') && l.contains(" = "))
                .map(|(i, _)| i)
                .collect();
            if assignments.is_empty() {
                return src.to_string();
            }
            let target = assignments[line % assignments.len()];
            src.split('\n')
                .enumerate()
                .map(|(i, l)| match l.split_once(" = ") {
                    Some((k, _)) if i == target => format!("{k} = {value}"),
                    _ => l.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
    }
}

fn valid_config() -> impl Strategy<Value = &'static str> {
    let mut all = vec![EXAMPLE];
    all.extend_from_slice(BROKEN);
    proptest::sample::select(all)
}

proptest! {
    #![proptest_config(super::config(256))]

    #[test]
    fn any_bytes_load_or_report_located_problems(
        bytes in proptest::collection::vec(any::<u8>(), 0..400)
    ) {
        load_bytes(&bytes)?;
    }

    #[test]
    fn any_printable_text_loads_or_reports_located_problems(text in "[ -~\n\t]{0,300}") {
        load_bytes(text.as_bytes())?;
    }

    #[test]
    fn mutated_configs_load_or_report_located_problems(
        base in valid_config(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let mut src = base.to_string();
        for m in &mutations {
            src = apply(&src, m);
        }
        load_bytes(src.as_bytes())?;
    }

    #[test]
    fn configs_cut_anywhere_load_or_report_located_problems(
        at in any::<usize>(),
        base in valid_config(),
    ) {
        // Bytes, not characters: a cut may fall inside a multi-byte one.
        let bytes = base.as_bytes();
        load_bytes(&bytes[..at % (bytes.len() + 1)])?;
    }
}

#[test]
fn invalid_utf8_is_located_at_its_line_and_column() {
    let now = Utc.with_ymd_and_hms(2026, 12, 5, 3, 0, 0).unwrap();
    let src = b"version = 1\n[daemon]\nstate_dir = \"/var/lib/n\xffs\"\n";
    let Err(ConfigError::Invalid { problems, .. }) =
        Config::from_bytes(Path::new("t.toml"), src, now)
    else {
        panic!("invalid UTF-8 accepted");
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!((problems[0].at.line, problems[0].at.column), (3, 24));
    assert!(problems[0].message.contains("UTF-8"), "{}", problems[0]);
}
