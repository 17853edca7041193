//! `nightshift generate`: the man pages and shell completions, made from
//! the command line's own definitions (clap_mangen, clap_complete) and,
//! for `nightshift.toml(5)`, from the comments of `config/nightshift.toml`
//! — the one annotated example that documents every key. The package
//! build runs it (`scripts/package`), as ripgrep does with `--generate`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory as _;

use super::Cli;

/// The annotated example config, the source of nightshift.toml(5).
const EXAMPLE_CONFIG: &str = include_str!("../../config/nightshift.toml");

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Man pages: nightshift(1), one nightshift-COMMAND(1) per command, and nightshift.toml(5)
    Man {
        /// Folder to write them into (created if missing)
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// A shell's completion script, on standard output
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

pub fn generate(args: &GenerateArgs) -> anyhow::Result<ExitCode> {
    match &args.what {
        What::Man { dir } => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(Cli::command(), dir)
                .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
            let page = dir.join("nightshift.toml.5");
            std::fs::write(
                &page,
                config_manual(EXAMPLE_CONFIG, env!("CARGO_PKG_VERSION")),
            )
            .with_context(|| format!("cannot write {}", page.display()))?;
        }
        What::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "nightshift", &mut out);
            std::io::stdout()
                .write_all(&out)
                .context("cannot write to standard output")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Text for roff: backslashes doubled, a leading `.` or `'` made literal.
fn roff(text: &str) -> String {
    let t = text.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with(['.', '\'']) {
        format!("\\&{t}")
    } else {
        t
    }
}

/// One comment block, joined into a paragraph.
fn paragraph(comments: &[&str]) -> String {
    comments
        .iter()
        .map(|c| roff(c.trim()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// nightshift.toml(5) from the annotated example: its opening comment is
/// the description; each table the comment before it and its documented
/// keys (a key with a comment above it), with the example's value.
pub fn config_manual(example: &str, version: &str) -> String {
    let mut out = format!(
        ".TH NIGHTSHIFT.TOML 5 \"\" \"nightshift {version}\" \"File Formats\"\n\
         .SH NAME\nnightshift.toml \\- configuration of the nightshift change\\-window daemon\n\
         .SH SYNOPSIS\n/etc/nightshift/nightshift.toml\n"
    );
    let mut lines = example.lines().peekable();
    // The opening comment: the description.
    let mut intro = Vec::new();
    while let Some(l) = lines.peek() {
        match l.strip_prefix('#') {
            Some(c) => {
                intro.push(c);
                lines.next();
            }
            None => break,
        }
    }
    out.push_str(".SH DESCRIPTION\n");
    for block in intro.split(|c| c.trim().is_empty()) {
        if !block.is_empty() {
            out.push_str(&format!(".PP\n{}\n", paragraph(block)));
        }
    }
    out.push_str(".SH KEYS\n");
    let mut comments: Vec<&str> = Vec::new();
    let mut seen_tables: Vec<String> = Vec::new();
    let mut in_multiline = false;
    for line in lines {
        let t = line.trim();
        if in_multiline {
            out.push_str(&format!("{}\n", roff(line)));
            if t.ends_with("\"\"\"") {
                out.push_str(".fi\n");
                in_multiline = false;
            }
            continue;
        }
        if let Some(c) = t.strip_prefix('#') {
            comments.push(c);
            continue;
        }
        if t.is_empty() {
            comments.clear();
            continue;
        }
        if t.starts_with('[') {
            let repeat = seen_tables.iter().any(|s| s == t);
            if !repeat {
                seen_tables.push(t.to_string());
                out.push_str(&format!(".SS {}\n", roff(t)));
                if !comments.is_empty() {
                    out.push_str(&format!(".PP\n{}\n", paragraph(&comments)));
                }
            }
            comments.clear();
            continue;
        }
        if let Some((key, value)) = t.split_once('=') {
            if !comments.is_empty() {
                out.push_str(&format!(
                    ".TP\n\\fB{}\\fR = {}\n{}\n",
                    roff(key.trim()),
                    roff(value.trim()),
                    paragraph(&comments)
                ));
                if value.trim() == "\"\"\"" {
                    out.push_str(".nf\n");
                    in_multiline = true;
                }
            } else if value.trim() == "\"\"\"" {
                in_multiline = true;
                out.push_str(".nf\n");
            }
            comments.clear();
        }
    }
    out.push_str(
        ".SH FILES\n.TP\n/etc/nightshift/nightshift.toml\nthe configuration (readable by the service, not by everyone)\n\
         .TP\n/usr/share/doc/nightshift/nightshift.toml.example\nthe annotated example this page is made from\n\
         .SH SEE ALSO\nnightshift(1), nightshift\\-check\\-config(1), systemd.exec(5)\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_page_documents_every_commented_key_once() {
        let page = config_manual(EXAMPLE_CONFIG, "0.0.0");
        assert!(page.starts_with(".TH NIGHTSHIFT.TOML 5"));
        for key in [
            "state_dir",
            "control_group",
            "host_key_policy",
            "canary",
            "relay",
            "platform",
            "revert_minutes",
            "guard_time",
            "latest_start",
        ] {
            assert!(page.contains(&format!("\\fB{key}\\fR")), "{key}");
        }
        // The second [[devices]] table documents only its commented key.
        assert_eq!(page.matches(".SS [[devices]]").count(), 1);
        assert!(page.contains(
            "Secrets (passwords, enable secrets, SMTP passwords) are NEVER written here"
        ));
        assert!(page.contains(".nf\nremark managed by nightshift"));
    }
}
