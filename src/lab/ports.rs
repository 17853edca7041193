//! TCP and UDP port names as IOS and NX-OS take and print them.

const TCP_PORTS: &[(u16, &str)] = &[
    (7, "echo"),
    (9, "discard"),
    (13, "daytime"),
    (19, "chargen"),
    (20, "ftp-data"),
    (21, "ftp"),
    (23, "telnet"),
    (25, "smtp"),
    (37, "time"),
    (43, "whois"),
    (49, "tacacs"),
    (53, "domain"),
    (70, "gopher"),
    (79, "finger"),
    (80, "www"),
    (101, "hostname"),
    (109, "pop2"),
    (110, "pop3"),
    (111, "sunrpc"),
    (113, "ident"),
    (119, "nntp"),
    (179, "bgp"),
    (194, "irc"),
    (512, "exec"),
    (513, "login"),
    (514, "cmd"),
    (515, "lpd"),
    (517, "talk"),
    (540, "uucp"),
];
const UDP_PORTS: &[(u16, &str)] = &[
    (7, "echo"),
    (9, "discard"),
    (37, "time"),
    (42, "nameserver"),
    (49, "tacacs"),
    (53, "domain"),
    (67, "bootps"),
    (68, "bootpc"),
    (69, "tftp"),
    (111, "sunrpc"),
    (123, "ntp"),
    (137, "netbios-ns"),
    (138, "netbios-dgm"),
    (139, "netbios-ss"),
    (161, "snmp"),
    (162, "snmptrap"),
    (177, "xdmcp"),
    (500, "isakmp"),
    (512, "biff"),
    (513, "who"),
    (514, "syslog"),
    (517, "talk"),
    (520, "rip"),
    (4500, "non500-isakmp"),
];
fn port_table(proto: &str) -> &'static [(u16, &'static str)] {
    match proto {
        "tcp" => TCP_PORTS,
        "udp" => UDP_PORTS,
        _ => &[],
    }
}

pub fn parse_port(proto: &str, s: &str) -> Option<u16> {
    s.parse().ok().or_else(|| {
        port_table(proto)
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(p, _)| *p)
    })
}

pub fn port_name(proto: &str, p: u16) -> String {
    port_table(proto)
        .iter()
        .find(|(n, _)| *n == p)
        .map_or_else(|| p.to_string(), |(_, n)| n.to_string())
}
