//! The lab's IOS behaviour, driven over real SSH.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{PASSWORD, Shell, ios_enable, start_lab};
use nightshift::lab::LabSpec;

fn small() -> LabSpec {
    LabSpec {
        ios: 2,
        nxos: 0,
        ..Default::default()
    }
}

#[tokio::test]
async fn login_banner_with_hash_then_user_prompt_then_enable() {
    let lab = start_lab(small()).await;
    let mut s = Shell::open(&lab, "ios-001").await;
    let greeting = s.expect("ios-001>$").await;
    assert!(
        greeting.contains("# Authorised access only"),
        "{greeting:?}"
    );
    // A wrong enable secret is asked again, three times, then refused.
    s.send("enable\r").await;
    s.expect("Password: $").await;
    s.send("wrong\r").await;
    s.expect("Password: $").await;
    s.send(&format!("{PASSWORD}\r")).await;
    s.expect("ios-001#$").await;
    let v = s.cmd("show version").await;
    assert!(
        v.contains("Cisco IOS Software") && v.contains("ios-001 uptime is"),
        "{v}"
    );
    lab.shutdown().await;
}

/// At privilege level 1 IOS knows no privileged command: it refuses them
/// as unknown words, the caret under the first one it does not know (as
/// the csr1000v `mode-by-command-matrix` transcript shows).
#[tokio::test]
async fn user_exec_refuses_privileged_commands_as_ios_does() {
    let lab = start_lab(small()).await;
    let mut s = Shell::open(&lab, "ios-001").await;
    s.expect("ios-001>$").await;
    s.cmd("terminal length 0").await;
    for (line, caret_at) in [
        ("show running-config", 5),
        ("show run", 5),
        ("show startup-config", 5),
        ("show archive", 5),
        ("configure terminal", 0),
        ("copy running-config startup-config", 0),
        ("write memory", 0),
        ("clear line 33", 0),
    ] {
        let out = s.cmd(line).await;
        let pad = " ".repeat("ios-001>".len() + caret_at);
        assert!(
            out.contains(&format!(
                "\r\n{pad}^\r\n% Invalid input detected at '^' marker."
            )),
            "{line}: {out:?}"
        );
    }
    // What level 1 has still works.
    assert!(s.cmd("show version").await.contains("Cisco IOS Software"));
    assert!(
        s.cmd("show ip access-lists")
            .await
            .contains("Extended IP access list")
    );
    lab.shutdown().await;
}

#[tokio::test]
async fn long_output_pages_until_terminal_length_zero() {
    let lab = start_lab(small()).await;
    let mut s = Shell::open(&lab, "ios-001").await;
    s.expect("ios-001>$").await;
    s.send("enable\r").await;
    s.expect("Password: $").await;
    s.send(&format!("{PASSWORD}\r")).await;
    s.expect("ios-001#$").await;
    s.send("show running-config\r").await;
    let first = s.expect(" --More-- $").await;
    assert!(first.contains("Building configuration"));
    s.send(" ").await;
    s.expect(" --More-- $").await;
    s.send("q").await;
    s.expect("ios-001#$").await;
    s.cmd("terminal length 0").await;
    s.cmd("terminal width 511").await;
    let all = s.cmd("show running-config").await;
    assert!(
        !all.contains("--More--") && all.contains("\r\nend\r\n"),
        "{all}"
    );
    lab.shutdown().await;
}

#[tokio::test]
async fn errors_are_printed_as_ios_does() {
    let lab = start_lab(small()).await;
    let mut s = ios_enable(&lab, "ios-001").await;
    let bad = s.cmd("show foooooooo").await;
    // The caret sits under the bad word, counting the prompt.
    assert!(
        bad.contains("\r\n             ^\r\n% Invalid input detected at '^' marker.\r\n"),
        "{bad:?}"
    );
    assert!(s.cmd("show").await.contains("% Incomplete command."));
    assert!(s.cmd("c").await.contains("% Ambiguous command:  \"c\""));
    s.cmd("configure terminal").await;
    let r = s.cmd("ip access-list extended T1").await;
    assert!(r.ends_with("ios-001(config-ext-nacl)#"), "{r}");
    let r = s.cmd("permit tcp any any eq sshh").await;
    assert!(r.contains("% Invalid input detected"), "{r}");
    let r = s.cmd("permit tcp any").await;
    assert!(r.contains("% Incomplete command."), "{r}");
    s.cmd("end").await;
    lab.shutdown().await;
}

#[tokio::test]
async fn acl_editing_bindings_and_saving() {
    let lab = start_lab(small()).await;
    let mut s = ios_enable(&lab, "ios-001").await;
    let before = s.cmd("show ip access-lists LOCK_IT_DOWN").await;
    assert!(
        before.contains("Extended IP access list LOCK_IT_DOWN"),
        "{before}"
    );
    assert!(
        before.contains("    20 permit tcp 10.0.0.0 0.0.0.255 any eq 22"),
        "{before}"
    );
    assert!(
        !before.contains("remark"),
        "IOS does not show remarks: {before}"
    );
    let bound = s
        .cmd("show ip interface GigabitEthernet0/1 | include access list")
        .await;
    assert!(
        bound.contains("Inbound  access list is LOCK_IT_DOWN"),
        "{bound}"
    );

    assert_eq!(
        s.cmd("configure terminal")
            .await
            .matches("Enter configuration commands")
            .count(),
        1
    );
    s.cmd("ip access-list extended LOCK_IT_DOWN").await;
    s.cmd("15 permit udp host 10.0.0.53 any eq 53").await;
    s.cmd("permit tcp any any eq www").await; // gets 50
    s.cmd("no 30").await;
    let dup = s.cmd("15 deny ip any any").await;
    assert!(dup.contains("% Duplicate sequence number"), "{dup}");
    s.cmd("exit").await;
    s.cmd("ip access-list resequence LOCK_IT_DOWN 100 5").await;
    s.cmd("interface gi0/2").await;
    s.cmd("ip access-group LOCK_IT_DOWN out").await;
    s.send("\x1a").await; // Ctrl-Z leaves config mode
    s.expect("ios-001#$").await;
    let after = s.cmd("show ip access-lists LOCK_IT_DOWN").await;
    // The remark holds 100 (remarks have sequence numbers but are not shown).
    assert!(
        after.contains("    105 permit udp host 10.0.0.53 any eq domain\r\n"),
        "{after}"
    );
    assert!(
        after.contains("    110 permit tcp 10.0.0.0 0.0.0.255 any eq 22 (770 matches)\r\n"),
        "{after}"
    );
    assert!(after.contains("    115 deny ip any any\r\n"), "{after}");
    assert!(
        after.contains("    120 permit tcp any any eq www\r\n"),
        "{after}"
    );
    assert!(!after.contains("icmp"), "{after}");
    let run = s
        .cmd("show running-config | section access-list extended LOCK")
        .await;
    assert!(
        run.contains(" remark legacy rules\r\n") && run.contains(" deny   ip any any\r\n"),
        "{run}"
    );

    assert!(!lab.stats().device("ios-001").unwrap().saved);
    s.send("copy running-config startup-config\r").await;
    s.expect(r"Destination filename \[startup-config\]\? $")
        .await;
    s.send("\r").await;
    let done = s.expect("ios-001#$").await;
    assert!(done.contains("[OK]"), "{done}");
    let st = lab.stats();
    let d = st.device("ios-001").unwrap();
    assert!(d.saved);
    assert_eq!(d.unprotected_ms, 0);
    assert_eq!(
        d.config_lines, 10,
        "every line typed in config mode counts, Ctrl-Z too"
    );
    assert_eq!(
        d.acls["LOCK_IT_DOWN"][0],
        "permit udp host 10.0.0.53 any eq domain"
    );
    s.cmd("configure terminal").await;
    s.cmd("hostname ios-901").await;
    s.cmd("end").await;
    assert!(!lab.stats().device("ios-001").unwrap().saved);
    s.send("write memory\r").await;
    assert!(
        s.try_expect(r"\[OK\]\r\nios-901#$", Duration::from_secs(5))
            .await
            .is_ok()
    );
    assert!(lab.stats().device("ios-001").unwrap().saved);
    lab.shutdown().await;
}

#[tokio::test]
async fn removing_a_bound_acl_is_measured_as_unprotected() {
    let lab = start_lab(small()).await;
    let mut s = ios_enable(&lab, "ios-002").await;
    s.cmd("configure terminal").await;
    // The classic script: remove, then re-create.
    s.cmd("no ip access-list extended LOCK_IT_DOWN").await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    s.cmd("ip access-list extended LOCK_IT_DOWN").await;
    s.cmd("remark only a remark so far").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.cmd("permit ip any any").await;
    s.cmd("end").await;
    let ms = lab.stats().device("ios-002").unwrap().unprotected_ms;
    assert!((250..2_000).contains(&ms), "unprotected for {ms} ms");
    lab.shutdown().await;
}

#[tokio::test]
async fn revert_timer_reverts_unless_confirmed() {
    let lab = start_lab(LabSpec {
        time_scale: 0.002,
        ..small()
    })
    .await; // 1 min = 120 ms
    let mut s = ios_enable(&lab, "ios-001").await;
    let r = s.cmd("configure terminal revert timer 1").await;
    assert!(r.contains("Enter configuration commands"), "{r}");
    s.cmd("ip access-list extended LOCK_IT_DOWN").await;
    s.cmd("5 deny tcp any any eq telnet").await;
    s.cmd("end").await;
    assert!(
        s.cmd("show ip access-lists LOCK_IT_DOWN")
            .await
            .contains(" 5 deny tcp any any eq telnet")
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let reverted = s.cmd("show ip access-lists LOCK_IT_DOWN").await;
    assert!(
        !reverted.contains("eq telnet"),
        "the device reverted by itself: {reverted}"
    );
    assert_eq!(lab.stats().device("ios-001").unwrap().reverts, 1);

    s.cmd("configure terminal revert timer 1").await;
    s.cmd("ip access-list extended LOCK_IT_DOWN").await;
    s.cmd("5 deny tcp any any eq telnet").await;
    s.cmd("end").await;
    assert!(s.cmd("configure confirm").await.ends_with("ios-001#"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        s.cmd("show ip access-lists LOCK_IT_DOWN")
            .await
            .contains("eq telnet")
    );
    assert!(
        s.cmd("configure confirm")
            .await
            .contains("% No Rollback Confirmed Change pending")
    );

    // Without an archive path the timer cannot be armed.
    s.cmd("configure terminal").await;
    s.cmd("no archive").await;
    s.cmd("end").await;
    assert!(
        s.cmd("configure terminal revert timer 5")
            .await
            .contains("archive path is not configured")
    );
    lab.shutdown().await;
}

#[tokio::test]
async fn reload_in_loses_unsaved_changes_and_can_be_cancelled() {
    let lab = start_lab(LabSpec {
        time_scale: 0.002,
        ..small()
    })
    .await;
    let mut s = ios_enable(&lab, "ios-001").await;
    s.cmd("configure terminal").await;
    s.cmd("ip access-list extended EXTRA").await;
    s.cmd("permit ip any any").await;
    s.cmd("end").await;
    s.send("reload in 1\r").await;
    s.expect(r"Proceed with reload\? \[confirm\]$").await;
    s.send("\r").await;
    s.expect("ios-001#$").await;
    assert!(s.cmd("reload cancel").await.contains("SHUTDOWN ABORTED"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        s.cmd("show ip access-lists EXTRA")
            .await
            .contains("Extended IP access list EXTRA")
    );
    s.send("reload in 1\r").await;
    s.expect(r"\[confirm\]$").await;
    s.send("\r").await;
    s.expect("ios-001#$").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = s.cmd("show ip access-lists EXTRA").await;
    assert!(
        !after.contains("Extended IP access list EXTRA"),
        "unsaved ACL gone after reload: {after}"
    );
    lab.shutdown().await;
}

#[tokio::test]
async fn exec_channel_runs_one_command_and_closes() {
    let lab = start_lab(small()).await;
    let d = lab.device("ios-001").unwrap();
    let mut h = common::connect(d.addr, &d.host_key, None).await.unwrap();
    assert!(
        h.authenticate_password("admin", PASSWORD)
            .await
            .unwrap()
            .success()
    );
    let mut ch = h.channel_open_session().await.unwrap();
    ch.exec(true, "show version").await.unwrap();
    let mut out = String::new();
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(5), ch.wait())
        .await
        .unwrap()
    {
        match msg {
            russh::ChannelMsg::Data { data } => out.push_str(&String::from_utf8_lossy(&data)),
            russh::ChannelMsg::Close => break,
            _ => {}
        }
    }
    assert!(out.contains("Cisco IOS Software"));
    // IOS closes the connection after one exec.
    assert!(h.channel_open_session().await.is_err() || h.is_closed());
    lab.shutdown().await;
}

#[tokio::test]
async fn config_prompts_shorten_long_hostnames() {
    let lab = start_lab(small()).await;
    let mut s = ios_enable(&lab, "ios-001").await;
    s.cmd("configure terminal").await;
    s.send("hostname ios-001-distribution-switch-a\r").await;
    // 20 characters of the hostname in configuration modes, all of it at exec.
    s.expect(r"\nios-001-distribution\(config\)#$").await;
    s.send("end\r").await;
    s.expect(r"\nios-001-distribution-switch-a#$").await;
    lab.shutdown().await;
}

/// A device echoes each character as it reads it: clients such as scrapli
/// type a command, wait for its echo, then press Enter. The enable secret
/// is never echoed.
#[tokio::test]
async fn typed_characters_are_echoed_before_enter_but_not_the_secret() {
    let lab = start_lab(small()).await;
    let mut s = Shell::open(&lab, "ios-001").await;
    s.expect("ios-001>$").await;
    s.send("enable").await;
    s.expect("^enable$").await;
    s.send("\r").await;
    s.expect("Password: $").await;
    s.send(PASSWORD).await;
    assert!(
        s.try_expect(PASSWORD, Duration::from_millis(300))
            .await
            .is_err(),
        "the secret is not echoed"
    );
    s.send("\r").await;
    s.expect("ios-001#$").await;
    // A backspace over a character already echoed rubs it out.
    s.send("show versionn").await;
    s.expect("show versionn$").await;
    s.send("\x7f").await;
    s.expect("\x08 \x08$").await;
    s.send("\r").await;
    let out = s.expect("ios-001#$").await;
    assert!(out.contains("Cisco IOS Software"), "{out:?}");
    lab.shutdown().await;
}
