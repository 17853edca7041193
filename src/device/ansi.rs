//! Terminal clean-up for device output: ANSI escape sequences (NX-OS sends
//! them), carriage-return overwrites (the pager's erase), backspaces.

/// Strips ANSI escapes from a stream that may split a sequence across
/// packets: an unfinished sequence is kept for the next chunk.
#[derive(Debug, Default)]
pub struct AnsiStripper {
    pending: String,
}

impl AnsiStripper {
    pub fn push(&mut self, chunk: &str) -> String {
        let mut input = std::mem::take(&mut self.pending);
        input.push_str(chunk);
        let mut out = String::with_capacity(input.len());
        let mut chars = input.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c != '\x1b' {
                out.push(c);
                continue;
            }
            match chars.peek().map(|(_, c)| *c) {
                None => {
                    self.pending = input[i..].to_string();
                    break;
                }
                Some('[') => {
                    chars.next();
                    // CSI: parameters, then one final byte in 0x40..=0x7e.
                    let mut done = false;
                    for (_, c) in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&c) {
                            done = true;
                            break;
                        }
                    }
                    if !done {
                        self.pending = input[i..].to_string();
                        break;
                    }
                }
                Some(_) => {
                    // Two-character escapes such as ESC = or ESC >.
                    chars.next();
                }
            }
        }
        out
    }
}

/// The bytes a device sends, as text a terminal would show: UTF-8 decoded
/// across packet boundaries (a character split between two packets is one
/// character, not two replacement marks; bytes that are not UTF-8 become
/// U+FFFD), and ANSI escapes stripped across them too.
#[derive(Debug, Default)]
pub struct Inbox {
    /// The start of a character whose remaining bytes are still to come.
    partial: Vec<u8>,
    ansi: AnsiStripper,
}

impl Inbox {
    pub fn push(&mut self, bytes: &[u8]) -> String {
        let mut input = std::mem::take(&mut self.partial);
        input.extend_from_slice(bytes);
        let mut text = String::with_capacity(input.len());
        let mut rest = input.as_slice();
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    text.push_str(s);
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    text.push_str(std::str::from_utf8(good).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            rest = &bad[n..];
                        }
                        // An unfinished character at the end: wait for the rest.
                        None => {
                            self.partial = bad.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        self.ansi.push(&text)
    }
}

/// Turns terminal output into plain lines: `\r\n` → `\n`, a bare `\r`
/// returns to the start of the line (text before it is overwritten), a
/// backspace deletes a character — within its line: at the start of a line
/// it does nothing, as on a terminal.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (n, raw) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let start = out.len();
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let line = match raw.rfind('\r') {
            Some(i) if !raw[i + 1..].trim().is_empty() => &raw[i + 1..],
            Some(i) => &raw[..i],
            None => raw,
        };
        for c in line.chars() {
            if c == '\x08' {
                if out.len() > start {
                    out.pop();
                }
            } else {
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_split_sequences() {
        let mut s = AnsiStripper::default();
        assert_eq!(s.push("a\x1b[?7"), "a");
        assert_eq!(s.push("hb\x1b=c\x1b"), "bc");
        assert_eq!(s.push("[0md"), "d");
    }

    #[test]
    fn a_backspace_at_the_start_of_a_line_keeps_the_line_before() {
        // Found by the modem-noise property: line noise after a CONNECT
        // result code erased its newline, and the call was never seen.
        assert_eq!(
            plain("CONNECT 33600/ARQ\r\n\x08\x08x"),
            "CONNECT 33600/ARQ\nx"
        );
    }

    #[test]
    fn carriage_returns_and_backspaces() {
        assert_eq!(plain("line one\r\nline two\r\n"), "line one\nline two\n");
        assert_eq!(
            plain(" --More-- \r          \r    30 permit"),
            "    30 permit"
        );
        assert_eq!(plain("abc\x08d"), "abd");
    }
}
