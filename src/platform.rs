//! Which kind of device a config entry is. The per-platform CLI behaviour
//! (prompts, failure indicators, setup commands) is data kept beside the
//! device session code; this is only the name users write.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Platform {
    /// Cisco IOS and IOS-XE (`cisco_xe` is accepted as an alias).
    CiscoIos,
    /// Cisco NX-OS.
    CiscoNxos,
}

impl Platform {
    /// Names accepted in the config, for messages.
    pub const NAMES: &'static [&'static str] = &["cisco_ios", "cisco_nxos", "cisco_xe"];

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "cisco_ios" | "cisco_xe" => Some(Platform::CiscoIos),
            "cisco_nxos" => Some(Platform::CiscoNxos),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Platform::CiscoIos => "cisco_ios",
            Platform::CiscoNxos => "cisco_nxos",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}
