//! Device selectors as written in `jobs.NAME.devices` and `--devices`:
//! a device name, a glob (`BRANCH1_*`, `core-?`), or `tag:X`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Name(String),
    Glob(String),
    Tag(String),
}

impl Selector {
    pub fn parse(text: &str) -> Selector {
        if let Some(tag) = text.strip_prefix("tag:") {
            Selector::Tag(tag.to_string())
        } else if text.contains(['*', '?']) {
            Selector::Glob(text.to_string())
        } else {
            Selector::Name(text.to_string())
        }
    }

    pub fn matches(&self, name: &str, tags: &[String]) -> bool {
        match self {
            Selector::Name(n) => n == name,
            Selector::Glob(g) => glob_match(g.as_bytes(), name.as_bytes()),
            Selector::Tag(t) => tags.iter().any(|x| x == t),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Name(n) | Selector::Glob(n) => f.write_str(n),
            Selector::Tag(t) => write!(f, "tag:{t}"),
        }
    }
}

/// `*` matches any run of characters, `?` exactly one; everything else is
/// literal. Iterative with backtracking to the last `*`, so it is linear in
/// practice and never recursive.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match() {
        let tags = vec!["closet".to_string()];
        assert!(Selector::parse("BRANCH1_*").matches("BRANCH1_SW3", &tags));
        assert!(!Selector::parse("BRANCH1_*").matches("BRANCH2_SW3", &tags));
        assert!(Selector::parse("core-?").matches("core-1", &tags));
        assert!(!Selector::parse("core-?").matches("core-12", &tags));
        assert!(Selector::parse("tag:closet").matches("x", &tags));
        assert!(Selector::parse("r1").matches("r1", &[]));
        assert!(Selector::parse("*a*b").matches("xaxxb", &[]));
        assert!(!Selector::parse("*a*b").matches("xaxxbc", &[]));
    }
}
