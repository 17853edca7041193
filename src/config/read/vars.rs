//! Per-device values in ACL lines: `vars` tables on a device, on a tag
//! (`[tags.NAME] vars = {...}`) and on a job, most specific first, filled
//! into `acl_lines` written as a minijinja template (the Jinja syntax of
//! Ansible and Nornir). Every target device's ACL is rendered when the
//! config is read, so an undefined variable or a rendered line that does
//! not parse is reported by `check-config`, with the device and the
//! template's `FILE:LINE:COLUMN`.

use std::collections::BTreeMap;
use std::ops::Range;

use minijinja::{Environment, UndefinedBehavior};

use super::super::Device;
use super::super::doc::{At, Doc, Table};

/// Variables by name.
pub type Vars = BTreeMap<String, String>;

/// `vars = { name = "value", n = 10 }`: strings, integers and booleans.
pub(super) fn read_vars(t: &mut Table<'_, '_>, doc: &mut Doc<'_>) -> Vars {
    let mut out = Vars::new();
    let Some(v) = t.raw("vars") else {
        return out;
    };
    let path = t.key_path("vars");
    let toml::de::DeValue::Table(table) = v.get_ref() else {
        doc.problem(
            v.span(),
            path,
            "expected a table of name = value",
            Some("write vars = { site_net = \"10.1.0.0 0.0.0.255\" }".into()),
        );
        return out;
    };
    for (k, val) in table.iter() {
        let name = k.get_ref().to_string();
        let key = format!("{path}.{name}");
        if !is_identifier(&name) || RESERVED.contains(&name.as_str()) {
            doc.problem(
                k.span(),
                key.clone(),
                if RESERVED.contains(&name.as_str()) {
                    format!("`{name}` is set by nightshift for every device")
                } else {
                    format!("\"{name}\" cannot be used in a template")
                },
                Some("name variables with letters, digits and '_', starting with a letter (not `device`, `host` or `platform`)".into()),
            );
            continue;
        }
        let value = match val.get_ref() {
            toml::de::DeValue::String(s) => s.to_string(),
            toml::de::DeValue::Integer(i) => i.as_str().to_string(),
            toml::de::DeValue::Boolean(b) => b.to_string(),
            _ => {
                doc.problem(
                    val.span(),
                    key,
                    "a variable's value is a string, a number or true/false",
                    None,
                );
                continue;
            }
        };
        out.insert(name, value);
    }
    out
}

/// Names every template gets: the device's inventory name, address and
/// platform (`cisco_ios`, `cisco_nxos`).
const RESERVED: &[&str] = &["device", "host", "platform"];

fn is_identifier(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `text` uses the template syntax at all.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// A device's variables: the job's, then each of its tags' (in the
/// device's tag order), then its own; the more specific wins. Two of its
/// tags that set one variable differently are a conflict.
pub fn for_device(
    job: &Vars,
    tags: &BTreeMap<String, Vars>,
    device: &Device,
) -> Result<Vars, String> {
    let mut out = job.clone();
    let mut from_tag: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for tag in &device.tags {
        for (k, v) in tags.get(tag).into_iter().flatten() {
            if let Some((other, was)) = from_tag.get(k.as_str())
                && *was != v.as_str()
                && !device.vars.contains_key(k)
            {
                return Err(format!(
                    "gets `{k}` from both tag {other} (\"{was}\") and tag {tag} (\"{v}\"); set it on the device to choose"
                ));
            }
            from_tag.insert(k, (tag, v));
            out.insert(k.clone(), v.clone());
        }
    }
    out.extend(device.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    out.insert("device".into(), device.name.clone());
    out.insert("host".into(), device.host.clone());
    out.insert("platform".into(), device.platform.name().to_string());
    Ok(out)
}

/// Why a template could not be rendered, and where in it (a byte range of
/// the template text).
pub struct RenderError {
    pub message: String,
    pub at: Option<Range<usize>>,
    /// 1-based line of the template.
    pub line: Option<usize>,
}

/// Renders `template` with `vars`; an undefined variable is an error.
pub fn render(template: &str, vars: &Vars) -> Result<String, RenderError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let fail = |e: minijinja::Error| RenderError {
        message: match e.kind() {
            minijinja::ErrorKind::UndefinedError => {
                let name = e
                    .range()
                    .and_then(|r| template.get(r))
                    .map(|s| s.trim().to_string());
                match name {
                    Some(n) if !n.is_empty() => format!("`{n}` is not defined"),
                    _ => "a variable is not defined".into(),
                }
            }
            _ => e.detail().unwrap_or("cannot render").to_string(),
        },
        at: e.range(),
        line: e.line(),
    };
    let t = env.template_from_str(template).map_err(fail)?;
    t.render(vars).map_err(fail)
}

/// Where `range` of a string value's text sits in the file: the value's
/// own span for text it cannot map (escapes), else the exact bytes.
pub fn locate(src: &str, value: &At<String>, range: &Range<usize>) -> Range<usize> {
    // A multi-line basic or literal string: the text starts after the
    // opening quotes (and the newline right after them).
    let raw = src.get(value.span.clone()).unwrap_or_default();
    for open in ["\"\"\"\n", "'''\n", "\"\"\"", "'''", "\"", "'"] {
        if let Some(body) = raw.strip_prefix(open)
            && body.get(range.clone()) == value.value.get(range.clone())
            && body.starts_with(value.value.get(..range.start).unwrap_or("\u{0}"))
        {
            let start = value.span.start + open.len() + range.start;
            return start..start + range.len();
        }
    }
    value.span.clone()
}
