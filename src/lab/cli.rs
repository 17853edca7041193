//! The simulated CLI of one SSH session: modes, prompts, keyword
//! abbreviations and error messages as IOS and NX-OS print them. The
//! commands themselves live in `ios.rs`, `nxos.rs` and `config.rs`.

use std::sync::Arc;

use super::acl::{AclKind, Dialect};
use super::modem::Modem;
use super::{LabDevice, LabShared};

/// Where the session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// IOS `>`.
    User,
    /// `#`.
    Enable,
    Config(ConfigMode),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigMode {
    Global,
    Interface(String),
    /// ACL entry mode for the ACL of this kind and name.
    Acl(AclKind, String),
    /// `line vty …`.
    Line,
    Archive,
}

/// A question the device asked and waits for an answer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    EnableSecret(u8),
    CopyDestination,
    ConfirmReload(u64),
    ConfirmClearLine(u32),
    ConfirmDisconnect,
}

/// What the session does after printing a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Then {
    Prompt,
    Ask(Question, String),
    /// `exit`: close the session cleanly.
    Close,
    /// Fault injection: the connection just drops.
    Drop,
    /// Reverse telnet: input now goes to the modem.
    Attach,
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub out: String,
    pub then: Then,
}

impl Reply {
    pub fn text(out: impl Into<String>) -> Self {
        Reply {
            out: out.into(),
            then: Then::Prompt,
        }
    }
    pub fn empty() -> Self {
        Reply::text("")
    }
    pub fn ask(out: impl Into<String>, q: Question, prompt: impl Into<String>) -> Self {
        Reply {
            out: out.into(),
            then: Then::Ask(q, prompt.into()),
        }
    }
}

/// A reverse-telnet connection from the hub to one of its modem lines.
#[derive(Debug)]
pub struct Telnet {
    pub line: u32,
    pub epoch: u64,
    pub modem: Modem,
    pub attached: bool,
}

pub struct Cli {
    pub dev: Arc<LabDevice>,
    pub lab: Arc<LabShared>,
    pub id: u64,
    pub mode: Mode,
    pub term_length: usize,
    pub term_width: usize,
    /// NX-OS `configure session NAME` in progress.
    pub config_session: Option<String>,
    pub telnet: Option<Telnet>,
}

/// A command line split into tokens, remembering where each starts so that
/// the caret lands under the bad word.
pub struct Words<'a> {
    pub line: &'a str,
    pub words: Vec<(usize, &'a str)>,
}

impl<'a> Words<'a> {
    pub fn new(line: &'a str) -> Self {
        let mut words = Vec::new();
        let mut start = None;
        for (i, c) in line.char_indices() {
            match (c.is_whitespace(), start) {
                (true, Some(s)) => {
                    words.push((s, &line[s..i]));
                    start = None;
                }
                (false, None) => start = Some(i),
                _ => {}
            }
        }
        if let Some(s) = start {
            words.push((s, &line[s..]));
        }
        Words { line, words }
    }

    pub fn get(&self, i: usize) -> Option<&'a str> {
        self.words.get(i).map(|(_, w)| *w)
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn offset(&self, i: usize) -> usize {
        self.words
            .get(i)
            .map_or(self.line.chars().count(), |(o, _)| {
                self.line[..*o].chars().count()
            })
    }

    /// Everything from word `i` on, as typed.
    pub fn rest(&self, i: usize) -> &'a str {
        self.words.get(i).map_or("", |(o, _)| &self.line[*o..])
    }
}

/// Does `typed` abbreviate `keyword` (at least `min` characters)?
pub fn abbrev(typed: &str, keyword: &str, min: usize) -> bool {
    typed.len() >= min.min(keyword.len()) && keyword.starts_with(&typed.to_ascii_lowercase())
}

/// Resolves `typed` among `(keyword, min)` choices: `Ok(index)`, or `Err(true)`
/// when ambiguous, `Err(false)` when nothing matches.
pub fn choose(typed: &str, choices: &[(&str, usize)]) -> Result<usize, bool> {
    let lower = typed.to_ascii_lowercase();
    if let Some(i) = choices.iter().position(|(k, _)| *k == lower) {
        return Ok(i);
    }
    let hits: Vec<usize> = choices
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| k.starts_with(&lower))
        .map(|(i, _)| i)
        .collect();
    match hits.as_slice() {
        [one] if typed.len() >= choices[*one].1 => Ok(*one),
        [] => Err(false),
        _ => Err(true),
    }
}

impl Cli {
    pub fn dialect(&self) -> Dialect {
        match self.dev.platform {
            crate::platform::Platform::CiscoIos => Dialect::Ios,
            crate::platform::Platform::CiscoNxos => Dialect::Nxos,
        }
    }

    pub fn hostname(&self) -> String {
        self.dev.lock().running.hostname.clone()
    }

    pub fn prompt(&self) -> String {
        let host = self.hostname();
        match self.dialect() {
            Dialect::Ios => {
                // IOS shortens the hostname in configuration modes.
                let short: String = host.chars().take(20).collect();
                match &self.mode {
                    Mode::User => format!("{host}>"),
                    Mode::Enable => format!("{host}#"),
                    Mode::Config(c) => format!(
                        "{short}({})#",
                        match c {
                            ConfigMode::Global => "config",
                            ConfigMode::Interface(_) => "config-if",
                            ConfigMode::Acl(AclKind::Extended, _) => "config-ext-nacl",
                            ConfigMode::Acl(AclKind::Standard, _) => "config-std-nacl",
                            ConfigMode::Acl(AclKind::Ipv6, _) => "config-ipv6-acl",
                            ConfigMode::Line => "config-line",
                            ConfigMode::Archive => "config-archive",
                        }
                    ),
                }
            }
            Dialect::Nxos => {
                let s = if self.config_session.is_some() {
                    "-s"
                } else {
                    ""
                };
                match &self.mode {
                    Mode::User | Mode::Enable => format!("{host}# "),
                    Mode::Config(c) => format!(
                        "{host}(config{s}{})# ",
                        match c {
                            ConfigMode::Global => "",
                            ConfigMode::Interface(_) => "-if",
                            ConfigMode::Acl(AclKind::Ipv6, _) => "-ipv6-acl",
                            ConfigMode::Acl(..) => "-acl",
                            ConfigMode::Line => "-line",
                            ConfigMode::Archive => "",
                        }
                    ),
                }
            }
        }
    }

    /// The caret line and error for a bad word at `offset` in the line.
    pub fn invalid_at(&self, offset: usize) -> String {
        let pad = " ".repeat(self.prompt().chars().count() + offset);
        match self.dialect() {
            Dialect::Ios => format!("{pad}^\r\n% Invalid input detected at '^' marker.\r\n\r\n"),
            Dialect::Nxos => format!("{pad}^\r\n% Invalid command at '^' marker.\r\n"),
        }
    }

    pub fn invalid(&self, w: &Words<'_>, word: usize) -> Reply {
        Reply::text(self.invalid_at(w.offset(word)))
    }

    pub fn incomplete(&self) -> Reply {
        match self.dialect() {
            Dialect::Ios => Reply::text("% Incomplete command.\r\n\r\n"),
            Dialect::Nxos => Reply::text("% Incomplete command at '^' marker.\r\n"),
        }
    }

    pub fn ambiguous(&self, w: &Words<'_>, word: usize) -> Reply {
        match self.dialect() {
            Dialect::Ios => Reply::text(format!("% Ambiguous command:  \"{}\"\r\n", w.line.trim())),
            Dialect::Nxos => {
                let pad = " ".repeat(self.prompt().chars().count() + w.offset(word));
                Reply::text(format!("{pad}^\r\n% Ambiguous command at '^' marker.\r\n"))
            }
        }
    }

    /// `choose` on word `i`, turning a miss into the platform's error reply.
    pub fn pick(&self, w: &Words<'_>, i: usize, choices: &[(&str, usize)]) -> Result<usize, Reply> {
        let Some(typed) = w.get(i) else {
            return Err(self.incomplete());
        };
        choose(typed, choices).map_err(|ambiguous| {
            if ambiguous {
                self.ambiguous(w, i)
            } else {
                self.invalid(w, i)
            }
        })
    }
}

/// Applies `| include`, `| exclude`, `| begin`, `| section` to output text.
/// Compiles an output filter's pattern once per lab: thousands of devices
/// are asked the same `| include` and compiling is most of its cost. Shared
/// as `Arc`: a cloned `Regex` would build its search caches anew.
fn filter_regex(pattern: &str) -> Option<Arc<regex::Regex>> {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    type Compiled = HashMap<String, Option<Arc<regex::Regex>>>;
    static COMPILED: LazyLock<Mutex<Compiled>> = LazyLock::new(Default::default);
    let mut compiled = COMPILED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(re) = compiled.get(pattern) {
        return re.clone();
    }
    if compiled.len() >= 1024 {
        compiled.clear();
    }
    let re = regex::Regex::new(&ios_regex(pattern)).ok().map(Arc::new);
    compiled.insert(pattern.to_string(), re.clone());
    re
}

/// IOS's regular expressions: `_` matches a delimiter (start, end, space,
/// comma, brace, parenthesis), not an underscore; `\_` is an underscore.
fn ios_regex(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut escaped = false;
    for c in pattern.chars() {
        match (c, escaped) {
            ('_', false) => out.push_str("(?:^|$|[ ,(){}])"),
            ('\\', false) => {
                escaped = true;
                continue;
            }
            ('_', true) => out.push('_'),
            (c, true) => {
                out.push('\\');
                out.push(c);
            }
            (c, false) => out.push(c),
        }
        escaped = false;
    }
    out
}

pub fn filter_output(text: &str, filter: &str) -> Option<String> {
    let w = Words::new(filter);
    let pattern = w.rest(1).trim();
    let pattern = pattern.trim_matches('"').trim_matches('\'');
    let re = filter_regex(pattern)?;
    let lines: Vec<&str> = text.split("\r\n").collect();
    let kind = w.get(0)?;
    let keep: Vec<&str> = if abbrev(kind, "include", 1) {
        lines.into_iter().filter(|l| re.is_match(l)).collect()
    } else if abbrev(kind, "exclude", 1) {
        lines.into_iter().filter(|l| !re.is_match(l)).collect()
    } else if abbrev(kind, "begin", 1) {
        lines.into_iter().skip_while(|l| !re.is_match(l)).collect()
    } else if abbrev(kind, "section", 1) {
        let mut out = Vec::new();
        let mut inside = false;
        for l in lines {
            let top = !l.starts_with(' ');
            if top {
                inside = re.is_match(l);
            }
            if inside || (!top && re.is_match(l)) {
                out.push(l);
            }
        }
        out
    } else {
        return None;
    };
    let mut s = keep.join("\r\n");
    if !s.is_empty() && !s.ends_with("\r\n") {
        s.push_str("\r\n");
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abbreviations() {
        let c = [("show", 2), ("ssh", 2), ("configure", 4), ("copy", 2)];
        assert_eq!(choose("sh", &c), Ok(0));
        assert_eq!(choose("s", &c), Err(true));
        assert_eq!(choose("conf", &c), Ok(2));
        assert_eq!(choose("xyz", &c), Err(false));
    }

    #[test]
    fn words_keep_offsets() {
        let w = Words::new("show  foo bar");
        assert_eq!(w.get(1), Some("foo"));
        assert_eq!(w.offset(1), 6);
        assert_eq!(w.rest(1), "foo bar");
    }

    #[test]
    fn filters() {
        let t = "a\r\n b\r\nc x\r\n d\r\n";
        assert_eq!(filter_output(t, "include x").unwrap(), "c x\r\n");
        assert_eq!(filter_output(t, "section ^c").unwrap(), "c x\r\n d\r\n");
        // IOS: `_` is a delimiter, not an underscore.
        let acls = "access-list 10 permit any\r\naccess-list 101 permit ip any any\r\nA_B\r\n";
        assert_eq!(
            filter_output(acls, "include ^access-list 10_").unwrap(),
            "access-list 10 permit any\r\n"
        );
        assert_eq!(filter_output(acls, "include A_B").unwrap(), "");
        assert_eq!(filter_output(acls, "include A\\_B").unwrap(), "A_B\r\n");
    }
}
