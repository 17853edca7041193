//! The expect layer on real devices' bytes split at every kind of place
//! (issue #23): single bytes, inside ANSI sequences, inside UTF-8
//! characters, inside `--More--` and prompts. Whatever the packets, the
//! text is the same as delivered whole, and the reader stops only where the
//! whole text has the device's prompt.
//!
//! The transcripts are whole sessions with real IOS, IOS-XE and NX-OS
//! devices, and three recorded from the lab (`tests/data/transcripts/`);
//! noise is added as devices add it (NX-OS's ANSI sequences, the pager's
//! erase, non-ASCII descriptions).

use proptest::prelude::*;

use super::{PromptShape, last_line};
use crate::device::ansi::Inbox;
use crate::device::platform::spec;
use crate::platform::Platform;

struct Transcript {
    name: &'static str,
    bytes: &'static [u8],
    host: &'static str,
    platform: Platform,
}

macro_rules! transcript {
    ($file:literal, $host:literal, $platform:expr) => {
        Transcript {
            name: $file,
            bytes: include_bytes!(concat!("../../../tests/data/transcripts/", $file)),
            host: $host,
            platform: $platform,
        }
    };
}

const IOS: Platform = Platform::CiscoIos;
const NXOS: Platform = Platform::CiscoNxos;

static TRANSCRIPTS: &[Transcript] = &[
    transcript!(
        "netmiko__cisco881__ssh__enable_configure-terminal.raw",
        "cisco1",
        IOS
    ),
    transcript!(
        "netmiko__cisco881__ssh__invalid-input_with-write-echo.raw",
        "cisco1",
        IOS
    ),
    transcript!(
        "netmiko__cisco881__ssh__show-ip-int-brief.raw",
        "cisco1",
        IOS
    ),
    transcript!(
        "scrapli-cfg__csr1000v-16.12.3__ssh__show-running-config.raw",
        "csr1000v",
        IOS
    ),
    transcript!(
        "scrapli-cfg__csr1000v-16.12.3__telnet__tclsh-stage_archive-diff_configure-replace_copy-run-start.raw",
        "csr1000v",
        IOS
    ),
    transcript!(
        "scrapli-cfg__csr1000v-16.12.3__telnet__tclsh-stage_incremental-diffs_abort.raw",
        "csr1000v",
        IOS
    ),
    transcript!(
        "scrapli-cfg__nxosv9k-9.2.4__telnet__tclsh-stage_abort.raw",
        "switch",
        NXOS
    ),
    transcript!(
        "scrapli-cfg__nxosv9k-9.2.4__telnet__tclsh-stage_rollback_copy-run-start.raw",
        "switch",
        NXOS
    ),
    transcript!(
        "scrapli-mockserver__csr1000v-16.12.3__mode-by-command-matrix.raw",
        "csr1000v",
        IOS
    ),
    transcript!(
        "scrapli-mockserver__nxosv9k-9.2.4__mode-by-command-matrix.raw",
        "switch",
        NXOS
    ),
    transcript!(
        "scrapli-replay__c3560cx-15.2-4-E7__ssh__show-version-include.raw",
        "C3560CX",
        IOS
    ),
    // Recorded from the lab: what nightshift's own sessions look like.
    transcript!("lab__ios-001__acl-push.raw", "ios-001", IOS),
    transcript!("lab__nxos-001__acl-push.raw", "nxos-001", NXOS),
    transcript!("lab__hub-1__modem-call.raw", "hub-1", IOS),
];

/// What devices put between the bytes of a plain session.
const NOISE: &[&[u8]] = &[
    b"\x1b[K",
    b"\x1b[?7h",
    b"\x1b[0m",
    b"\x1b[1;32m",
    b"\x1b=",
    b"\r\n",
    b" --More-- \x08\x08\x08\x08\x08\x08\x08\x08\x08\x08          \x08\x08\x08\x08\x08\x08\x08\x08\x08\x08",
    "Zürich – Büro 3.OG ".as_bytes(),
    "☎ POTS ".as_bytes(),
    b"\xff",
];

/// The transcript with noise put in at line starts (never inside a line,
/// where it would turn a prompt into something else).
fn noisy(t: &Transcript, inserts: &[(usize, usize)]) -> Vec<u8> {
    let starts: Vec<usize> = std::iter::once(0)
        .chain(
            t.bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    let mut at: Vec<(usize, &[u8])> = inserts
        .iter()
        .map(|(line, noise)| (starts[line % starts.len()], NOISE[noise % NOISE.len()]))
        .collect();
    at.sort_by_key(|(i, _)| *i);
    let mut out = Vec::with_capacity(t.bytes.len() + 64);
    let mut from = 0;
    for (i, noise) in at {
        out.extend_from_slice(&t.bytes[from..i]);
        out.extend_from_slice(noise);
        from = i;
    }
    out.extend_from_slice(&t.bytes[from..]);
    out
}

/// Packet sizes: mostly tiny (single bytes split every sequence), some
/// as large as a device's write.
fn packets() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(
        prop_oneof![4 => 1usize..3, 3 => 3usize..16, 1 => 16usize..2048],
        1..400,
    )
}

fn split<'a>(bytes: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut k = 0;
    while !rest.is_empty() {
        let n = sizes[k % sizes.len()].min(rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
        k += 1;
    }
    out
}

impl std::fmt::Debug for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

fn shape(t: &Transcript) -> PromptShape {
    PromptShape {
        host: t.host.to_string(),
        config_chars: spec(t.platform).config_prompt_host_chars,
    }
}

fn transcript() -> impl Strategy<Value = &'static Transcript> {
    proptest::sample::select(TRANSCRIPTS.iter().collect::<Vec<_>>())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(300),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Decoding does not depend on where packets end.
    #[test]
    fn text_is_the_same_whatever_the_packets(
        t in transcript(),
        inserts in proptest::collection::vec((any::<usize>(), any::<usize>()), 0..40),
        sizes in packets(),
    ) {
        let bytes = noisy(t, &inserts);
        let whole = Inbox::default().push(&bytes);
        let mut inbox = Inbox::default();
        let chunked: String = split(&bytes, &sizes).into_iter().map(|p| inbox.push(p)).collect();
        prop_assert!(chunked == whole, "{}: text differs", t.name);
    }

    /// The reader stops (takes the buffer as a command's output) only where
    /// the whole text, read to that point, ends in the device's prompt; and
    /// what it took, with what is left, is the whole text.
    #[test]
    fn the_reader_stops_only_at_prompts(
        t in transcript(),
        inserts in proptest::collection::vec((any::<usize>(), any::<usize>()), 0..40),
        sizes in packets(),
    ) {
        let bytes = noisy(t, &inserts);
        let shape = shape(t);
        let whole = Inbox::default().push(&bytes);
        let mut inbox = Inbox::default();
        let mut buf = String::new();
        let mut taken = String::new();
        let mut stops = 0;
        for packet in split(&bytes, &sizes) {
            buf.push_str(&inbox.push(packet));
            if shape.matches(&last_line(&buf)) {
                taken.push_str(&std::mem::take(&mut buf));
                stops += 1;
                prop_assert!(whole.starts_with(&taken), "{}: text differs", t.name);
                let so_far = &whole[..taken.len()];
                prop_assert!(
                    shape.matches(&last_line(so_far)),
                    "{}: stopped at {:?}, not a prompt in the whole text",
                    t.name,
                    last_line(so_far)
                );
            }
        }
        taken.push_str(&buf);
        prop_assert!(taken == whole);
        // Every transcript has prompts: a packet that ends right after one
        // is a stop (the last one, at least, ends the session's bytes).
        prop_assert!(stops > 0 || !shape.matches(&last_line(&whole)), "{}", t.name);
    }
}

/// A regression the first property found: a character split between two
/// packets became two replacement marks.
#[test]
fn a_character_split_between_packets_is_one_character() {
    let bytes = "Zürich".as_bytes();
    let mut inbox = Inbox::default();
    let text: String = bytes.iter().map(|b| inbox.push(&[*b])).collect();
    assert_eq!(text, "Zürich");
    // Bytes that are not UTF-8 stay visible as one mark each.
    assert_eq!(Inbox::default().push(b"a\xffb"), "a\u{fffd}b");
}

#[test]
fn every_transcript_has_its_host_s_prompts() {
    for t in TRANSCRIPTS {
        let text = Inbox::default().push(t.bytes);
        let shape = shape(t);
        let prompts = text.lines().filter(|l| shape.matches(l)).count();
        assert!(prompts >= 2, "{}: {prompts} prompts of {}", t.name, t.host);
    }
}
