//! One call, as an engineer places it by hand on an IOS dialer: reverse
//! telnet to the modem's line, `AT` → `OK`, `ATDT<number>`, the result code,
//! on CONNECT the remote prompt, then `+++` / `ATH`, leave the line, and
//! make sure the line is idle again.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use regex::Regex;
use tokio_util::sync::CancellationToken;

use super::{CallResult, Classified};
use crate::config::PotsLine;
use crate::device::{DeviceError, Session};

/// Compiles a constant pattern of this module (they always compile).
#[allow(clippy::expect_used)]
fn re(p: &str) -> Regex {
    Regex::new(p).expect("constant pattern compiles")
}

static OPEN: LazyLock<[Regex; 3]> = LazyLock::new(|| {
    [
        re(r"Open\n"),
        re(r"% Connection refused"),
        re(r"% (Destination unreachable|Connection timed out|Bad IP address|Unknown)[^\n]*"),
    ]
});
static AT_REPLY: LazyLock<[Regex; 2]> = LazyLock::new(|| [re(r"\bOK\b"), re(r"\bERROR\b")]);
/// Hayes result codes after dialling, in the order of `Classified`. After
/// `ATDT` the line carries only the echo and the result code, so a code is
/// taken wherever it stands: line noise glued to it (`~}BUSY`) must not
/// hide it.
static RESULT: LazyLock<[Regex; 6]> = LazyLock::new(|| {
    [
        re(r"CONNECT[^\n]*\n"),
        re(r"BUSY"),
        re(r"NO CARRIER"),
        re(r"NO DIALTONE"),
        re(r"NO ANSWER"),
        re(r"ERROR"),
    ]
});
/// A row of IOS's `show line` table whose first column is `*` (the line is
/// in use): `*    33 TTY …`, or with a `Tty Line` header `*0/0/0    2 TTY …`
/// / `*  1/0   33 TTY …`. The absolute line number is the last number
/// before the type. Anything else starting with `*` (a console log message
/// such as `*Mar  3 00:01:02: %LINK-3-UPDOWN …`) is not a row.
static BUSY_ROW: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?m)^\*\s*(?:\d+(?:/\d+)*\s+)?(\d+)\s+(?:CTY|AUX|TTY|VTY|LPT)\b"));
static CONFIRM: LazyLock<[Regex; 1]> = LazyLock::new(|| [re(r"\[confirm\] *$")]);

const AT_WAIT: Duration = Duration::from_secs(5);

/// Is the line held (first column `*` in `show line N`)?
fn line_busy(show_line: &str, line: u32) -> bool {
    BUSY_ROW
        .captures_iter(show_line)
        .any(|c| c[1].parse::<u32>().ok() == Some(line))
}

/// Rate and protocol of a `CONNECT 33600/ARQ/V34/LAPM/V42BIS` line, read
/// from the word CONNECT on (noise may stand before it).
fn connect_details(text: &str) -> (Option<u32>, Option<String>) {
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains("CONNECT"))
        .unwrap_or_default();
    let after = line
        .find("CONNECT")
        .map_or("", |i| &line[i + "CONNECT".len()..])
        .trim();
    let mut parts = after.splitn(2, '/');
    let rate = parts.next().and_then(|p| p.trim().parse().ok());
    let protocol = parts
        .next()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty());
    (rate, protocol)
}

/// `clear line N`, answering its `[confirm]`.
pub async fn clear_line(s: &mut Session, line: u32, limit: Duration) -> Result<(), DeviceError> {
    s.send(&format!("clear line {line}\r")).await?;
    s.expect(&*CONFIRM, limit, "clear line").await?;
    s.send("\r").await?;
    s.expect_prompt(limit).await.map(|_| ())
}

/// Leaves the modem: Ctrl-Shift-6 x back to the dialer, then `disconnect`.
async fn leave(s: &mut Session, limit: Duration) -> Result<(), DeviceError> {
    s.send("\x1ex").await?;
    s.expect_prompt(limit).await?;
    s.send("disconnect\r").await?;
    s.expect(&*CONFIRM, limit, "disconnect").await?;
    s.send("\r").await?;
    s.expect_prompt(limit).await.map(|_| ())
}

/// Reverse telnet to the line; a line held by a dead session is cleared
/// once and tried again.
async fn open_line(
    s: &mut Session,
    host: &str,
    line: u32,
    limit: Duration,
    r: &mut CallResult,
) -> Result<(), String> {
    for attempt in 0..2 {
        s.send(&format!("telnet {host} {}\r", 2000 + line))
            .await
            .map_err(|e| e.to_string())?;
        let (i, text) = s
            .expect(&*OPEN, limit, "telnet")
            .await
            .map_err(|e| e.to_string())?;
        match i {
            0 => return Ok(()),
            1 if attempt == 0 => {
                s.expect_prompt(limit).await.map_err(|e| e.to_string())?;
                let shown = s
                    .command(&format!("show line {line}"))
                    .await
                    .map_err(|e| e.to_string())?;
                if !line_busy(&shown, line) {
                    return Err(format!(
                        "line {line} refused the connection but is not in use"
                    ));
                }
                clear_line(s, line, limit)
                    .await
                    .map_err(|e| format!("line {line} was stuck and could not be cleared: {e}"))?;
                r.cleared = Some(format!(
                    "line {line} was held by an earlier session; cleared it"
                ));
            }
            _ => {
                return Err(format!(
                    "line {line}: {}",
                    text.lines().last().unwrap_or_default().trim()
                ));
            }
        }
    }
    Err(format!(
        "line {line} is still busy after `clear line {line}`"
    ))
}

/// Places one call on `line` and returns what happened.
pub async fn place_call(
    s: &mut Session,
    host: &str,
    line: u32,
    call: &PotsLine,
    guard: Duration,
    attempt: u32,
    stop: &CancellationToken,
) -> CallResult {
    let limit = s.timeout();
    let mut r = CallResult::new(call, line, attempt);
    if let Err(e) = open_line(s, host, line, limit, &mut r).await {
        r.error = Some(e);
        return r;
    }
    if let Err(e) = dial(s, call, guard, &mut r, stop).await {
        r.result = Classified::Error;
        r.error = Some(e);
    }
    let left = leave(s, limit).await;
    match s.command(&format!("show line {line}")).await {
        Ok(shown) if line_busy(&shown, line) => match clear_line(s, line, limit).await {
            Ok(()) => {
                r.cleared = Some(format!(
                    "line {line} stayed busy after the call; cleared it"
                ))
            }
            Err(e) => {
                r.error = Some(format!(
                    "line {line} stayed busy and could not be cleared: {e}"
                ))
            }
        },
        Ok(_) => {}
        Err(e) => {
            r.error
                .get_or_insert(format!("could not check line {line} afterwards: {e}"));
        }
    }
    if let Err(e) = left {
        r.error
            .get_or_insert(format!("could not leave line {line}: {e}"));
    }
    r.call_secs = r.dialled.map(|t| t.elapsed().as_secs_f64());
    r
}

async fn dial(
    s: &mut Session,
    call: &PotsLine,
    guard: Duration,
    r: &mut CallResult,
    stop: &CancellationToken,
) -> Result<(), String> {
    s.send("AT\r").await.map_err(|e| e.to_string())?;
    match s.expect(&*AT_REPLY, AT_WAIT, "AT").await {
        Ok((0, _)) => {}
        Ok(_) => return Err("the modem answered ERROR to AT".into()),
        Err(_) => return Err("the modem does not answer AT".into()),
    }
    let start = Instant::now();
    r.dialled = Some(start);
    s.send(&format!("ATDT{}\r", call.number))
        .await
        .map_err(|e| e.to_string())?;
    // Nothing may be typed while the modem dials: any key aborts the call.
    let waited = tokio::select! {
        v = s.expect(&*RESULT, call.timeout, "ATDT") => Some(v),
        _ = stop.cancelled() => None,
    };
    let Some(waited) = waited else {
        // The run is stopping (SIGTERM, Ctrl-C): abort the dial (any key)
        // rather than wait up to the call's timeout.
        let _ = s.send("\r").await;
        let _ = s.expect(&RESULT[2..3], AT_WAIT, "abort").await;
        r.result = Classified::Aborted;
        r.error = Some("the run was stopped while the call was dialling; it was aborted".into());
        return Ok(());
    };
    let (code, text) = match waited {
        Ok(v) => v,
        Err(DeviceError::Timeout { .. }) => {
            // No result code in time: abort the dial (any key) and say so.
            let _ = s.send("\r").await;
            let _ = s.expect(&RESULT[2..3], AT_WAIT, "abort").await;
            r.result = Classified::NoAnswer;
            r.error = Some(format!(
                "no result code within {}",
                humantime::format_duration(call.timeout)
            ));
            return Ok(());
        }
        Err(e) => return Err(e.to_string()),
    };
    r.result = match code {
        0 => Classified::Connect,
        1 => Classified::Busy,
        2 => Classified::NoCarrier,
        3 => Classified::NoDialtone,
        4 => Classified::NoAnswer,
        _ => return Err("the modem answered ERROR to ATDT".into()),
    };
    if code != 0 {
        return Ok(());
    }
    r.connect_secs = Some(start.elapsed().as_secs_f64());
    (r.rate, r.protocol) = connect_details(&text);
    let expect = Regex::new(&call.expect).map_err(|e| e.to_string())?;
    let left = call
        .timeout
        .saturating_sub(start.elapsed())
        .max(Duration::from_millis(500));
    r.prompt_seen = s
        .expect(std::slice::from_ref(&expect), left, "remote prompt")
        .await
        .is_ok();
    if !r.prompt_seen {
        r.result = Classified::NoPrompt;
    }
    // Hang up: guard time, `+++`, guard time, then ATH.
    tokio::time::sleep(guard).await;
    s.send("+++").await.map_err(|e| e.to_string())?;
    tokio::time::sleep(guard).await;
    s.send("\r").await.map_err(|e| e.to_string())?;
    if s.expect(&AT_REPLY[..1], AT_WAIT, "+++").await.is_ok() {
        s.send("ATH\r").await.map_err(|e| e.to_string())?;
        r.hung_up = s.expect(&AT_REPLY[..1], AT_WAIT, "ATH").await.is_ok();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_patterns_compile_and_match() {
        assert!(
            OPEN[0].is_match("Trying 127.0.0.1, 2033 ... Open\n")
                && OPEN[1].is_match("% Connection refused by remote host")
        );
        assert!(
            AT_REPLY[0].is_match("\nOK\n")
                && CONFIRM[0].is_match("Closing connection to 127.0.0.1 [confirm]")
        );
        let codes = [
            "CONNECT 33600/ARQ/V34/LAPM/V42BIS\n",
            "BUSY",
            "NO CARRIER",
            "NO DIALTONE",
            "NO ANSWER",
            "ERROR",
        ];
        for (i, c) in codes.iter().enumerate() {
            assert!(RESULT[i].is_match(c), "{c}");
        }
        assert!(
            line_busy("*    33 TTY   115200/115200 - inout", 33) && !line_busy("     33 TTY", 33)
        );
    }

    #[test]
    fn a_console_log_message_is_not_a_busy_line() {
        let shown = "*Mar  3 00:01:02.123: %LINK-3-UPDOWN: Interface Async3, changed state to up\n   Tty Typ     Tx/Rx    A Modem  Roty AccO AccI   Uses   Noise  Overruns   Int\n      3 TTY   115200/115200 - inout     -    -    -      0       0     0/0       -\n";
        assert!(!line_busy(shown, 3));
        // `Tty Line` tables: slot/port or number first, the line after it.
        assert!(line_busy("*0/0/0    2 TTY   9600/9600  -", 2));
        assert!(line_busy("*  1/0   33 TTY   9600/9600  -", 33));
        assert!(line_busy("*   33   33 TTY   9600/9600  -", 33));
        assert!(!line_busy("*   33   34 TTY   9600/9600  -", 33));
    }

    #[test]
    fn a_result_code_with_noise_glued_before_it_is_recognised() {
        let text = "ATDT5550001\n\naBUSY\n";
        let hit = RESULT.iter().position(|p| p.is_match(text));
        assert_eq!(hit, Some(1));
    }

    #[test]
    fn noise_before_connect_keeps_rate_and_protocol() {
        assert_eq!(
            connect_details("ATDT5550001\n~}CONNECT 33600/ARQ/V34/LAPM/V42BIS\n"),
            (Some(33600), Some("ARQ/V34/LAPM/V42BIS".into()))
        );
    }
}

/// Modem result codes and `show line` surrounded by noise (issue #23):
/// classified as without it.
#[cfg(test)]
mod props {
    use super::*;
    use crate::device::plain;
    use proptest::prelude::*;

    const CODES: [&str; 5] = [
        "CONNECT 33600/ARQ/V34/LAPM/V42BIS",
        "BUSY",
        "NO CARRIER",
        "NO DIALTONE",
        "NO ANSWER",
    ];
    const WORDS: [&str; 7] = [
        "CONNECT", "BUSY", "CARRIER", "DIALTONE", "ANSWER", "ERROR", "\n",
    ];

    /// Line noise: printable junk, bells, ANSI sequences, carriage returns.
    fn noise() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                6 => "[ -~]{1,6}",
                1 => Just("\x07".to_string()),
                1 => Just("\x1b[2K".to_string()),
                1 => Just("\x1b[0m".to_string()),
                1 => Just("\r".to_string()),
                1 => Just("\u{8}".to_string()),
            ],
            0..8,
        )
        .prop_map(|v| v.concat())
        // Noise never spells a result code itself.
        .prop_filter("no result word", |s| !WORDS.iter().any(|w| s.contains(w)))
    }

    /// What `Session::expect` decides, fed `raw` in these pieces: the first
    /// pattern that matches once a piece has arrived, and the text up to it.
    fn expect_in_pieces(raw: &str, cuts: &[usize]) -> Option<(usize, String)> {
        let mut at = 0;
        let mut pieces = cuts.iter().copied().chain(std::iter::repeat(7));
        while at < raw.len() {
            let end = (at + pieces.next().unwrap_or(7).max(1)).min(raw.len());
            at = end;
            let text = plain(&raw[..at]);
            let found = RESULT
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.find(&text).map(|m| (m.end(), i)))
                .min();
            if let Some((end, i)) = found {
                return Some((i, text[..end].to_string()));
            }
        }
        None
    }

    proptest! {
        // Failures found so far are unit tests above (named after what
        // they show); none is kept in a file.
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(1000),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn a_result_code_in_noise_classifies_as_without_it(
            code in 0..CODES.len(),
            before in prop::collection::vec(noise(), 0..4),
            glued in noise(),
            after in noise(),
            cuts in prop::collection::vec(1usize..6, 0..60),
        ) {
            let clean = format!("ATDT5550001\r\r\n{}\r\n", CODES[code]);
            let noisy = format!(
                "ATDT5550001\r\r\n{}\r\n{glued}{}\r\n{after}",
                before.join("\r\n"),
                CODES[code]
            );
            let (want, text) = expect_in_pieces(&clean, &[]).unwrap();
            let got = expect_in_pieces(&noisy, &cuts);
            prop_assert_eq!(got.as_ref().map(|g| g.0), Some(want), "{:?}", noisy);
            if want == 0 {
                let (_, noisy_text) = got.unwrap();
                prop_assert_eq!(connect_details(&noisy_text), connect_details(&text), "{:?}", noisy);
                prop_assert_eq!(connect_details(&text).0, Some(33600));
            }
        }

        #[test]
        fn show_line_in_noise_finds_exactly_the_busy_lines(
            first in 1u32..60,
            busy in prop::collection::vec(any::<bool>(), 1..12),
            format in 0..3usize,
            logs in prop::collection::vec((1u32..32, 0usize..14), 0..6),
            junk in prop::collection::vec(noise(), 0..4),
        ) {
            let header = match format {
                0 => "   Tty Typ     Tx/Rx    A Modem  Roty AccO AccI   Uses   Noise  Overruns   Int",
                _ => "   Tty Line Typ     Tx/Rx    A Modem  Roty AccO AccI  Uses  Noise Overruns  Int",
            };
            let mut rows = vec![header.to_string()];
            for (k, b) in busy.iter().enumerate() {
                let n = first + k as u32;
                let mark = if *b { "*" } else { " " };
                rows.push(match format {
                    0 => format!("{mark}{n:>6} TTY   115200/115200 - inout     -    -    -      3       0     0/0       -"),
                    1 => format!("{mark}0/0/{k:<2} {n:>4} TTY   9600/9600  -    -      -    -    -   747     61    0/0      -"),
                    _ => format!("{mark}{n:>5} {n:>4} TTY   9600/9600  -    -      -    -    -   747     61    0/0      -"),
                });
            }
            rows.push("*  866 VTY              -    -      -    -    -      1       0     0/0       -".into());
            // Console log messages (`logging monitor`) land between rows;
            // their day of the month looks like a line number.
            for (day, at) in &logs {
                let at = (*at).min(rows.len());
                rows.insert(at, format!("*Mar {day:>2} 00:01:02.123: %LINK-3-UPDOWN: Interface Async{day}, changed state to up"));
            }
            for (k, j) in junk.iter().enumerate() {
                let at = (k * 3).min(rows.len());
                // Junk that does not pose as a busy row of the table,
                // once the terminal has applied it (`\u{8}*` is a `*`).
                if !plain(j).trim_start().starts_with('*') {
                    rows.insert(at, j.clone());
                }
            }
            let shown = plain(&rows.join("\r\n"));
            for n in 1..first + busy.len() as u32 + 2 {
                let want = n >= first && busy.get((n - first) as usize) == Some(&true);
                prop_assert_eq!(line_busy(&shown, n), want, "line {} in {:?}", n, shown);
            }
        }
    }
}
