//! A spanned TOML document and the problems found in it.
//!
//! The config is read in two passes (parse, then validate). Both record
//! [`Problem`]s here instead of stopping at the first one, so that an
//! engineer fixes a broken file in one go rather than one error per run.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

/// A line and column (both 1-based, column counted in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// One thing wrong with the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub at: Location,
    /// Key path such as `devices[3].platform` (empty for syntax errors).
    pub key: String,
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.at.line, self.at.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n    hint: {hint}")?;
        }
        Ok(())
    }
}

/// The source text, its line index and the problems found so far.
pub struct Doc<'s> {
    file: String,
    src: &'s str,
    line_starts: Vec<usize>,
    problems: Vec<Problem>,
}

impl<'s> Doc<'s> {
    pub fn new(file: impl Into<String>, src: &'s str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        Doc {
            file: file.into(),
            src,
            line_starts,
            problems: Vec::new(),
        }
    }

    pub fn src(&self) -> &'s str {
        self.src
    }

    /// Maps a byte offset to a line and column.
    pub fn locate(&self, offset: usize) -> Location {
        let offset = offset.min(self.src.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        let column = self
            .src
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        Location {
            line: line + 1,
            column,
        }
    }

    pub fn problem(
        &mut self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let at = self.locate(span.start);
        self.problems.push(Problem {
            file: self.file.clone(),
            at,
            key: key.into(),
            message: message.into(),
            hint,
        });
    }

    pub fn problem_count(&self) -> usize {
        self.problems.len()
    }

    pub fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }

    pub fn into_problems(mut self) -> Vec<Problem> {
        self.problems.sort_by_key(|p| p.at);
        self.problems
    }
}

/// Bytes that are not UTF-8, located at the first bad one (`valid` bytes
/// before it are good text).
pub fn not_utf8(file: &str, bytes: &[u8], valid: usize) -> Problem {
    let good = String::from_utf8_lossy(&bytes[..valid.min(bytes.len())]);
    let at = Doc::new(file, &good).locate(good.len());
    Problem {
        file: file.to_string(),
        at,
        key: String::new(),
        message: format!(
            "the file is not UTF-8 text (byte 0x{:02x})",
            bytes.get(valid).copied().unwrap_or(0)
        ),
        hint: Some(
            "save the file as UTF-8; `iconv -f LATIN1 -t UTF-8` converts a Latin-1 file".into(),
        ),
    }
}

/// What a config value is, for "expected X, found Y" messages.
pub fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// Key names that suggest a secret was written into the file.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "passphrase",
    "token",
    "private_key",
    "api_key",
];

pub fn looks_like_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| key.contains(w))
}

/// A table being read: remembers which keys were used so that the rest can
/// be reported as unknown, with a suggestion for near misses.
pub struct Table<'a, 'i> {
    table: &'a DeTable<'i>,
    pub path: String,
    pub span: Range<usize>,
    known: &'static [&'static str],
    used: HashSet<&'a str>,
}

/// A value together with where it was written.
#[derive(Debug, Clone)]
pub struct At<T> {
    pub value: T,
    pub span: Range<usize>,
}

impl<'a, 'i> Table<'a, 'i> {
    /// `known` lists every key this table accepts (used for unknown-key checks
    /// and suggestions).
    pub fn new(
        table: &'a DeTable<'i>,
        path: impl Into<String>,
        span: Range<usize>,
        known: &'static [&'static str],
    ) -> Self {
        Table {
            table,
            path: path.into(),
            span,
            known,
            used: HashSet::new(),
        }
    }

    pub fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The raw value of `key`, marking it as used.
    pub fn raw(&mut self, key: &str) -> Option<&'a Spanned<DeValue<'i>>> {
        let (k, v) = self.table.get_key_value(key)?;
        self.used.insert(k.get_ref().as_ref());
        Some(v)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// Whether `[key.name]` exists, whatever its content.
    pub fn has_named(&self, key: &str, name: &str) -> bool {
        matches!(self.table.get(key).map(|v| v.get_ref()), Some(DeValue::Table(t)) if t.contains_key(name))
    }

    fn wrong_type(&self, doc: &mut Doc<'_>, key: &str, v: &Spanned<DeValue<'_>>, want: &str) {
        doc.problem(
            v.span(),
            self.key_path(key),
            format!("expected {want}, found {}", type_name(v.get_ref())),
            None,
        );
    }

    pub fn string(&mut self, doc: &mut Doc<'_>, key: &str) -> Option<At<String>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(At {
                value: s.to_string(),
                span: v.span(),
            }),
            _ => {
                self.wrong_type(doc, key, v, "a string");
                None
            }
        }
    }

    /// A string that must be present.
    pub fn required_string(
        &mut self,
        doc: &mut Doc<'_>,
        key: &str,
        hint: &str,
    ) -> Option<At<String>> {
        if !self.contains(key) {
            doc.problem(
                self.span.clone(),
                self.key_path(key),
                format!("`{key}` is missing"),
                Some(hint.to_string()),
            );
            return None;
        }
        self.string(doc, key)
    }

    pub fn integer(&mut self, doc: &mut Doc<'_>, key: &str) -> Option<At<i64>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(At {
                    value: n,
                    span: v.span(),
                }),
                Err(_) => {
                    doc.problem(v.span(), self.key_path(key), "integer out of range", None);
                    None
                }
            },
            _ => {
                self.wrong_type(doc, key, v, "an integer");
                None
            }
        }
    }

    /// An integer within `range`, reported with `hint` when outside.
    pub fn integer_in(
        &mut self,
        doc: &mut Doc<'_>,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<At<i64>> {
        let at = self.integer(doc, key)?;
        if range.contains(&at.value) {
            Some(at)
        } else {
            doc.problem(
                at.span,
                self.key_path(key),
                format!("{} is out of range", at.value),
                Some(format!(
                    "use a whole number from {} to {}",
                    range.start(),
                    range.end()
                )),
            );
            None
        }
    }

    pub fn boolean(&mut self, doc: &mut Doc<'_>, key: &str) -> Option<At<bool>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(At {
                value: *b,
                span: v.span(),
            }),
            _ => {
                self.wrong_type(doc, key, v, "true or false");
                None
            }
        }
    }

    /// A duration written with its unit, such as `"10s"` or `"3h"`.
    pub fn duration(&mut self, doc: &mut Doc<'_>, key: &str) -> Option<At<Duration>> {
        let v = self.raw(key)?;
        let hint = Some(
            "write a number with its unit in a string, e.g. \"10s\", \"90m\", \"3h\" or \"1h 30m\""
                .to_string(),
        );
        match v.get_ref() {
            DeValue::String(s) => match humantime::parse_duration(s) {
                Ok(d) if d.is_zero() => {
                    doc.problem(
                        v.span(),
                        self.key_path(key),
                        "duration must not be zero",
                        hint,
                    );
                    None
                }
                Ok(d) => Some(At {
                    value: d,
                    span: v.span(),
                }),
                Err(e) => {
                    doc.problem(
                        v.span(),
                        self.key_path(key),
                        format!("\"{s}\" is not a duration ({e})"),
                        hint,
                    );
                    None
                }
            },
            other => {
                doc.problem(
                    v.span(),
                    self.key_path(key),
                    format!("expected a duration string, found {}", type_name(other)),
                    hint,
                );
                None
            }
        }
    }

    pub fn string_list(&mut self, doc: &mut Doc<'_>, key: &str) -> Option<Vec<At<String>>> {
        let v = self.raw(key)?;
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(doc, key, v, "a list of strings");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::String(s) => out.push(At {
                    value: s.to_string(),
                    span: item.span(),
                }),
                other => doc.problem(
                    item.span(),
                    format!("{}[{i}]", self.key_path(key)),
                    format!("expected a string, found {}", type_name(other)),
                    None,
                ),
            }
        }
        Some(out)
    }

    pub fn table(
        &mut self,
        doc: &mut Doc<'_>,
        key: &str,
        known: &'static [&'static str],
    ) -> Option<Table<'a, 'i>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::Table(t) => Some(Table::new(t, self.key_path(key), v.span(), known)),
            _ => {
                self.wrong_type(doc, key, v, "a table");
                None
            }
        }
    }

    /// Every entry of a table of named tables such as `[jobs.NAME]`.
    pub fn named_tables(
        &mut self,
        doc: &mut Doc<'_>,
        key: &str,
    ) -> Vec<(At<String>, &'a Spanned<DeValue<'i>>)> {
        let Some(v) = self.raw(key) else {
            return Vec::new();
        };
        let DeValue::Table(t) = v.get_ref() else {
            self.wrong_type(doc, key, v, "a table of named tables");
            return Vec::new();
        };
        t.iter()
            .map(|(k, v)| {
                (
                    At {
                        value: k.get_ref().to_string(),
                        span: k.span(),
                    },
                    v,
                )
            })
            .collect()
    }

    /// The entries of an array of tables such as `[[devices]]`.
    pub fn array_of_tables(&mut self, doc: &mut Doc<'_>, key: &str) -> Option<&'a DeArray<'i>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::Array(a) => Some(a),
            _ => {
                self.wrong_type(doc, key, v, &format!("an array of tables (`[[{key}]]`)"));
                None
            }
        }
    }

    /// Reports every key that was not used: secrets with their own message,
    /// the rest as unknown with the closest known key as a suggestion.
    pub fn finish(self, doc: &mut Doc<'_>) {
        for (k, v) in self.table.iter() {
            let name: &str = k.get_ref().as_ref();
            if self.used.contains(name) {
                continue;
            }
            let span = k.span();
            if looks_like_secret(name) {
                doc.problem(
                    span,
                    self.key_path(name),
                    "secrets never live in the config file",
                    Some(
                        "remove this key and store the secret in the OS keyring with \
                         `nightshift credentials set --profile NAME`"
                            .to_string(),
                    ),
                );
                continue;
            }
            let _ = v;
            let hint = match closest(name, self.known) {
                Some(near) => format!("did you mean `{near}`?"),
                None if self.known.is_empty() => "remove it".to_string(),
                None => format!("known keys here: {}", self.known.join(", ")),
            };
            doc.problem(
                span,
                self.key_path(name),
                format!("unknown key `{name}`"),
                Some(hint),
            );
        }
    }
}

/// Views a spanned value as a table, or reports what it is instead.
pub fn as_table<'a, 'i>(
    doc: &mut Doc<'_>,
    value: &'a Spanned<DeValue<'i>>,
    path: String,
    known: &'static [&'static str],
) -> Option<Table<'a, 'i>> {
    match value.get_ref() {
        DeValue::Table(t) => Some(Table::new(t, path, value.span(), known)),
        other => {
            doc.problem(
                value.span(),
                path,
                format!("expected a table, found {}", type_name(other)),
                None,
            );
            None
        }
    }
}

/// The known key closest to `name` by edit distance, if close enough to be a
/// likely typo.
pub fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_counts_lines_and_characters() {
        let doc = Doc::new("f.toml", "a = 1\nbé = 2\n");
        assert_eq!(doc.locate(0), Location { line: 1, column: 1 });
        assert_eq!(doc.locate(6), Location { line: 2, column: 1 });
        // 'é' is two bytes but one column.
        assert_eq!(doc.locate(10), Location { line: 2, column: 4 });
    }

    #[test]
    fn closest_suggests_typos_only() {
        let known = ["connect_timeout", "command_timeout", "known_hosts"];
        assert_eq!(closest("conect_timeout", &known), Some("connect_timeout"));
        assert_eq!(closest("banana", &known), None);
    }

    #[test]
    fn secret_names_are_recognised() {
        assert!(looks_like_secret("enable_password"));
        assert!(looks_like_secret("Secret"));
        assert!(!looks_like_secret("username"));
    }
}
