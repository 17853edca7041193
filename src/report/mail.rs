//! Mail: a report or an alert as multipart text + HTML (with JSON and CSV
//! attachments when big), sent with lettre over STARTTLS, implicit TLS, or
//! plain SMTP to a loopback relay.

use std::path::Path;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials as SmtpCredentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use secrecy::{ExposeSecret as _, SecretString};
use thiserror::Error;

use super::{
    FULL_BODY_LIMIT, Report, render_html, render_html_summary, render_text, render_text_summary,
};
use crate::config::{DEFAULT_MAIL_MAX_SIZE, MailSettings, MailTls};

/// Sender and recipients when no `[mail]` is configured (the mail is then
/// only kept in the outbox).
pub const NO_RELAY_FROM: &str = "nightshift@localhost";

#[derive(Debug, Error)]
pub enum MailError {
    #[error("invalid address {address:?}: {reason}")]
    Address { address: String, reason: String },
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("cannot read the CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("relay {relay}: {reason}")]
    Relay {
        relay: String,
        reason: String,
        /// Worth retrying (relay down, timeout, 4xx); a 5xx is not.
        transient: bool,
    },
}

impl MailError {
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            MailError::Relay {
                transient: true,
                ..
            }
        )
    }

    pub fn hint(&self) -> Option<&'static str> {
        match self {
            MailError::Relay {
                transient: true, ..
            } => Some("the mail stays in the outbox and is retried with backoff"),
            MailError::Relay {
                transient: false,
                reason,
                ..
            } if too_big(reason) => Some(
                "the relay refused the mail as too big: set [mail] max_size_kb to the relay's limit and later reports fit it; this one stays in the outbox, and the run history has the whole report (`nightshift report render <state_dir>/history/RUN.json`)",
            ),
            MailError::Relay {
                transient: false, ..
            } => Some(
                "the relay refused it for good: fix the cause (sender, recipients, AUTH), then `nightshift report resend ID`",
            ),
            MailError::CaFile { .. } => {
                Some("point [mail] ca_file at a PEM file with the relay's CA")
            }
            _ => None,
        }
    }
}

/// A relay's answer to a mail over its size limit: 552 (RFC 5321, "exceeded
/// storage allocation", what Postfix and Exchange send) or the enhanced
/// status 5.3.4, "message too big for system".
fn too_big(reason: &str) -> bool {
    reason.contains("552") || reason.contains("5.3.4")
}

/// A rendered message, ready for the outbox.
pub struct Rendered {
    pub subject: String,
    pub from: String,
    pub to: Vec<String>,
    pub bytes: Vec<u8>,
}

fn mailbox(address: &str) -> Result<Mailbox, MailError> {
    address
        .parse()
        .map_err(|e: lettre::address::AddressError| MailError::Address {
            address: address.into(),
            reason: e.to_string(),
        })
}

/// Sender and recipients from the settings, or the local placeholders.
pub fn parties(settings: Option<&MailSettings>) -> (String, Vec<String>) {
    match settings {
        Some(s) => (s.from.clone(), s.to.clone()),
        None => (NO_RELAY_FROM.into(), vec![NO_RELAY_FROM.into()]),
    }
}

fn message(
    from: &str,
    to: &[String],
    subject: &str,
    body: MultiPart,
) -> Result<Vec<u8>, MailError> {
    let mut b = lettre::Message::builder()
        .from(mailbox(from)?)
        .subject(subject)
        .user_agent(format!("nightshift {}", env!("CARGO_PKG_VERSION")));
    for t in to {
        b = b.to(mailbox(t)?);
    }
    let m = b
        .multipart(body)
        .map_err(|e| MailError::Build(e.to_string()))?;
    Ok(m.formatted())
}

/// What a big report's mail carries besides the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attached {
    JsonAndCsv,
    Csv,
    Nothing,
}

/// The report as a mail: the whole report in the body, or for a big one
/// the summary and the problems, with the full report attached. A mail is
/// never bigger than the relay takes (`max_size_kb`) when that can be
/// helped: an attachment that would make it so stays in the run history
/// (`history`, the report's file there), and the body says so and how to
/// read it.
pub fn render_report(
    report: &Report,
    settings: Option<&MailSettings>,
    history: &Path,
) -> Result<Rendered, MailError> {
    let (from, to) = parties(settings);
    let subject = report.subject();
    let limit = settings.map_or(DEFAULT_MAIL_MAX_SIZE, |s| s.max_size);
    let done = |bytes| Rendered {
        bytes,
        subject: subject.clone(),
        from: from.clone(),
        to: to.clone(),
    };
    if report.devices().len() <= FULL_BODY_LIMIT {
        let (text, html) = (render_text(report, true), render_html(report));
        // Encoded, a mail is never smaller than its parts.
        if text.len() + html.len() <= limit {
            let body = MultiPart::alternative_plain_html(text, html);
            let bytes = message(&from, &to, &subject, body)?;
            if bytes.len() <= limit {
                return Ok(done(bytes));
            }
        }
    }
    let json =
        serde_json::to_string_pretty(&report.json).map_err(|e| MailError::Build(e.to_string()))?;
    let csv = report.csv();
    let id = report.json["run_id"].as_str().unwrap_or("report");
    let mut bytes = Vec::new();
    for attached in [Attached::JsonAndCsv, Attached::Csv, Attached::Nothing] {
        let note = attached_note(attached, json.len(), limit, history);
        let alternative = MultiPart::alternative_plain_html(
            render_text_summary(report, &note),
            render_html_summary(report, &note),
        );
        let mut body = MultiPart::mixed().multipart(alternative);
        if attached == Attached::JsonAndCsv {
            body = body.singlepart(
                Attachment::new(format!("{id}.json")).body(
                    json.clone(),
                    ContentType::parse("application/json")
                        .map_err(|e| MailError::Build(e.to_string()))?,
                ),
            );
        }
        if attached != Attached::Nothing {
            body = body.singlepart(
                Attachment::new(format!("{id}.csv")).body(
                    csv.clone(),
                    ContentType::parse("text/csv; charset=utf-8")
                        .map_err(|e| MailError::Build(e.to_string()))?,
                ),
            );
        }
        bytes = message(&from, &to, &subject, body)?;
        if bytes.len() <= limit {
            break;
        }
    }
    if bytes.len() > limit {
        tracing::warn!(
            run_id = id,
            bytes = bytes.len(),
            max_size = limit,
            "the report mail is bigger than max_size_kb even without attachments: the devices that need attention alone fill it"
        );
    }
    Ok(done(bytes))
}

/// The summary's last sentence: where the whole report is.
fn attached_note(attached: Attached, json_bytes: usize, limit: usize, history: &Path) -> String {
    let mb = |b: usize| {
        if b >= 1_000_000 {
            format!("{:.1} MB", b as f64 / 1_000_000.0)
        } else {
            format!("{} kB", b.div_ceil(1000))
        }
    };
    let kept = format!(
        "it is kept in the run history as {path} (read it with `nightshift report render {path} --format html`, or raise max_size_kb in [mail] if the relay takes bigger mails)",
        path = history.display()
    );
    match attached {
        Attached::JsonAndCsv => {
            "The full report (every device) is attached as JSON and CSV.".into()
        }
        Attached::Csv => format!(
            "The full report (every device) is attached as CSV. As JSON it is {}, too big for a mail of at most {} (max_size_kb = {}): {kept}.",
            mb(json_bytes),
            mb(limit),
            limit / 1000
        ),
        Attached::Nothing => format!(
            "The full report (every device) is too big for a mail of at most {} (max_size_kb = {}): {kept}.",
            mb(limit),
            limit / 1000
        ),
    }
}

/// An alert: a short text mail that needs a human before the window.
pub fn render_alert(
    subject: &str,
    text: &str,
    settings: Option<&MailSettings>,
) -> Result<Rendered, MailError> {
    let (from, to) = parties(settings);
    let subject = format!("[nightshift] ALERT: {subject}");
    let body = MultiPart::mixed().singlepart(SinglePart::plain(text.to_string()));
    Ok(Rendered {
        bytes: message(&from, &to, &subject, body)?,
        subject,
        from,
        to,
    })
}

/// The SMTP transport for the settings; `password` is the relay's AUTH
/// password (from the keyring), when `username` is set.
pub fn transport(
    s: &MailSettings,
    password: Option<&SecretString>,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let tls_params = || -> Result<TlsParameters, MailError> {
        let mut b = TlsParameters::builder(s.relay.clone());
        if let Some(ca) = &s.ca_file {
            let err = |reason: String| MailError::CaFile {
                path: ca.display().to_string(),
                reason,
            };
            let pem = std::fs::read(ca).map_err(|e| err(e.to_string()))?;
            b = b
                .add_root_certificate(Certificate::from_pem(&pem).map_err(|e| err(e.to_string()))?);
        }
        b.build_rustls()
            .map_err(|e| MailError::Build(e.to_string()))
    };
    let tls = match s.tls {
        MailTls::StartTls => Tls::Required(tls_params()?),
        MailTls::Tls => Tls::Wrapper(tls_params()?),
        MailTls::None => Tls::None,
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.relay.clone())
        .port(s.port)
        .tls(tls)
        .timeout(Some(s.timeout));
    if let (Some(user), Some(pw)) = (&s.username, password) {
        b = b.credentials(SmtpCredentials::new(
            user.clone(),
            pw.expose_secret().to_string(),
        ));
    }
    Ok(b.build())
}

fn relay_error(s: &MailSettings, e: &lettre::transport::smtp::Error) -> MailError {
    // Anything but a permanent (5xx) answer is worth retrying: the relay
    // down, a timeout, a TLS hiccup, a 4xx.
    let transient = !e.is_permanent();
    let mut reason = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        let more = inner.to_string();
        if !reason.contains(&more) {
            reason.push_str(": ");
            reason.push_str(&more);
        }
        src = inner.source();
    }
    // lettre's own words are reworded for the reader; a relay's reply
    // (which may well mention certificates) is quoted as it came.
    if !e.is_response() && reason.contains("invalid peer certificate") {
        reason = format!(
            "its TLS certificate is not trusted ({reason}); [mail] ca_file must name the CA that signed it, and relay the name in it"
        );
    } else if reason.starts_with("response error: incomplete response") {
        reason = format!("the connection closed before the relay answered ({reason})");
    }
    MailError::Relay {
        relay: format!("{}:{}", s.relay, s.port),
        reason,
        transient,
    }
}

/// lettre's own timeout covers each command; this bounds a whole session.
fn whole_wait(s: &MailSettings) -> Duration {
    s.timeout.saturating_mul(4).max(Duration::from_secs(5))
}

/// Sends a message as stored (bytes unchanged).
pub async fn send(
    s: &MailSettings,
    password: Option<&SecretString>,
    from: &str,
    to: &[String],
    bytes: &[u8],
) -> Result<(), MailError> {
    let addr = |a: &str| {
        a.parse::<Address>().map_err(|e| MailError::Address {
            address: a.into(),
            reason: e.to_string(),
        })
    };
    let to = to.iter().map(|t| addr(t)).collect::<Result<Vec<_>, _>>()?;
    let envelope = lettre::address::Envelope::new(Some(addr(from)?), to)
        .map_err(|e| MailError::Build(e.to_string()))?;
    let t = transport(s, password)?;
    let limit = whole_wait(s);
    match tokio::time::timeout(limit, t.send_raw(&envelope, bytes)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(relay_error(s, &e)),
        Err(_) => Err(MailError::Relay {
            relay: format!("{}:{}", s.relay, s.port),
            reason: format!("no answer within {}", humantime::format_duration(limit)),
            transient: true,
        }),
    }
}

/// Proves the relay's AUTH credentials with one connection.
pub async fn check_login(s: &MailSettings, password: &SecretString) -> Result<(), MailError> {
    let t = transport(s, Some(password))?;
    let limit = whole_wait(s);
    let no_answer = |reason: String| MailError::Relay {
        relay: format!("{}:{}", s.relay, s.port),
        reason,
        transient: true,
    };
    match tokio::time::timeout(limit, t.test_connection()).await {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err(no_answer("the relay did not answer NOOP".into())),
        Ok(Err(e)) => Err(relay_error(s, &e)),
        Err(_) => Err(no_answer(format!(
            "no answer within {}",
            humantime::format_duration(limit)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HISTORY: &str = "/var/lib/nightshift/history/tuesday-night-20261201T0100Z.json";

    fn limited(max_size: usize) -> MailSettings {
        MailSettings {
            relay: "127.0.0.1".into(),
            port: 25,
            tls: MailTls::None,
            from: "nightshift@example.test".into(),
            to: vec!["netops@example.test".into()],
            username: None,
            timeout: Duration::from_secs(5),
            ca_file: None,
            max_size,
        }
    }

    /// The mail as text: headers unfolded, quoted-printable soft breaks
    /// joined.
    fn plain(m: &Rendered) -> String {
        String::from_utf8(m.bytes.clone())
            .unwrap()
            .replace("\r\n ", " ")
            .replace("=\r\n", "")
    }

    fn report(devices: usize) -> Report {
        let list: Vec<serde_json::Value> = (0..devices)
            .map(|i| {
                let failed = i % 100 == 7;
                json!({
                    "name": format!("sw-{i:04}"), "job": "lock-it-down", "address": "192.0.2.1:22",
                    "status": if failed { "failed" } else { "changed" },
                    "step": if failed { Some("apply") } else { None },
                    "error": if failed { Some("% Invalid input <detected>") } else { None },
                    "diff": ["+ permit ip any any"],
                })
            })
            .collect();
        Report {
            json: json!({"run_id": "tuesday-night-20261201T0100Z", "window": "tuesday-night",
                "jobs": [{"name": "lock-it-down", "kind": "acl"}], "devices": list, "lines": []}),
        }
    }

    #[test]
    fn a_small_report_is_all_in_the_body() {
        let m = render_report(&report(20), None, Path::new(HISTORY)).unwrap();
        let text = String::from_utf8(m.bytes).unwrap();
        assert_eq!(
            m.subject,
            "[nightshift] tuesday-night: 19 changed, 1 failed"
        );
        assert!(text.contains("multipart/alternative") && !text.contains("attachment"));
        assert!(text.contains("sw-0019"));
        // HTML is escaped.
        assert!(text.contains("&lt;detected&gt;"), "{text}");
    }

    #[test]
    fn a_big_report_keeps_summary_and_failures_and_attaches_the_rest() {
        let m = render_report(&report(500), None, Path::new(HISTORY)).unwrap();
        let text = plain(&m);
        assert_eq!(
            m.subject,
            "[nightshift] tuesday-night: 495 changed, 5 failed"
        );
        assert!(text.contains("multipart/mixed") && text.contains("multipart/alternative"));
        assert!(
            text.contains("attachment; filename*0=\"tuesday-night-20261201T0100Z.json\""),
            "{text}"
        );
        assert!(text.contains("attachment; filename*0=\"tuesday-night-20261201T0100Z.csv\""));
        assert!(text.contains("Content-Type: text/csv"));
        // The body names the failures; the changed devices are only in the attachments.
        let body_end = text.find("attachment;").unwrap();
        let body = &text[..body_end];
        assert!(body.contains("sw-0007") && body.contains("sw-0407"));
        assert!(!body.contains("sw-0001 "), "{body}");
    }

    #[test]
    fn a_mail_is_never_bigger_than_the_relay_takes_when_that_can_be_helped() {
        // 150 devices, each with a long diff: the whole report in the body
        // is about 1.5 MB.
        let mut r = report(150);
        let diff: Vec<String> = (0..100)
            .map(|i| format!("+ permit tcp 10.0.{i}.0 0.0.0.255 any eq 443"))
            .collect();
        for d in r.json["devices"].as_array_mut().unwrap() {
            d["diff"] = json!(diff);
        }
        let history = Path::new(HISTORY);
        let whole = render_report(&r, Some(&limited(100_000_000)), history).unwrap();
        assert!(!plain(&whole).contains("attachment;"));
        let whole = whole.bytes.len();

        // Under a limit the body does not fit: the summary, with both
        // attachments.
        // (The body's note names the limit: a few bytes either way.)
        let m = render_report(&r, Some(&limited(whole - 100)), history).unwrap();
        assert!(m.bytes.len() < whole);
        let text = plain(&m);
        assert!(text.contains(".json\""), "{text}");
        assert!(text.contains(".csv\""), "{text}");
        assert!(text.contains("attached as JSON and CSV."), "{text}");

        // Room for the CSV, not the JSON: the body says where the JSON is.
        let with_both = m.bytes.len();
        let m = render_report(&r, Some(&limited(with_both - 100)), history).unwrap();
        let text = plain(&m);
        assert!(m.bytes.len() < with_both);
        assert!(!text.contains(".json\""), "{text}");
        assert!(text.contains(".csv\""), "{text}");
        assert!(text.contains("attached as CSV. As JSON it is"), "{text}");
        assert!(
            text.contains(&format!("nightshift report render {HISTORY} --format html")),
            "{text}"
        );
        assert!(text.contains("raise max_size_kb"), "{text}");

        // Room for neither.
        let with_csv = m.bytes.len();
        let m = render_report(&r, Some(&limited(with_csv - 100)), history).unwrap();
        let text = plain(&m);
        assert!(m.bytes.len() < with_csv);
        assert!(!text.contains("attachment;"), "{text}");
        assert!(text.contains("is too big for a mail of at most"), "{text}");
        assert!(text.contains(HISTORY), "{text}");
        // The failures are still named in the body.
        assert!(
            text.contains("sw-0007") && text.contains("sw-0107"),
            "{text}"
        );
    }
}
