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
/// Hayes result codes after dialling, in the order of `Classified`.
static RESULT: LazyLock<[Regex; 6]> = LazyLock::new(|| {
    [
        re(r"CONNECT[^\n]*\n"),
        re(r"\bBUSY\b"),
        re(r"NO CARRIER"),
        re(r"NO DIALTONE"),
        re(r"NO ANSWER"),
        re(r"\bERROR\b"),
    ]
});
static CONFIRM: LazyLock<[Regex; 1]> = LazyLock::new(|| [re(r"\[confirm\] *$")]);

const AT_WAIT: Duration = Duration::from_secs(5);

/// Is the line held (first column `*` in `show line N`)?
fn line_busy(show_line: &str, line: u32) -> bool {
    show_line.lines().any(|l| {
        l.starts_with('*')
            && l.split_whitespace()
                .nth(1)
                .and_then(|n| n.parse::<u32>().ok())
                == Some(line)
    })
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
    let connect = text
        .lines()
        .rev()
        .find(|l| l.contains("CONNECT"))
        .unwrap_or_default()
        .trim();
    let mut parts = connect.trim_start_matches("CONNECT").trim().splitn(2, '/');
    r.rate = parts.next().and_then(|p| p.parse().ok());
    r.protocol = parts.next().map(str::to_string);
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
}
