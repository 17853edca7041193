//! IOS exec commands, `show` output in IOS's layout, and the dialer hub's
//! reverse-telnet commands.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::acl::{AclKind, Addr, Dialect, Entry, render};
use super::cli::{Cli, ConfigMode, Mode, Question, Reply, Telnet, Then, Words, filter_output};
use super::device::RunningConfig;
use super::modem::Modem;
use super::standard::shown;

const ENTER_CONFIG: &str = "Enter configuration commands, one per line.  End with CNTL/Z.\r\n";

pub fn show_version(host: &str) -> String {
    format!(
        "Cisco IOS Software, C2960 Software (C2960-LANBASEK9-M), Version 15.0(2)SE4, RELEASE SOFTWARE (fc1)\r\n\
         Technical Support: http://www.cisco.com/techsupport\r\n\
         Copyright (c) 1986-2013 by Cisco Systems, Inc.\r\n\
         Compiled Wed 26-Jun-13 02:49 by prod_rel_team\r\n\r\n\
         ROM: Bootstrap program is C2960 boot loader\r\n\
         BOOTLDR: C2960 Boot Loader (C2960-HBOOT-M) Version 12.2(53r)SEY3, RELEASE SOFTWARE (fc1)\r\n\r\n\
         {host} uptime is 3 weeks, 2 days, 4 hours, 12 minutes\r\n\
         System returned to ROM by power-on\r\n\
         System image file is \"flash:c2960-lanbasek9-mz.150-2.SE4.bin\"\r\n\r\n\
         cisco WS-C2960-24TT-L (PowerPC405) processor (revision B0) with 65536K bytes of memory.\r\n\
         Processor board ID FOC1234X5YZ\r\n\
         4 Gigabit Ethernet interfaces\r\n\
         64K bytes of flash-simulated non-volatile configuration memory.\r\n\r\n\
         Configuration register is 0xF\r\n\r\n"
    )
}

/// The entry as the running config shows it: IOS pads `deny` to line up
/// with `permit`.
fn padded(e: &Entry) -> String {
    render(e, Dialect::Ios).replacen("deny ", "deny   ", 1)
}

/// A hit counter on some entries, as a busy device shows.
fn matches(seq: u32) -> String {
    if seq % 20 == 10 {
        format!(" ({} matches)", seq * 7)
    } else {
        String::new()
    }
}

/// ACLs as `show access-lists` prints them (remarks are not shown):
/// IPv4 (`ip` = true), IPv6 (`v6` = true), or both.
pub fn show_acls_of(rc: &RunningConfig, name: Option<&str>, ip: bool, v6: bool) -> String {
    let mut out = String::new();
    let tables = [(ip, &rc.acls), (v6, &rc.acls6)];
    for (n, acl) in tables.into_iter().filter(|t| t.0).flat_map(|t| t.1) {
        if name.is_some_and(|x| x != n) {
            continue;
        }
        let title = match acl.kind {
            AclKind::Extended => "Extended IP",
            AclKind::Standard => "Standard IP",
            AclKind::Ipv6 => "IPv6",
        };
        let _ = write!(out, "{title} access list {n}\r\n");
        for (seq, e) in shown(acl).into_iter().filter(|(_, e)| e.is_ace()) {
            let text = render(e, Dialect::Ios);
            let _ = match (acl.kind, e) {
                (AclKind::Ipv6, _) => write!(out, "    {text}{} sequence {seq}\r\n", matches(seq)),
                // `permit 10.0.0.0, wildcard bits 0.0.0.255`
                (
                    AclKind::Standard,
                    Entry::Std {
                        src: Addr::Wild(ip, w),
                        ..
                    },
                ) if !w.is_unspecified() => {
                    let text =
                        text.replacen(&format!("{ip} {w}"), &format!("{ip}, wildcard bits {w}"), 1);
                    write!(out, "    {seq} {text}{}\r\n", matches(seq))
                }
                _ => write!(out, "    {seq} {text}{}\r\n", matches(seq)),
            };
        }
    }
    out
}

pub fn show_acls(rc: &RunningConfig, name: Option<&str>) -> String {
    show_acls_of(rc, name, true, false)
}

fn run_body(rc: &RunningConfig) -> String {
    let mut out = String::from(
        "!\r\nversion 15.0\r\nno service pad\r\nservice timestamps debug datetime msec\r\n\
         service timestamps log datetime msec\r\nno service password-encryption\r\n!\r\n",
    );
    let _ = write!(
        out,
        "hostname {}\r\n!\r\nboot-start-marker\r\nboot-end-marker\r\n!\r\n",
        rc.hostname
    );
    if let Some(p) = &rc.archive_path {
        let _ = write!(out, "archive\r\n path {p}\r\n maximum 14\r\n!\r\n");
    }
    out.push_str("username admin privilege 1 secret 5 $1$lab0$3nCr7ptEdN0tR3aLxx.\r\n!\r\n");
    for (idx, i) in rc.interfaces.iter().enumerate() {
        let _ = write!(out, "interface {}\r\n", i.name);
        if let Some(d) = &i.description {
            let _ = write!(out, " description {d}\r\n");
        }
        let _ = write!(
            out,
            " ip address 10.{}.{idx}.1 255.255.255.0\r\n",
            rc.hostname.len()
        );
        for (word, a, dir) in i.bindings() {
            let _ = write!(out, " {word} {a} {dir}\r\n");
        }
        out.push_str("!\r\n");
    }
    // Named ACLs as blocks; numbered ones as `access-list N …` lines.
    for (n, acl) in &rc.acls {
        if n.parse::<u32>().is_ok() {
            continue;
        }
        let kind = if acl.kind == AclKind::Standard {
            "standard"
        } else {
            "extended"
        };
        let _ = write!(out, "ip access-list {kind} {n}\r\n");
        for (_, e) in shown(acl) {
            let _ = write!(out, " {}\r\n", padded(e));
        }
        out.push_str("!\r\n");
    }
    for (n, acl) in rc.acls.iter().filter(|(n, _)| n.parse::<u32>().is_ok()) {
        for (_, e) in shown(acl) {
            let _ = write!(out, "access-list {n} {}\r\n", padded(e));
        }
    }
    for (n, acl) in &rc.acls6 {
        let _ = write!(out, "ipv6 access-list {n}\r\n");
        for e in acl.entries.values() {
            let _ = write!(out, " {}\r\n", render(e, Dialect::Ios));
        }
        out.push_str("!\r\n");
    }
    out.push_str(
        "banner motd ^C\r\n# Authorised access only. Lab device: changes are logged. #\r\n^C\r\n!\r\n\
         line con 0\r\nline vty 0 4\r\n",
    );
    if let Some(a) = &rc.vty.class_in {
        let _ = write!(out, " access-class {a} in\r\n");
    }
    if let Some(a) = &rc.vty.class6_in {
        let _ = write!(out, " ipv6 access-class {a} in\r\n");
    }
    out.push_str(" login local\r\n transport input ssh\r\n!\r\nend\r\n");
    out
}

pub fn show_running(rc: &RunningConfig) -> String {
    let body = run_body(rc);
    format!(
        "Building configuration...\r\n\r\nCurrent configuration : {} bytes\r\n{body}",
        body.len()
    )
}

pub fn show_startup(rc: &RunningConfig) -> String {
    let body = run_body(rc);
    format!("Using {} out of 65536 bytes\r\n{body}", body.len())
}

fn show_ip_interface(rc: &RunningConfig, brief: bool, only: Option<&str>) -> String {
    let mut out = String::new();
    if brief {
        out.push_str("Interface                  IP-Address      OK? Method Status                Protocol\r\n");
    }
    for (idx, i) in rc.interfaces.iter().enumerate() {
        if only.is_some_and(|o| !i.name.eq_ignore_ascii_case(o)) {
            continue;
        }
        let ip = format!("10.{}.{idx}.1", rc.hostname.len());
        if brief {
            let _ = write!(
                out,
                "{:<27}{ip:<16}YES NVRAM  up                    up      \r\n",
                i.name
            );
            continue;
        }
        let acl = |a: &Option<String>| a.clone().unwrap_or_else(|| "not set".into());
        let _ = write!(
            out,
            "{} is up, line protocol is up\r\n  Internet address is {ip}/24\r\n  Broadcast address is 255.255.255.255\r\n  \
             Address determined by non-volatile memory\r\n  MTU is 1500 bytes\r\n  Helper address is not set\r\n  \
             Directed broadcast forwarding is disabled\r\n  Outgoing access list is {}\r\n  Inbound  access list is {}\r\n  \
             Proxy ARP is enabled\r\n  Local Proxy ARP is disabled\r\n  Security level is default\r\n  Split horizon is enabled\r\n",
            i.name,
            acl(&i.access_out),
            acl(&i.access_in)
        );
    }
    out
}

fn show_line(cli: &Cli, only: Option<u32>) -> String {
    let st = cli.dev.lock();
    let mut out = String::new();
    if let Some(n) = only {
        let Some(l) = st.lines.get(&n) else {
            return "% Invalid line number\r\n".into();
        };
        let state = if l.carrier {
            "Connected"
        } else if l.held_by.is_some() {
            "Ready"
        } else {
            "Idle"
        };
        let _ = write!(
            out,
            "   Tty Typ     Tx/Rx    A Modem  Roty AccO AccI   Uses   Noise  Overruns   Int\r\n\
             {}{n:>6} TTY   115200/115200 - inout     -    -    -   {:>4}       0     0/0       -\r\n\r\n\
             Line {n}, Location: \"\", Type: \"\"\r\nLength: 24 lines, Width: 80 columns\r\n\
             Baud rate (TX/RX) is 115200/115200, no parity, 1 stopbits, 8 databits\r\n\
             Status: {}\r\nCapabilities: Hardware Flowcontrol In, Hardware Flowcontrol Out, Modem Callout\r\n\
             Modem state: {state}\r\nModem hardware state: CTS{} DTR RTS\r\n",
            if l.held_by.is_some() { "*" } else { " " },
            l.uses,
            if l.held_by.is_some() {
                "Ready, Active, No Exit Banner"
            } else {
                "Ready"
            },
            if l.carrier { " DSR" } else { " noDSR" },
        );
        return out;
    }
    out.push_str(
        "   Tty Typ     Tx/Rx    A Modem  Roty AccO AccI   Uses   Noise  Overruns   Int\r\n",
    );
    out.push_str(
        "      0 CTY              -    -      -    -    -      0       0     0/0       -\r\n",
    );
    for (n, l) in &st.lines {
        let _ = write!(
            out,
            "{}{n:>6} TTY   115200/115200 - inout     -    -    -   {:>4}       0     0/0       -\r\n",
            if l.held_by.is_some() { "*" } else { " " },
            l.uses
        );
    }
    out.push_str(
        "*  866 VTY              -    -      -    -    -      1       0     0/0       -\r\n",
    );
    out
}

/// An IOS exec-mode command line.
pub fn exec(cli: &mut Cli, line: &str) -> Reply {
    let (cmd, filter) = match line.split_once('|') {
        Some((c, f)) => (c, Some(f.trim())),
        None => (line, None),
    };
    let w = Words::new(cmd);
    if w.len() == 0 {
        return resume(cli).unwrap_or_else(Reply::empty);
    }
    let enable = cli.mode == Mode::Enable;
    let mut choices: Vec<(&str, usize)> = vec![
        ("show", 2),
        ("enable", 2),
        ("exit", 3),
        ("logout", 2),
        ("quit", 1),
        ("terminal", 2),
        ("telnet", 3),
        ("disconnect", 3),
        ("resume", 3),
        ("disable", 4),
    ];
    if enable {
        choices.extend([
            ("configure", 4),
            ("write", 2),
            ("copy", 2),
            ("reload", 3),
            ("clear", 2),
        ]);
    }
    let cmd_idx = match cli.pick(&w, 0, &choices) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let reply = match choices[cmd_idx].0 {
        "show" => show(cli, &w),
        "enable" => {
            if enable {
                Reply::empty()
            } else {
                Reply::ask("", Question::EnableSecret(0), "Password: ")
            }
        }
        "disable" => {
            cli.mode = Mode::User;
            Reply::empty()
        }
        "exit" | "logout" | "quit" => Reply {
            out: String::new(),
            then: Then::Close,
        },
        "terminal" => terminal(cli, &w),
        "configure" => configure(cli, &w),
        "write" => match w.get(1) {
            None => write_memory(cli),
            Some(s) if super::cli::abbrev(s, "memory", 1) => write_memory(cli),
            Some(_) => cli.invalid(&w, 1),
        },
        "copy" => {
            let ok = w
                .get(1)
                .is_some_and(|s| super::cli::abbrev(s, "running-config", 3))
                && w.get(2)
                    .is_some_and(|s| super::cli::abbrev(s, "startup-config", 3));
            if ok {
                Reply::ask(
                    "",
                    Question::CopyDestination,
                    "Destination filename [startup-config]? ",
                )
            } else {
                cli.invalid(
                    &w,
                    if w.get(1)
                        .is_some_and(|s| super::cli::abbrev(s, "running-config", 3))
                    {
                        2
                    } else {
                        1
                    },
                )
            }
        }
        "reload" => reload(cli, &w),
        "telnet" => telnet(cli, &w),
        "disconnect" => match &cli.telnet {
            Some(_) => Reply::ask(
                "",
                Question::ConfirmDisconnect,
                format!("Closing connection to {} [confirm]", cli.lab.host),
            ),
            None => Reply::text("% No connection to disconnect\r\n"),
        },
        "resume" => resume(cli).unwrap_or_else(|| Reply::text("% No connection to resume\r\n")),
        "clear" => {
            let ok = w.get(1).is_some_and(|s| super::cli::abbrev(s, "line", 1));
            match (ok, w.get(2).and_then(|n| n.parse::<u32>().ok())) {
                (true, Some(n)) if cli.dev.lock().lines.contains_key(&n) => {
                    Reply::ask("", Question::ConfirmClearLine(n), "[confirm]")
                }
                (true, Some(_)) => cli.invalid(&w, 2),
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

fn terminal(cli: &mut Cli, w: &Words<'_>) -> Reply {
    let idx = match cli.pick(
        w,
        1,
        &[("length", 3), ("width", 3), ("monitor", 3), ("no", 2)],
    ) {
        Ok(i) => i,
        Err(r) => return r,
    };
    if idx >= 2 {
        return Reply::empty();
    }
    let Some(n) = w.get(2) else {
        return cli.incomplete();
    };
    match n.parse::<usize>() {
        Ok(n) if idx == 0 && n <= 512 => cli.term_length = n,
        Ok(n) if idx == 1 && n <= 512 => cli.term_width = n,
        _ => return cli.invalid(w, 2),
    }
    Reply::empty()
}

/// `show` keywords at privilege level 1 (`>`), and those only privileged
/// EXEC (`#`) has: at `>` IOS refuses these as unknown words, with the
/// caret under them.
const SHOW_USER: &[(&str, usize)] = &[
    ("version", 2),
    ("ip", 2),
    ("access-lists", 2),
    ("line", 2),
    ("terminal", 2),
    ("users", 2),
    ("object-group", 2),
    ("ipv6", 4),
];
const SHOW_PRIVILEGED: &[(&str, usize)] =
    &[("running-config", 2), ("startup-config", 2), ("archive", 2)];

fn show(cli: &mut Cli, w: &Words<'_>) -> Reply {
    let mut choices = SHOW_USER.to_vec();
    if cli.mode != Mode::User {
        choices.extend_from_slice(SHOW_PRIVILEGED);
    }
    let idx = match cli.pick(w, 1, &choices) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let st = cli.dev.lock();
    let rc = &st.running;
    match choices[idx].0 {
        "version" => Reply::text(show_version(&rc.hostname)),
        "running-config" => Reply::text(show_running(rc)),
        "startup-config" => Reply::text(show_startup(&st.startup)),
        "access-lists" => Reply::text(show_acls_of(rc, w.get(2), true, true)),
        "ipv6" => match w.get(2) {
            Some(a) if super::cli::abbrev(a, "access-list", 3) => {
                Reply::text(show_acls_of(rc, w.get(3), false, true))
            }
            _ => {
                drop(st);
                cli.invalid(w, 2)
            }
        },
        "object-group" => Reply::text(
            rc.object_groups
                .iter()
                .map(|g| format!("Network object group {g}\r\n"))
                .collect::<String>(),
        ),
        "ip" => {
            let sub = [("access-lists", 3), ("interface", 3)];
            match super::cli::choose(w.get(2).unwrap_or(""), &sub) {
                Ok(0) => Reply::text(show_acls(rc, w.get(3))),
                Ok(_) => match w.get(3) {
                    Some(b) if super::cli::abbrev(b, "brief", 1) => {
                        Reply::text(show_ip_interface(rc, true, None))
                    }
                    Some(_) => {
                        let typed = w.rest(3).replace(' ', "");
                        match super::config::find_interface(rc, &typed) {
                            Some(n) => Reply::text(show_ip_interface(rc, false, Some(&n))),
                            None => {
                                drop(st);
                                cli.invalid(w, 3)
                            }
                        }
                    }
                    None => Reply::text(show_ip_interface(rc, false, None)),
                },
                Err(_) if w.get(2).is_none() => {
                    drop(st);
                    cli.incomplete()
                }
                Err(_) => {
                    drop(st);
                    cli.invalid(w, 2)
                }
            }
        }
        "archive" => Reply::text(match &rc.archive_path {
            Some(p) => format!(
                "The maximum archive configurations allowed is 14.\r\nThere are currently 1 archive configurations saved.\r\n\
                 The next archive file will be named {p}-2\r\n Archive #  Name\r\n   1        {p}-1 <- Most Recent\r\n"
            ),
            None => "Archive feature not enabled\r\n".into(),
        }),
        "line" => {
            drop(st);
            let n = w.get(2).and_then(|n| n.parse().ok());
            Reply::text(show_line(cli, n))
        }
        "terminal" => Reply::text(format!(
            "Line 866, Location: \"\", Type: \"vt100\"\r\nLength: {} lines, Width: {} columns\r\n",
            cli.term_length, cli.term_width
        )),
        _ => Reply::text(format!(
            "    Line       User       Host(s)              Idle       Location\r\n*866 vty 0     admin      idle                 00:00:00 {}\r\n\r\n",
            cli.lab.host
        )),
    }
}

fn configure(cli: &mut Cli, w: &Words<'_>) -> Reply {
    let idx = match w.get(1) {
        None => 0,
        Some(_) => match cli.pick(w, 1, &[("terminal", 1), ("confirm", 4), ("memory", 1)]) {
            Ok(i) => i,
            Err(r) => return r,
        },
    };
    match idx {
        1 => {
            let mut st = cli.dev.lock();
            if st.revert.take().is_some() {
                Reply::empty()
            } else {
                Reply::text("% No Rollback Confirmed Change pending\r\n")
            }
        }
        2 => Reply::text("% Configuring from memory is not supported on this lab device\r\n"),
        _ => {
            // configure terminal [revert timer N]
            if let Some(word) = w.get(2) {
                if !super::cli::abbrev(word, "revert", 3) {
                    return cli.invalid(w, 2);
                }
                if !w.get(3).is_some_and(|t| super::cli::abbrev(t, "timer", 1)) {
                    return if w.get(3).is_none() {
                        cli.incomplete()
                    } else {
                        cli.invalid(w, 3)
                    };
                }
                let minutes = match w.get(4).map(|n| n.parse::<u64>()) {
                    Some(Ok(m)) if (1..=120).contains(&m) => m,
                    Some(_) => return cli.invalid(w, 4),
                    None => return cli.incomplete(),
                };
                let mut st = cli.dev.lock();
                if st.running.archive_path.is_none() {
                    return Reply::text(
                        "% Rollback Confirmed Change: archive path is not configured; configure 'archive' and 'path' first\r\n",
                    );
                }
                let deadline =
                    Instant::now() + Duration::from_secs(minutes * 60).mul_f64(cli.lab.time_scale);
                let snapshot = st
                    .revert
                    .as_ref()
                    .map_or_else(|| st.running.clone(), |r| r.snapshot.clone());
                st.revert = Some(super::device::Revert { snapshot, deadline });
                drop(st);
                cli.lab.arm_revert(cli.dev.clone(), deadline);
            }
            cli.mode = Mode::Config(ConfigMode::Global);
            Reply::text(ENTER_CONFIG)
        }
    }
}

fn write_memory(cli: &mut Cli) -> Reply {
    let mut st = cli.dev.lock();
    st.startup = st.running.clone();
    Reply::text("Building configuration...\r\n[OK]\r\n")
}

fn reload(cli: &mut Cli, w: &Words<'_>) -> Reply {
    match w.get(1) {
        Some(c) if super::cli::abbrev(c, "cancel", 1) => {
            let mut st = cli.dev.lock();
            if st.reload_at.take().is_some() {
                Reply::text("\r\n\r\n***\r\n*** --- SHUTDOWN ABORTED ---\r\n***\r\n")
            } else {
                Reply::text("%No reload is scheduled.\r\n")
            }
        }
        Some(c) if super::cli::abbrev(c, "in", 2) => match w.get(2).map(|n| n.parse::<u64>()) {
            Some(Ok(m)) if (1..=14400).contains(&m) => Reply::ask(
                format!(
                    "Reload scheduled in {m} minutes by admin on vty0 ({})\r\n",
                    cli.lab.host
                ),
                Question::ConfirmReload(m),
                "Proceed with reload? [confirm]",
            ),
            Some(_) => cli.invalid(w, 2),
            None => cli.incomplete(),
        },
        Some(_) => cli.invalid(w, 1),
        None => Reply::text("% Immediate reload is disabled on lab devices; use 'reload in N'\r\n"),
    }
}

fn telnet(cli: &mut Cli, w: &Words<'_>) -> Reply {
    let (Some(host), Some(port)) = (w.get(1), w.get(2).and_then(|p| p.parse::<u32>().ok())) else {
        return if w.get(1).is_none() {
            cli.incomplete()
        } else {
            cli.invalid(w, 2)
        };
    };
    let mut out = format!("Trying {host}, {port} ... ");
    if host != cli.lab.host.to_string() || !(2000..3000).contains(&port) {
        out.push_str("\r\n% Connection refused by remote host\r\n\r\n");
        return Reply::text(out);
    }
    if cli.telnet.is_some() {
        return Reply::text("% Already connected; use 'disconnect' first\r\n");
    }
    let line = port - 2000;
    let mut st = cli.dev.lock();
    let Some(l) = st.lines.get_mut(&line) else {
        out.push_str("\r\n% Connection refused by remote host\r\n\r\n");
        return Reply::text(out);
    };
    if l.held_by.is_some() {
        out.push_str("\r\n% Connection refused by remote host\r\n\r\n");
        return Reply::text(out);
    }
    l.held_by = Some(cli.id);
    l.uses += 1;
    l.epoch += 1;
    let epoch = l.epoch;
    drop(st);
    cli.telnet = Some(Telnet {
        line,
        epoch,
        modem: Modem::new(cli.lab.time_scale, cli.lab.branches),
        attached: true,
    });
    out.push_str("Open\r\n");
    Reply {
        out,
        then: Then::Attach,
    }
}

/// An empty line or `resume` with a suspended connection goes back to it.
fn resume(cli: &mut Cli) -> Option<Reply> {
    let t = cli.telnet.as_mut()?;
    t.attached = true;
    Some(Reply {
        out: format!("[Resuming connection 1 to {} ... ]\r\n", cli.lab.host),
        then: Then::Attach,
    })
}
