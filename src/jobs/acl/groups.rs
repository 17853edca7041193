//! Object-group references: nightshift does not manage object-groups, but
//! a push whose entries refer to a group the device lacks is refused
//! before any change (the device would refuse the line mid-change).

use super::ace::{Entry, Line};

/// The object-groups the intent refers to, each once, in order: address
/// groups (`group NAME` in the canonical form), IOS service groups
/// (`object-group NAME` in place of the protocol) and NX-OS port groups
/// (`portgroup NAME`).
pub fn referenced(intent: &[Line]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in intent {
        let Entry::Rule(r) = &l.entry else { continue };
        let t: Vec<&str> = r.split_whitespace().collect();
        for w in t.windows(2) {
            if matches!(w[0], "group" | "object-group" | "portgroup")
                && !out.iter().any(|n| n == w[1])
            {
                out.push(w[1].to_string());
            }
        }
    }
    out
}

/// The group names `show object-group` lists: IOS `Network object group
/// NAME`, `Service object group NAME` (and `V6-...`); NX-OS `IPv4 address
/// object-group NAME`, `port object-group NAME`.
pub fn listed(output: &str) -> Vec<String> {
    output
        .lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| {
            let l = l.trim_end();
            ["object group ", "object-group "]
                .iter()
                .find_map(|k| l.split_once(k).map(|(_, n)| n.trim().to_string()))
        })
        .filter(|n| !n.is_empty() && !n.contains(' '))
        .collect()
}

/// The referenced groups the device does not list.
pub fn missing(referenced: &[String], output: &str) -> Vec<String> {
    let have = listed(output);
    referenced
        .iter()
        .filter(|r| !have.contains(r))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::acl::ace::parse_line;

    #[test]
    fn references_and_listings() {
        let intent: Vec<Line> = [
            "permit tcp object-group BRANCHES any eq 22",
            "permit object-group WEB any any",
            "permit tcp addrgroup BRANCHES any portgroup P",
            "deny ip any any",
        ]
        .iter()
        .map(|l| parse_line(l).unwrap())
        .collect();
        assert_eq!(referenced(&intent), ["BRANCHES", "WEB", "P"]);
        let ios = "Network object group NNNN\nService object group SSSS\n tcp eq www\nV6-Network object group v6-net1\n host 2040:1::2\n";
        assert_eq!(listed(ios), ["NNNN", "SSSS", "v6-net1"]);
        let nxos = "IPv4 address object-group BRANCHES\n        10 host 10.0.0.1\nport object-group P\n        10 eq 22\n";
        assert_eq!(listed(nxos), ["BRANCHES", "P"]);
        assert_eq!(missing(&referenced(&intent), nxos), ["WEB"]);
    }
}
