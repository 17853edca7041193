//! Platforms as data: how to recognise prompts, what to send after login,
//! how to enter and leave configuration mode, what output means a command
//! was refused, and which questions the device may ask.

use crate::platform::Platform;

/// Everything the session needs to know about one platform's CLI.
#[derive(Debug)]
pub struct PlatformSpec {
    pub platform: Platform,
    /// Sent once after the first prompt; their output is ignored.
    pub setup: &'static [&'static str],
    /// Whether the device may land in a user (`>`) mode that needs `enable`.
    pub has_enable: bool,
    pub config_enter: &'static str,
    pub config_exit: &'static str,
    /// A substring of output that means the command was refused.
    pub failure_indicators: &'static [&'static str],
    /// Saving the running config, and the questions it may ask.
    pub save: &'static str,
    /// IOS shortens the hostname in configuration prompts to this many chars.
    pub config_prompt_host_chars: usize,
}

/// Questions a device asks, with the answer nightshift gives when the
/// command that triggers them is one it expects to ask (regex, answer).
pub const SAVE_QUESTIONS: &[(&str, &str)] = &[
    (r"Destination filename \[[^\]]*\]\? *$", ""),
    (r"\[confirm\] *$", ""),
];

/// Output that ends in this waits for a key: more output follows.
pub const PAGER: &str = " --More-- ";

const IOS_FAILURES: &[&str] = &[
    "% Invalid input",
    "% Incomplete command",
    "% Ambiguous command",
    "% Unknown command",
    "% Bad secrets",
    "% Duplicate sequence number",
    "% Access list",
    "% Rollback Confirmed Change",
    "Command authorization failed",
    "%Error",
    "% Error",
];

const NXOS_FAILURES: &[&str] = &[
    "% Invalid command",
    "% Incomplete command",
    "% Ambiguous command",
    "% Invalid input",
    "Syntax error while parsing",
    "ERROR:",
    "% Permission denied",
    "Command authorization failed",
];

pub const IOS: PlatformSpec = PlatformSpec {
    platform: Platform::CiscoIos,
    setup: &["terminal length 0", "terminal width 511"],
    has_enable: true,
    config_enter: "configure terminal",
    config_exit: "end",
    failure_indicators: IOS_FAILURES,
    save: "write memory",
    config_prompt_host_chars: 20,
};

pub const NXOS: PlatformSpec = PlatformSpec {
    platform: Platform::CiscoNxos,
    setup: &["terminal length 0", "terminal width 511"],
    has_enable: false,
    config_enter: "configure terminal",
    config_exit: "end",
    failure_indicators: NXOS_FAILURES,
    save: "copy running-config startup-config",
    config_prompt_host_chars: usize::MAX,
};

pub fn spec(platform: Platform) -> &'static PlatformSpec {
    match platform {
        Platform::CiscoIos => &IOS,
        Platform::CiscoNxos => &NXOS,
    }
}

impl PlatformSpec {
    /// The first failure indicator found in `output`, with the line it is on.
    pub fn failure_in(&self, output: &str) -> Option<(&'static str, String)> {
        for line in output.lines() {
            if let Some(ind) = self.failure_indicators.iter().find(|i| line.contains(*i)) {
                return Some((ind, line.trim().to_string()));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_failures_on_their_line() {
        let out = "permti ip any any\n         ^\n% Invalid input detected at '^' marker.\n";
        assert_eq!(
            IOS.failure_in(out),
            Some((
                "% Invalid input",
                "% Invalid input detected at '^' marker.".into()
            ))
        );
        assert_eq!(
            NXOS.failure_in("% Invalid command at '^' marker."),
            Some((
                "% Invalid command",
                "% Invalid command at '^' marker.".into()
            ))
        );
        assert_eq!(
            IOS.failure_in("Extended IP access list X\n    10 permit ip any any"),
            None
        );
    }
}
