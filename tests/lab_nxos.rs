//! The lab's NX-OS behaviour, driven over real SSH.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Shell, start_lab};
use nightshift::lab::LabSpec;

async fn nxos() -> (nightshift::lab::Lab, Shell) {
    let lab = start_lab(LabSpec {
        ios: 0,
        nxos: 1,
        ..Default::default()
    })
    .await;
    let mut s = Shell::open(&lab, "nxos-001").await;
    let greeting = s.expect("nxos-001# $").await;
    assert!(
        greeting.contains("\x1b[?7h"),
        "NX-OS sends terminal control sequences"
    );
    s.cmd("terminal length 0").await;
    (lab, s)
}

#[tokio::test]
async fn acl_layout_uses_prefixes_and_statistics() {
    let (lab, mut s) = nxos().await;
    let acl = s.cmd("show ip access-lists LOCK_IT_DOWN").await;
    assert!(acl.contains("\r\nIP access list LOCK_IT_DOWN\r\n        statistics per-entry\r\n        10 remark legacy rules\r\n        20 permit tcp 10.0.0.0/24 any eq 22\r\n"), "{acl:?}");
    let bad = s.cmd("show ip access-lsts").await;
    assert!(
        bad.contains("^\r\n% Invalid command at '^' marker."),
        "{bad}"
    );
    let aclmgr = s.cmd("show running-config aclmgr").await;
    assert!(
        aclmgr.contains("interface Ethernet1/2\r\n  ip access-group LOCK_IT_DOWN in"),
        "{aclmgr}"
    );
    lab.shutdown().await;
}

#[tokio::test]
async fn configure_session_applies_nothing_until_commit() {
    let (lab, mut s) = nxos().await;
    let started = s.cmd("configure session swap1").await;
    assert!(
        started.contains("Config Session started") && started.ends_with("nxos-001(config-s)# "),
        "{started}"
    );
    s.cmd("ip access-list LOCK_IT_DOWN").await;
    s.cmd("no 40").await;
    s.cmd("no 30").await;
    s.cmd("no 20").await;
    s.cmd("5 permit tcp 10.0.0.0 0.0.0.255 host 192.0.2.1 eq 443")
        .await;
    let rejected = s.cmd("6 permit tcp any").await;
    assert!(rejected.contains("Incomplete"), "{rejected}");
    // Not applied yet: the running ACL is untouched.
    assert_eq!(
        lab.stats().device("nxos-001").unwrap().acls["LOCK_IT_DOWN"].len(),
        4
    );
    assert!(s.cmd("verify").await.contains("Verification Successful"));
    assert!(s.cmd("commit").await.contains("Commit Successful"));
    let d = lab.stats().device("nxos-001").unwrap().clone();
    assert_eq!(
        d.acls["LOCK_IT_DOWN"],
        [
            "permit tcp 10.0.0.0/24 192.0.2.1/32 eq 443",
            "remark legacy rules"
        ]
    );
    assert_eq!(
        d.unprotected_ms, 0,
        "the session swapped entries atomically"
    );

    s.cmd("configure session doomed").await;
    s.cmd("no ip access-list LOCK_IT_DOWN").await;
    s.cmd("abort").await;
    assert!(
        lab.stats()
            .device("nxos-001")
            .unwrap()
            .acls
            .contains_key("LOCK_IT_DOWN")
    );
    lab.shutdown().await;
}

#[tokio::test]
async fn checkpoint_rollback_and_save() {
    let (lab, mut s) = nxos().await;
    assert!(s.cmd("checkpoint before-change").await.contains("Done"));
    s.cmd("configure terminal").await;
    s.cmd("ip access-list LOCK_IT_DOWN").await;
    s.cmd("no 20").await;
    s.cmd("end").await;
    assert_eq!(
        lab.stats().device("nxos-001").unwrap().acls["LOCK_IT_DOWN"].len(),
        3
    );
    let rb = s
        .cmd("rollback running-config checkpoint before-change")
        .await;
    assert!(rb.contains("Rollback completed successfully."), "{rb}");
    assert_eq!(
        lab.stats().device("nxos-001").unwrap().acls["LOCK_IT_DOWN"].len(),
        4
    );
    assert!(
        s.cmd("rollback running-config checkpoint nope")
            .await
            .contains("does not exist")
    );
    s.cmd("configure terminal").await;
    s.cmd("hostname nxos-001").await;
    s.cmd("end").await;
    let copy = s.cmd("copy running-config startup-config").await;
    assert!(
        copy.contains("[########################################] 100%")
            && copy.contains("Copy complete."),
        "{copy}"
    );
    assert!(lab.stats().device("nxos-001").unwrap().saved);
    lab.shutdown().await;
}
