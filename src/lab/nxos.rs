//! NX-OS exec commands and `show` output in NX-OS's layout: prefix
//! notation, `statistics per-entry`, `configure session`, checkpoints.

use std::fmt::Write as _;

use super::acl::{Dialect, render};
use super::cli::{Cli, ConfigMode, Mode, Reply, Then, Words, abbrev, filter_output};
use super::device::{Interface, RunningConfig, Vty};

const ENTER_CONFIG: &str = "Enter configuration commands, one per line. End with CNTL/Z.\r\n";

fn show_version(host: &str) -> String {
    format!(
        "Cisco Nexus Operating System (NX-OS) Software\r\nTAC support: http://www.cisco.com/tac\r\n\
         Copyright (C) 2002-2021, Cisco and/or its affiliates.\r\nAll rights reserved.\r\n\r\n\
         Software\r\n  BIOS: version 07.69\r\n  NXOS: version 9.3(8)\r\n  \
         NXOS image file is: bootflash:///nxos.9.3.8.bin\r\n\r\nHardware\r\n  \
         cisco Nexus9000 C93180YC-EX chassis\r\n  Device name: {host}\r\n  bootflash: 53298520 kB\r\n\r\n\
         Kernel uptime is 21 day(s), 4 hour(s), 12 minute(s), 9 second(s)\r\n"
    )
}

pub fn show_acls(rc: &RunningConfig, name: Option<&str>) -> String {
    let mut out = String::new();
    let tables = [("IP", &rc.acls), ("IPV6", &rc.acls6)];
    for (title, table) in tables {
        for (n, acl) in table {
            if name.is_some_and(|x| x != n) {
                continue;
            }
            let _ = write!(out, "\r\n{title} access list {n}\r\n");
            if acl.statistics {
                out.push_str("        statistics per-entry\r\n");
            }
            for (seq, e) in &acl.entries {
                let _ = write!(out, "        {seq} {}\r\n", render(e, Dialect::Nxos));
            }
        }
    }
    out
}

/// Every ACL, IPv4 then IPv6, as the running config shows them.
fn acl_blocks(rc: &RunningConfig, out: &mut String) {
    for (v, table) in [("ip", &rc.acls), ("ipv6", &rc.acls6)] {
        for (n, acl) in table {
            let _ = write!(out, "{v} access-list {n}\r\n");
            if acl.statistics {
                out.push_str("  statistics per-entry\r\n");
            }
            for (seq, e) in &acl.entries {
                let _ = write!(out, "  {seq} {}\r\n", render(e, Dialect::Nxos));
            }
        }
    }
}

/// An interface's ACL bindings, IPv4 and IPv6.
fn bindings(i: &Interface) -> String {
    let mut out = String::new();
    for (word, a, dir) in i.bindings() {
        let _ = write!(out, "  {word} {a} {dir}\r\n");
    }
    out
}

/// `line vty` with its access-classes.
fn vty(rc: &RunningConfig) -> String {
    let mut out = String::from("line vty\r\n");
    if let Some(a) = &rc.vty.class_in {
        let _ = write!(out, "  access-class {a} in\r\n");
    }
    if let Some(a) = &rc.vty.class6_in {
        let _ = write!(out, "  ipv6 access-class {a} in\r\n");
    }
    out
}

fn aclmgr(rc: &RunningConfig) -> String {
    let mut out = String::from(
        "\r\n!Command: show running-config aclmgr\r\n!Running configuration last done at: Wed Nov 25 01:02:03 2026\r\n!Time: Wed Nov 25 02:03:04 2026\r\n\r\nversion 9.3(8) Bios:version 07.69\r\n",
    );
    acl_blocks(rc, &mut out);
    for i in &rc.interfaces {
        let b = bindings(i);
        if !b.is_empty() {
            let _ = write!(out, "\r\ninterface {}\r\n{b}", i.name);
        }
    }
    if rc.vty != Vty::default() {
        let _ = write!(out, "\r\n{}", vty(rc));
    }
    out.push_str("\r\n");
    out
}

fn running(rc: &RunningConfig) -> String {
    let mut out = String::from(
        "\r\n!Command: show running-config\r\n!Running configuration last done at: Wed Nov 25 01:02:03 2026\r\n!Time: Wed Nov 25 02:03:04 2026\r\n\r\nversion 9.3(8) Bios:version 07.69\r\n",
    );
    let _ = write!(
        out,
        "hostname {}\r\nfeature ssh\r\n\r\nusername admin password 5 $5$LAB$notARealHash role network-admin\r\n\r\n",
        rc.hostname
    );
    acl_blocks(rc, &mut out);
    for (idx, i) in rc.interfaces.iter().enumerate() {
        let _ = write!(out, "\r\ninterface {}\r\n", i.name);
        if let Some(d) = &i.description {
            let _ = write!(out, "  description {d}\r\n");
        }
        let _ = write!(
            out,
            "  no switchport\r\n  ip address 10.{}.{idx}.1/24\r\n",
            rc.hostname.len()
        );
        out.push_str(&bindings(i));
        out.push_str("  no shutdown\r\n");
    }
    let _ = write!(out, "\r\nline console\r\n{}\r\n", vty(rc));
    out
}

fn progress_bar() -> String {
    let mut s = String::new();
    for pct in (1..=100).step_by(11).chain([100]) {
        let filled = pct * 40 / 100;
        let _ = write!(
            s,
            "[{}{}] {pct:>3}%",
            "#".repeat(filled),
            " ".repeat(40 - filled)
        );
    }
    s.push_str("\r\nCopy complete, now saving to disk (please wait)...\r\nCopy complete.\r\n");
    s
}

pub fn exec(cli: &mut Cli, line: &str) -> Reply {
    let (cmd, filter) = match line.split_once('|') {
        Some((c, f)) => (c, Some(f.trim())),
        None => (line, None),
    };
    let w = Words::new(cmd);
    if w.len() == 0 {
        return Reply::empty();
    }
    let choices = [
        ("show", 2),
        ("exit", 3),
        ("terminal", 2),
        ("configure", 4),
        ("copy", 2),
        ("checkpoint", 3),
        ("rollback", 3),
        ("no", 2),
        ("end", 3),
    ];
    let idx = match cli.pick(&w, 0, &choices) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let reply = match choices[idx].0 {
        "show" => show(cli, &w),
        "exit" => Reply {
            out: String::new(),
            then: Then::Close,
        },
        "end" => Reply::empty(),
        "terminal" => match cli.pick(
            &w,
            1,
            &[
                ("length", 3),
                ("width", 3),
                ("dont-ask", 3),
                ("session-timeout", 3),
            ],
        ) {
            Ok(i @ (0 | 1)) => match w.get(2).map(|n| n.parse::<usize>()) {
                Some(Ok(n)) if n <= 511 => {
                    if i == 0 {
                        cli.term_length = n
                    } else {
                        cli.term_width = n
                    }
                    Reply::empty()
                }
                Some(_) => cli.invalid(&w, 2),
                None => cli.incomplete(),
            },
            Ok(_) => Reply::empty(),
            Err(r) => r,
        },
        "configure" => match w.get(1) {
            None => enter_config(cli, None),
            Some(t) if abbrev(t, "terminal", 1) => enter_config(cli, None),
            Some(s) if abbrev(s, "session", 2) => match w.get(2) {
                Some(name) => enter_config(cli, Some(name.to_string())),
                None => cli.incomplete(),
            },
            Some(_) => cli.invalid(&w, 1),
        },
        "copy" => {
            let ok = w.get(1).is_some_and(|s| abbrev(s, "running-config", 3))
                && w.get(2).is_some_and(|s| abbrev(s, "startup-config", 3));
            if ok {
                let mut st = cli.dev.lock();
                st.startup = st.running.clone();
                Reply::text(progress_bar())
            } else {
                cli.invalid(&w, 1)
            }
        }
        "checkpoint" => checkpoint(cli, w.get(1)),
        "no" => match (w.get(1), w.get(2)) {
            (Some(c), Some(name)) if abbrev(c, "checkpoint", 3) => {
                if cli.dev.faults.checkpoint_busy {
                    return Reply::text(
                        "ERROR: Another checkpoint/rollback operation is in progress. Please try later.\r\n",
                    );
                }
                match cli.dev.lock().checkpoints.remove(name) {
                    Some(_) => Reply::empty(),
                    None => Reply::text(format!(
                        "ERROR: Checkpoint name '{name}' does not exist\r\n"
                    )),
                }
            }
            _ => cli.invalid(&w, 1),
        },
        "rollback" => {
            let ok = w.get(1).is_some_and(|s| abbrev(s, "running-config", 3))
                && w.get(2).is_some_and(|s| abbrev(s, "checkpoint", 3));
            match (ok, w.get(3)) {
                (true, Some(name)) => {
                    let mut st = cli.dev.lock();
                    match st.checkpoints.get(name).cloned() {
                        Some(rc) => {
                            st.replace(rc);
                            Reply::text(
                                "Note: Applying config parallelly may fail Rollback verification\r\nCollecting Running-Config\r\n#Generating Rollback Patch\r\nExecuting Rollback Patch\r\nGenerating Running-config for verification\r\nGenerating Patch for verification\r\nVerification is Successful.\r\n\r\nRollback completed successfully.\r\n\r\n",
                            )
                        }
                        None => Reply::text(format!(
                            "ERROR: Checkpoint name '{name}' does not exist\r\n"
                        )),
                    }
                }
                (true, None) => cli.incomplete(),
                _ => cli.invalid(&w, 1),
            }
        }
        _ => cli.invalid(&w, 0),
    };
    match filter {
        Some(f) => match filter_output(&reply.out, f) {
            Some(out) => Reply {
                out,
                then: reply.then,
            },
            None => cli.invalid(&Words::new(line), w.len() + 1),
        },
        None => reply,
    }
}

/// User checkpoints a switch keeps at most (Nexus configuration guides).
pub const MAX_CHECKPOINTS: usize = 10;
/// The longest checkpoint name.
pub const MAX_CHECKPOINT_NAME: usize = 32;

/// `checkpoint [NAME]`: a copy of the running config, within the
/// platform's limits.
fn checkpoint(cli: &mut Cli, name: Option<&str>) -> Reply {
    let mut st = cli.dev.lock();
    let name = match name {
        Some(n) => n.to_string(),
        None => format!("user-checkpoint-{}", st.checkpoints.len() + 1),
    };
    if name.chars().count() > MAX_CHECKPOINT_NAME {
        return Reply::text(format!(
            "ERROR: Checkpoint name exceeds the maximum length of {MAX_CHECKPOINT_NAME} characters\r\n"
        ));
    }
    if st.checkpoints.contains_key(&name) {
        return Reply::text(format!(
            "ERROR: Checkpoint name '{name}' is already in use\r\n"
        ));
    }
    if st.checkpoints.len() >= MAX_CHECKPOINTS {
        return Reply::text(format!(
            "ERROR: Maximum number of checkpoints ({MAX_CHECKPOINTS}) reached. Delete a checkpoint and try again.\r\n"
        ));
    }
    let rc = st.running.clone();
    st.checkpoints.insert(name, rc);
    Reply::text("Done\r\n")
}

fn enter_config(cli: &mut Cli, session: Option<String>) -> Reply {
    let mut out = String::new();
    if let Some(name) = &session {
        let mut st = cli.dev.lock();
        let n = st.config_sessions.len() + 1;
        st.config_sessions.entry(name.clone()).or_default();
        let _ = write!(out, "Config Session started, Session ID is {n}\r\n");
    }
    out.push_str(ENTER_CONFIG);
    cli.config_session = session;
    cli.mode = Mode::Config(ConfigMode::Global);
    Reply::text(out)
}

fn show(cli: &mut Cli, w: &Words<'_>) -> Reply {
    let choices = [
        ("version", 2),
        ("running-config", 2),
        ("startup-config", 2),
        ("ip", 2),
        ("access-lists", 2),
        ("checkpoint", 2),
        ("configuration", 5),
        ("terminal", 2),
        ("object-group", 2),
    ];
    let idx = match cli.pick(w, 1, &choices) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let st = cli.dev.lock();
    match choices[idx].0 {
        "version" => Reply::text(show_version(&st.running.hostname)),
        "running-config" => match w.get(2) {
            Some(s) if abbrev(s, "aclmgr", 2) => Reply::text(aclmgr(&st.running)),
            Some(_) => {
                drop(st);
                cli.invalid(w, 2)
            }
            None => Reply::text(running(&st.running)),
        },
        "startup-config" => Reply::text(running(&st.startup)),
        "access-lists" => Reply::text(show_acls(&st.running, w.get(2))),
        "object-group" => Reply::text(
            st.running
                .object_groups
                .iter()
                .map(|g| format!("IPv4 address object-group {g}\r\n"))
                .collect::<String>(),
        ),
        "ip" => match w.get(2) {
            Some(s) if abbrev(s, "access-lists", 3) => {
                Reply::text(show_acls(&st.running, w.get(3)))
            }
            Some(s) if abbrev(s, "interface", 3) => {
                let mut out = String::from(
                    "IP Interface Status for VRF \"default\"(1)\r\nInterface            IP Address      Interface Status\r\n",
                );
                for (idx, i) in st.running.interfaces.iter().enumerate() {
                    let _ = write!(
                        out,
                        "{:<21}10.{}.{idx}.1        protocol-up/link-up/admin-up       \r\n",
                        i.name,
                        st.running.hostname.len()
                    );
                }
                Reply::text(out)
            }
            Some(_) => {
                drop(st);
                cli.invalid(w, 2)
            }
            None => {
                drop(st);
                cli.incomplete()
            }
        },
        "checkpoint" => {
            // As `show checkpoint summary` prints it (genie's golden sample).
            let mut out = String::new();
            for (i, name) in st.checkpoints.keys().enumerate() {
                let _ = write!(
                    out,
                    "\r\n        {}) {name}:\r\n        Created by admin\r\n        Created at Wed, 01:02:03 25 Nov 2026\r\n        Size is 26,154 bytes\r\n        User Checkpoint Summary\r\n        -----------------------------------------------------\r\n        Description: None\r\n",
                    i + 1
                );
            }
            Reply::text(out)
        }
        "configuration" => {
            let mut out = String::new();
            for (name, cmds) in &st.config_sessions {
                let _ = write!(
                    out,
                    "Name                          Session Owner           Creation Time\r\n{name:<30}admin                   00:00:01\r\n  commands queued: {}\r\n",
                    cmds.len()
                );
            }
            if out.is_empty() {
                out = "There are no active configuration sessions\r\n".into();
            }
            Reply::text(out)
        }
        _ => Reply::text(format!(
            "TTY: /dev/pts/1 Type: \"vt100\"\r\nLength: {} lines, Width: {} columns\r\n",
            cli.term_length, cli.term_width
        )),
    }
}
