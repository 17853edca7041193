//! The report's templates (minijinja): text and HTML, laid out from what
//! `view.rs` prepares. The HTML template escapes every value it shows.

use std::sync::LazyLock;

use minijinja::{AutoEscape, Environment};
use serde_json::{Value, json};

use super::{Report, view};

const TEMPLATE_SOURCES: [(&str, &str); 5] = [
    ("report.txt", include_str!("templates/report.txt")),
    ("device.txt", include_str!("templates/device.txt")),
    ("report.html", include_str!("templates/report.html")),
    ("device.html", include_str!("templates/device.html")),
    ("style.html", include_str!("templates/style.html")),
];

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    // A label padded to a column, at least one space after it.
    env.add_filter("pad", |s: String, width: usize| {
        format!("{s:<width$}", width = width.max(s.chars().count() + 1))
    });
    for (name, source) in TEMPLATE_SOURCES {
        // The templates are part of the binary and covered by the tests;
        // a broken one renders as the error below instead.
        let _ = env.add_template(name, source);
    }
    env
});

fn render(name: &str, context: &Value) -> String {
    match TEMPLATES
        .get_template(name)
        .and_then(|t| t.render(minijinja::value::Serde(context)))
    {
        Ok(text) => text,
        Err(e) => format!("nightshift: the report template {name} failed: {e:#}\n"),
    }
}

/// One device's block of the text report.
fn text_block(d: &Value, _with_diff: bool) -> String {
    render("device.txt", &json!({ "d": d }))
}

/// One device's row of the HTML report.
fn html_row(d: &Value, with_diff: bool) -> String {
    render("device.html", &json!({ "d": d, "with_diff": with_diff }))
}

/// The whole report as text (`with_header`: title, times and counts
/// first), devices in inventory order per job.
pub fn render_text(r: &Report, with_header: bool) -> String {
    let mut ctx = view::report(r, true, &text_block);
    ctx["header"] = with_header.into();
    render("report.txt", &ctx)
}

/// The header, then only the devices that need attention (a big report's
/// mail body), ending with `attached`: where the whole report is.
pub fn render_text_summary(r: &Report, attached: &str) -> String {
    let mut ctx = view::report(r, false, &text_block);
    ctx["header"] = true.into();
    ctx["attached"] = attached.into();
    render("report.txt", &ctx)
}

/// The whole report as HTML.
pub fn render_html(r: &Report) -> String {
    let mut html = render("report.html", &view::report(r, true, &html_row));
    html.push('\n');
    html
}

/// The summary and the devices that need attention as HTML, ending with
/// `attached`: where the whole report is.
pub fn render_html_summary(r: &Report, attached: &str) -> String {
    let mut ctx = view::report(r, false, &html_row);
    ctx["attached"] = attached.into();
    let mut html = render("report.html", &ctx);
    html.push('\n');
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The summary's last sentence, with markup: text shows it as written,
    /// HTML escapes it.
    const ATTACHED: &str = "The full report <is> attached.";

    /// A report whose device message, line, warning and job name carry
    /// markup, as a device or a config could send them.
    fn hostile() -> Report {
        let evil = "<script>alert(1)</script><img src=x onerror=alert(2)>&amp;";
        Report {
            json: json!({
                "run_id": "r1",
                "window": "w</title><b>",
                "started": "2026-12-04T02:00:00Z",
                "finished": "2026-12-04T02:01:00Z",
                "jobs": [{"name": "j<i>", "kind": "acl", "held": null, "devices": 1, "calls": 0}],
                "devices": [
                    {"name": "sw<1>", "address": "127.0.0.1:22", "job": "j<i>", "status": "failed",
                     "step": "apply", "line": evil, "error": evil, "hint": evil,
                     "restored": evil, "warnings": [evil], "steps": []},
                    {"name": "sw2", "address": "127.0.0.1:23", "job": "j<i>", "status": "changed",
                     "diff": [format!("+ remark {evil}")], "warnings": [evil], "steps": []}
                ],
                "lines": [],
            }),
        }
    }

    #[test]
    fn html_escapes_every_value_a_device_or_config_sends() {
        let r = hostile();
        for html in [render_html(&r), render_html_summary(&r, ATTACHED)] {
            assert!(!html.contains("<script"), "{html}");
            assert!(!html.contains("<img"), "{html}");
            assert!(!html.contains("j<i>"), "{html}");
            assert!(!html.contains("<1>"), "{html}");
            assert!(!html.contains("</title><b>"), "{html}");
            assert!(html.contains("&lt;script&gt;"), "{html}");
            // Text that was already an entity is shown as written.
            assert!(html.contains("&amp;amp;"), "{html}");
            assert!(!html.contains("the report template"), "{html}");
        }
    }

    #[test]
    fn text_shows_device_messages_as_the_device_sent_them() {
        let r = hostile();
        let text = render_text(&r, true);
        assert!(text.contains("<script>alert(1)</script>"), "{text}");
        assert!(text.contains("=== sw<1> (127.0.0.1:22): FAILED"), "{text}");
        assert!(!text.contains("&lt;"), "{text}");
        let summary = render_text_summary(&r, ATTACHED);
        assert!(
            summary.contains("Devices that need attention:"),
            "{summary}"
        );
        assert!(summary.contains("sw<1>"), "{summary}");
    }

    /// Two jobs, a failure among changes: every device's block in
    /// inventory order, each once, blocks one after the other.
    fn two_jobs() -> Report {
        Report {
            json: json!({
                "run_id": "r2",
                "started": "2026-12-04T02:00:00Z",
                "finished": "2026-12-04T02:01:00Z",
                "jobs": [
                    {"name": "a", "kind": "acl", "held": null, "devices": 2, "calls": 0},
                    {"name": "b", "kind": "acl", "held": "tier 2: held", "devices": 1, "calls": 0}
                ],
                "devices": [
                    {"name": "sw1", "address": "127.0.0.1:22", "job": "a", "status": "changed",
                     "diff": ["+ permit ip any any"], "steps": []},
                    {"name": "sw2", "address": "127.0.0.1:23", "job": "a", "status": "failed",
                     "step": "apply", "line": "permit bogus", "error": "% Invalid input",
                     "hint": "fix the line", "steps": []},
                    {"name": "sw3", "address": "127.0.0.1:24", "job": "b", "status": "unchanged",
                     "steps": []}
                ],
                "lines": [],
            }),
        }
    }

    #[test]
    fn text_lays_out_each_device_once_in_order() {
        let text = render_text(&two_jobs(), false);
        assert_eq!(
            text,
            "## job a (acl)\n\
             === sw1 (127.0.0.1:22): changed\n    + permit ip any any\n\
             === sw2 (127.0.0.1:23): FAILED at apply\n    line:     permit bogus\n    error:    % Invalid input\n    hint:     fix the line\n\
             ## job b (acl)\n\
             === sw3 (127.0.0.1:24): unchanged\n\
             held: tier 2: held\n"
        );
        let summary = render_text_summary(&two_jobs(), ATTACHED);
        assert!(
            summary.ends_with(
                "Devices that need attention:\n\n\
                 === sw2 (127.0.0.1:23): FAILED at apply\n    line:     permit bogus\n    error:    % Invalid input\n    hint:     fix the line\n\n\
                 The full report <is> attached.\n"
            ),
            "{summary}"
        );
    }

    #[test]
    fn html_has_a_row_per_device_and_one_table_per_list() {
        let html = render_html(&two_jobs());
        // sw2 failed: in the attention table and in its job's.
        for (name, rows) in [("sw1", 1), ("sw2", 2), ("sw3", 1)] {
            assert_eq!(
                html.matches(&format!("<b>{name}</b>")).count(),
                rows,
                "{html}"
            );
        }
        // Needs attention, job a, job b; the facts table besides.
        assert_eq!(html.matches("<th style=").count(), 3 * 5, "{html}");
        assert_eq!(
            html.matches("</tr>").count() - html.matches("<tr><th").count(),
            4 + 2,
            "{html}"
        );
        assert!(html.contains("Needs attention (1)"), "{html}");
        let summary = render_html_summary(&two_jobs(), ATTACHED);
        assert_eq!(summary.matches("<b>sw").count(), 1, "{summary}");
        assert!(
            summary.contains("<p>The full report &lt;is&gt; attached.</p>"),
            "{summary}"
        );
    }

    #[test]
    fn every_template_loads() {
        for (name, _) in TEMPLATE_SOURCES {
            assert!(TEMPLATES.get_template(name).is_ok(), "{name}");
        }
    }
}
