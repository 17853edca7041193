//! `nightshift report list|show|resend`: the outbox, where every mail is
//! kept before (and after) it is sent.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use super::{EXIT_INVALID, load_config};
use crate::clock::Clock;
use crate::config::Config;
use crate::credentials::{self, Store};
use crate::report::Report;
use crate::report::mail::MailError;
use crate::report::outbox::{self, Delivery, Outbox, State};

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// List the mails in the outbox: id, state, attempts, subject
    List,
    /// Print a mail as stored (RFC 5322)
    Show { id: String },
    /// Send a mail again now (after a refused or failed delivery)
    Resend { id: String },
    /// Send every pending mail now, without waiting for its next retry
    Flush,
    /// Render a report from the run history (<state_dir>/history/RUN.json) as text, HTML or CSV
    Render {
        file: std::path::PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Html,
    Csv,
}

pub fn report(path: &Path, args: &ReportArgs, clock: &dyn Clock) -> anyhow::Result<ExitCode> {
    let Some(config) = load_config(path, clock)? else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let outbox = Outbox::new(&config.daemon.state_dir);
    match &args.action {
        Action::List => {
            let listing = outbox.scan(true)?;
            if listing.entries.is_empty() && listing.damaged.is_empty() {
                eprintln!("the outbox {} is empty", outbox.dir().display());
            }
            for e in listing.entries {
                let state = match e.state {
                    State::Pending => "pending",
                    State::Sent => "sent",
                    State::Failed => "FAILED",
                    State::Kept => "kept",
                };
                println!(
                    "{}  {state:<7}  {:>2} tries  {}",
                    e.id, e.attempts, e.subject
                );
                if let Some(err) = e.last_error.filter(|_| e.state != State::Sent) {
                    println!("    last error: {err}");
                }
            }
            let mut bad = !listing.damaged.is_empty();
            print_damaged(&listing.damaged);
            let history = crate::report::history::scan(&config.daemon.state_dir);
            if !history.is_empty() {
                println!(
                    "\nrun history ({}):",
                    config.daemon.state_dir.join("history").display()
                );
            }
            for run in &history {
                match &run.summary {
                    Ok(summary) => println!("{}  {summary}", run.id),
                    Err(reason) => {
                        println!("{}  DAMAGED  {}: {reason}", run.id, run.file.display())
                    }
                }
            }
            bad |= !listing_ok(&history);
            Ok(if bad {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Action::Show { id } => {
            let (_, bytes) = outbox.get(id)?;
            use std::io::Write as _;
            std::io::stdout().write_all(&bytes)?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Render { file, format } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let json = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a nightshift report", file.display()))?;
            let r = Report { json };
            let out = match format {
                Format::Text => crate::report::render_text(&r, true),
                Format::Html => crate::report::render_html(&r),
                Format::Csv => r.csv(),
            };
            print!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Action::Resend { .. } | Action::Flush if config.mail.is_none() => {
            eprintln!(
                "nightshift report: no [mail] section in {}: there is no relay to send to",
                config.source.display()
            );
            Ok(ExitCode::from(EXIT_INVALID))
        }
        Action::Resend { id } => {
            outbox.requeue(id, clock.now())?;
            flush(&config, &outbox, clock)
        }
        Action::Flush => flush(&config, &outbox, clock),
    }
}

fn flush(config: &Config, outbox: &Outbox, clock: &dyn Clock) -> anyhow::Result<ExitCode> {
    let Some(settings) = &config.mail else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let store = Store::from_env(&config.daemon.keyring_service);
    let password = credentials::mail_password(config, &store)?;
    // Files that cannot even be read as entries are named, then skipped.
    let unreadable: Vec<_> = outbox.scan(false)?.damaged;
    for d in &unreadable {
        eprintln!(
            "nightshift report: {}: skipped: {}: {}",
            d.id,
            d.file.display(),
            d.reason
        );
    }
    let (done, _) = super::runtime(false)?.block_on(outbox.deliver_due(
        settings,
        password.as_ref(),
        clock.now(),
        true,
    ))?;
    let code = print_deliveries(&done);
    Ok(if unreadable.is_empty() {
        code
    } else {
        ExitCode::from(1)
    })
}

fn print_damaged(damaged: &[outbox::Damaged]) {
    for d in damaged {
        println!("{}  DAMAGED  {}: {}", d.id, d.file.display(), d.reason);
    }
}

fn listing_ok(history: &[crate::report::history::Run]) -> bool {
    history.iter().all(|r| r.summary.is_ok())
}

fn print_deliveries(done: &[Delivery]) -> ExitCode {
    let mut ok = true;
    for d in done {
        match d {
            Delivery::Damaged(d) => {
                ok = false;
                eprintln!(
                    "nightshift report: {}: not sent: {}: {}",
                    d.id,
                    d.file.display(),
                    d.reason
                );
                eprintln!(
                    "    hint: `nightshift report show {}` prints what is stored; the other mails were sent",
                    d.id
                );
            }
            Delivery::Sent(id) => eprintln!("nightshift report: {id}: sent"),
            Delivery::Retry(id, e) | Delivery::Failed(id, e) => {
                ok = false;
                print_mail_error(id, e);
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

pub fn print_mail_error(id: &str, e: &MailError) {
    eprintln!("nightshift report: {id}: not sent: {e}");
    if let Some(h) = e.hint() {
        eprintln!("    hint: {h}");
    }
}

/// `run --mail`: the report into the outbox, then sent when a relay is configured.
pub fn mail_report(
    config: &Config,
    report: &Report,
    runtime: &tokio::runtime::Runtime,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    let store = Store::from_env(&config.daemon.keyring_service);
    let mailed = runtime.block_on(outbox::mail_report(config, &store, report, clock.now()))?;
    if let Some(e) = &mailed.password_problem {
        eprintln!("nightshift run: {e}; the mail is kept in the outbox");
        if let Some(h) = e.hint() {
            eprintln!("    hint: {h} (with --mail)");
        }
    }
    if config.mail.is_none() {
        eprintln!(
            "nightshift run: no [mail] configured; the mail is kept as {} in {}",
            mailed.entry.id,
            Outbox::new(&config.daemon.state_dir).dir().display()
        );
    }
    let _ = print_deliveries(&mailed.deliveries);
    Ok(())
}
