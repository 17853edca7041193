//! Modem lines on the dialer hub, reached by reverse telnet
//! (`telnet <hub> 20NN`), and the Hayes modem behind each line.
//!
//! Branch `branch-NNN` has number `555` + NNN as four digits. Outcomes are a
//! pure function of NNN (documented in `nightshift lab --help`):
//! NNN % 50 == 23 → NO DIALTONE after 2 s; NNN % 10 == 4 → BUSY after 6 s;
//! NNN % 10 == 7 → NO ANSWER after 40 s; NNN % 25 == 9 → NO CARRIER after S7
//! (50 s); NNN % 20 == 13 → CONNECT but the branch router never prompts;
//! otherwise CONNECT after 15 + (NNN × 37) mod 46 s (15–60 s), then the
//! branch router's `User Access Verification` / `Username:` prompt.
//! An unknown number gives NO CARRIER after S7. All delays are multiplied by
//! the lab's time scale.

use std::time::{Duration, Instant};

/// What the line looks like from the hub (`show line`).
#[derive(Debug, Clone, Default)]
pub struct ModemLine {
    /// The session holding the line (reverse telnet), if any.
    pub held_by: Option<u64>,
    /// Held by a session that is gone: only `clear line` frees it.
    pub stuck: bool,
    /// A call is up (carrier detected).
    pub carrier: bool,
    pub uses: u64,
    /// Bumped on every connect and `clear line`: a connection whose epoch
    /// no longer matches has been cut.
    pub epoch: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Connect { prompt: bool },
    Busy,
    NoCarrier,
    NoDialtone,
    NoAnswer,
}

pub const CONNECT_LINE: &str = "CONNECT 33600/ARQ/V34/LAPM/V42BIS";
const S7_DEFAULT: u64 = 50;

/// The name nightshift's report gives a call's result, for the outcome the
/// lab's modem produces when `number` is dialled (S7 left at its default):
/// what a report must say for that branch.
pub fn call_result(number: &str, branches: u32) -> &'static str {
    match outcome_for(number, branches, S7_DEFAULT).0 {
        Outcome::Connect { prompt: true } => "connect",
        Outcome::Connect { prompt: false } => "no-prompt",
        Outcome::Busy => "busy",
        Outcome::NoCarrier => "no-carrier",
        Outcome::NoDialtone => "no-dialtone",
        Outcome::NoAnswer => "no-answer",
    }
}

pub fn branch_number(index: u32) -> String {
    format!("555{index:04}")
}

/// The outcome and how long until the modem reports it, at scale 1.
pub fn outcome_for(number: &str, branches: u32, s7: u64) -> (Outcome, Duration) {
    let index = number
        .strip_prefix("555")
        .filter(|d| d.len() == 4)
        .and_then(|d| d.parse::<u32>().ok())
        .filter(|i| (1..=branches).contains(i));
    let Some(i) = index else {
        return (Outcome::NoCarrier, Duration::from_secs(s7));
    };
    let secs = |s: u64| Duration::from_secs(s);
    if i % 50 == 23 {
        (Outcome::NoDialtone, secs(2))
    } else if i % 10 == 4 {
        (Outcome::Busy, secs(6))
    } else if i % 10 == 7 {
        (Outcome::NoAnswer, secs(40))
    } else if i % 25 == 9 {
        (Outcome::NoCarrier, secs(s7))
    } else {
        let delay = secs(15 + u64::from(i * 37 % 46));
        (
            Outcome::Connect {
                prompt: i % 20 != 13,
            },
            delay,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Command,
    Dialing {
        outcome: Outcome,
        at: Instant,
    },
    /// Data mode: input goes to the remote router.
    Online {
        prompt: bool,
    },
    /// `+++` escaped to command mode while the call is up.
    OnlineCommand {
        prompt: bool,
    },
}

/// The modem on one line, driven by the session that holds the line.
#[derive(Debug)]
pub struct Modem {
    echo: bool,
    s7: u64,
    state: State,
    time_scale: f64,
    branches: u32,
    /// Output that became due at a deadline (remote prompt after CONNECT).
    pending_prompt: Option<Instant>,
}

impl Modem {
    pub fn new(time_scale: f64, branches: u32) -> Self {
        Modem {
            echo: true,
            s7: S7_DEFAULT,
            state: State::Command,
            time_scale,
            branches,
            pending_prompt: None,
        }
    }

    pub fn echo(&self) -> bool {
        self.echo && !matches!(self.state, State::Online { .. })
    }

    pub fn carrier(&self) -> bool {
        matches!(
            self.state,
            State::Online { .. } | State::OnlineCommand { .. }
        )
    }

    fn scaled(&self, d: Duration) -> Duration {
        d.mul_f64(self.time_scale)
    }

    /// The next instant at which the modem says something by itself.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Dialing { at, .. } => Some(at),
            _ => self.pending_prompt,
        }
    }

    /// Output due at `now`.
    pub fn on_deadline(&mut self, now: Instant) -> String {
        if let State::Dialing { outcome, at } = self.state {
            if at > now {
                return String::new();
            }
            return match outcome {
                Outcome::Connect { prompt } => {
                    self.state = State::Online { prompt };
                    if prompt {
                        self.pending_prompt = Some(now + self.scaled(Duration::from_millis(1500)));
                    }
                    format!("\r\n{CONNECT_LINE}\r\n")
                }
                other => {
                    self.state = State::Command;
                    let code = match other {
                        Outcome::Busy => "BUSY",
                        Outcome::NoDialtone => "NO DIALTONE",
                        Outcome::NoAnswer => "NO ANSWER",
                        _ => "NO CARRIER",
                    };
                    format!("\r\n{code}\r\n")
                }
            };
        }
        match self.pending_prompt {
            Some(at) if at <= now => {
                self.pending_prompt = None;
                "\r\n\r\nUser Access Verification\r\n\r\nUsername: ".to_string()
            }
            _ => String::new(),
        }
    }

    /// One line typed into the reverse-telnet session.
    pub fn input_line(&mut self, line: &str, now: Instant) -> String {
        match self.state {
            State::Dialing { .. } => {
                // Any key aborts dialling.
                self.state = State::Command;
                return "\r\nNO CARRIER\r\n".into();
            }
            State::Online { prompt } => {
                if line.trim() == "+++" {
                    self.state = State::OnlineCommand { prompt };
                    self.pending_prompt = None;
                    return "\r\nOK\r\n".into();
                }
                // The branch router's login prompt: nothing typed here logs in.
                return if prompt {
                    "\r\n% Login invalid\r\n\r\nUsername: ".into()
                } else {
                    String::new()
                };
            }
            _ => {}
        }
        let cmd = line.trim().to_ascii_uppercase();
        if cmd.is_empty() {
            return String::new();
        }
        let Some(rest) = cmd.strip_prefix("AT") else {
            return "\r\nERROR\r\n".into();
        };
        let ok = "\r\nOK\r\n".to_string();
        match rest {
            "" | "Z" | "&F" | "V1" | "Q0" => {
                if rest == "Z" {
                    self.echo = true;
                    self.s7 = S7_DEFAULT;
                }
                ok
            }
            "E0" => {
                self.echo = false;
                ok
            }
            "E1" => {
                self.echo = true;
                ok
            }
            "H" | "H0" => {
                if let State::OnlineCommand { .. } = self.state {
                    self.state = State::Command;
                }
                ok
            }
            "O" | "O0" => match self.state {
                State::OnlineCommand { prompt } => {
                    self.state = State::Online { prompt };
                    format!("\r\n{CONNECT_LINE}\r\n")
                }
                _ => "\r\nNO CARRIER\r\n".into(),
            },
            "I" | "I0" => "\r\nLAB-MODEM V.34 33600 (nightshift lab)\r\n\r\nOK\r\n".into(),
            _ if rest.starts_with("S7=") => match rest[3..].parse::<u64>() {
                Ok(v) if (1..=255).contains(&v) => {
                    self.s7 = v;
                    ok
                }
                _ => "\r\nERROR\r\n".into(),
            },
            _ if rest.starts_with('D') => {
                if matches!(self.state, State::OnlineCommand { .. }) {
                    return "\r\nERROR\r\n".into();
                }
                let number: String = rest[1..]
                    .trim_start_matches(['T', 'P'])
                    .chars()
                    .filter(|c| c.is_ascii_digit())
                    .collect();
                if number.is_empty() {
                    return "\r\nNO DIALTONE\r\n".into();
                }
                let (outcome, delay) = outcome_for(&number, self.branches, self.s7);
                self.state = State::Dialing {
                    outcome,
                    at: now + self.scaled(delay),
                };
                String::new()
            }
            _ => "\r\nERROR\r\n".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_cover_every_kind() {
        let kinds: Vec<_> = (1..=50)
            .map(|i| outcome_for(&branch_number(i), 50, 50).0)
            .collect();
        assert!(kinds.contains(&Outcome::Busy));
        assert!(kinds.contains(&Outcome::NoAnswer));
        assert!(kinds.contains(&Outcome::NoCarrier));
        assert!(kinds.contains(&Outcome::NoDialtone));
        assert!(kinds.contains(&Outcome::Connect { prompt: false }));
        assert!(kinds.contains(&Outcome::Connect { prompt: true }));
        for i in 1..=200 {
            if let (Outcome::Connect { .. }, d) = outcome_for(&branch_number(i), 200, 50) {
                assert!((15..=60).contains(&d.as_secs()));
            }
        }
    }

    #[test]
    fn dial_connect_hangup() {
        let t0 = Instant::now();
        let mut m = Modem::new(0.001, 10);
        assert_eq!(m.input_line("AT", t0), "\r\nOK\r\n");
        assert_eq!(m.input_line("ATDT5550001", t0), "");
        let due = m.deadline().unwrap();
        assert!(m.on_deadline(due).contains("CONNECT 33600"));
        let prompt_at = m.deadline().unwrap();
        assert!(m.on_deadline(prompt_at).contains("Username:"));
        assert_eq!(m.input_line("+++", prompt_at), "\r\nOK\r\n");
        assert!(m.carrier());
        assert_eq!(m.input_line("ATH", prompt_at), "\r\nOK\r\n");
        assert!(!m.carrier());
    }
}
