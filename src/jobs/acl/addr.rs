//! Addresses in ACL entries, per family, in canonical form:
//! - IPv4: `any` (also `0.0.0.0/0`, `A 255.255.255.255`); `host A`,
//!   `A 0.0.0.0`, `A/32` are `A/32`; a contiguous wildcard or a prefix is
//!   `A/LEN` with the host bits cleared; a non-contiguous wildcard stays
//!   `A W`; an object-group (IOS `object-group N`, NX-OS `addrgroup N`)
//!   is `group N`.
//! - IPv4 standard entries: the same, and also a bare `A` (a host) and the
//!   listing form `A, wildcard bits W`.
//! - IPv6: `any`; `host A` and `A/128` are `A/128`; `A/LEN` with the host
//!   bits cleared, written in the compressed lower-case form (RFC 5952),
//!   as `show` prints it in either case; `addrgroup`/`object-group` as for IPv4.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::ace::ParseError;

/// The word that names a group, or the group reference.
fn group(tokens: &[&str], t: &str, i: &mut usize) -> Result<Option<String>, ParseError> {
    if !matches!(t, "object-group" | "addrgroup") {
        return Ok(None);
    }
    let name = tokens
        .get(*i)
        .ok_or_else(|| ParseError::at(t, format!("`{t}` needs a group name")))?;
    *i += 1;
    Ok(Some(format!("group {name}")))
}

/// Takes the address's first word: `Ok(canonical)` for `any` or a
/// group, else `Err(word)` for the caller to read on.
fn any_or_group<'a>(
    tokens: &[&'a str],
    i: &mut usize,
) -> Result<Result<String, &'a str>, ParseError> {
    let t = *tokens
        .get(*i)
        .ok_or_else(|| ParseError::new("address missing"))?;
    *i += 1;
    if t == "any" {
        return Ok(Ok("any".into()));
    }
    Ok(group(tokens, t, i)?.ok_or(t))
}

fn v4(t: &str) -> Result<Ipv4Addr, ParseError> {
    t.parse()
        .map_err(|_| ParseError::at(t, format!("\"{t}\" is not an IPv4 address")))
}

fn canonical_v4(ip: Ipv4Addr, wildcard: Ipv4Addr) -> String {
    let w = u32::from(wildcard);
    let base = Ipv4Addr::from(u32::from(ip) & !w);
    let inv = !w;
    if w == u32::MAX {
        // `0.0.0.0 255.255.255.255` and `0.0.0.0/0`: IOS shows `any`.
        "any".into()
    } else if inv.leading_ones() == inv.count_ones() {
        format!("{base}/{}", inv.count_ones())
    } else {
        format!("{base} {wildcard}")
    }
}

fn prefix_v4(t: &str, a: &str, len: &str) -> Result<(Ipv4Addr, Ipv4Addr), ParseError> {
    let ip = v4(a).map_err(|_| ParseError::at(t, format!("\"{t}\" is not an address")))?;
    let len: u32 = len
        .parse()
        .ok()
        .filter(|l| *l <= 32)
        .ok_or_else(|| ParseError::at(t, format!("\"{t}\" has a bad prefix length")))?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Ok((ip, Ipv4Addr::from(!mask)))
}

/// An IPv4 address of an extended entry.
pub fn v4_extended(tokens: &[&str], i: &mut usize) -> Result<String, ParseError> {
    let t = match any_or_group(tokens, i)? {
        Ok(done) => return Ok(done),
        Err(t) => t,
    };
    let (ip, wildcard) = if t == "host" {
        let a = tokens
            .get(*i)
            .ok_or_else(|| ParseError::at(t, "`host` needs an address"))?;
        *i += 1;
        (v4(a)?, Ipv4Addr::UNSPECIFIED)
    } else if let Some((a, len)) = t.split_once('/') {
        prefix_v4(t, a, len)?
    } else {
        let ip = t.parse::<Ipv4Addr>().map_err(|_| {
            if t.contains(':') {
                ParseError::at(t, format!("\"{t}\" is an IPv6 address: this is an IPv4 ACL (family = \"ipv6\" for IPv6)"))
            } else {
                ParseError::at(t, format!("\"{t}\" is not an address"))
            }
        })?;
        let w = tokens
            .get(*i)
            .ok_or_else(|| ParseError::at(t, format!("\"{t}\" needs a wildcard mask")))?;
        let w = w.parse::<Ipv4Addr>().map_err(|_| {
            ParseError::at(w, format!("\"{t}\" needs a wildcard mask, not \"{w}\""))
        })?;
        *i += 1;
        (ip, w)
    };
    Ok(canonical_v4(ip, wildcard))
}

/// The source address of a standard entry.
pub fn v4_standard(tokens: &[&str], i: &mut usize) -> Result<String, ParseError> {
    let t = *tokens
        .get(*i)
        .ok_or_else(|| ParseError::new("address missing"))?;
    *i += 1;
    match t {
        "any" => return Ok("any".into()),
        "host" => {
            let a = tokens
                .get(*i)
                .ok_or_else(|| ParseError::at(t, "`host` needs an address"))?;
            *i += 1;
            return Ok(canonical_v4(v4(a)?, Ipv4Addr::UNSPECIFIED));
        }
        _ => {}
    }
    if let Some((a, len)) = t.split_once('/') {
        let (ip, w) = prefix_v4(t, a, len)?;
        return Ok(canonical_v4(ip, w));
    }
    // `A, wildcard bits W` (show access-lists) or `A W` or `A` alone.
    let (bare, listing) = match t.strip_suffix(',') {
        Some(b) => (b, true),
        None => (t, false),
    };
    let ip = bare.parse::<Ipv4Addr>().map_err(|_| {
        ParseError::at(
            t,
            format!("\"{t}\" is not an address: a standard entry is `permit|deny ADDRESS [log]` (for protocols and ports, family = \"extended\")"),
        )
    })?;
    if listing {
        if tokens.get(*i..*i + 2) != Some(&["wildcard", "bits"][..]) {
            return Err(ParseError::at(t, "expected `, wildcard bits W`"));
        }
        *i += 2;
    }
    let wildcard = match tokens.get(*i).map(|w| w.parse::<Ipv4Addr>()) {
        Some(Ok(w)) => {
            *i += 1;
            w
        }
        Some(Err(_)) if listing => {
            return Err(ParseError::at(t, "`wildcard bits` needs a mask"));
        }
        _ => Ipv4Addr::UNSPECIFIED,
    };
    Ok(canonical_v4(ip, wildcard))
}

/// An address of an IPv6 entry.
pub fn v6(tokens: &[&str], i: &mut usize) -> Result<String, ParseError> {
    let t = match any_or_group(tokens, i)? {
        Ok(done) => return Ok(done),
        Err(t) => t,
    };
    let not_v6 = |t: &str| {
        if t.parse::<Ipv4Addr>().is_ok()
            || t.split('/')
                .next()
                .is_some_and(|a| a.parse::<Ipv4Addr>().is_ok())
        {
            ParseError::at(t, format!("\"{t}\" is an IPv4 address in an IPv6 ACL"))
        } else {
            ParseError::at(
                t,
                format!("\"{t}\" is not an IPv6 address (write `any`, `host A` or `A/LEN`)"),
            )
        }
    };
    let (ip, len) = if t == "host" {
        let a = tokens
            .get(*i)
            .ok_or_else(|| ParseError::at(t, "`host` needs an address"))?;
        *i += 1;
        (a.parse::<Ipv6Addr>().map_err(|_| not_v6(a))?, 128)
    } else if let (Ok(ip), Some(Ok(w))) = (
        t.parse::<Ipv6Addr>(),
        tokens.get(*i).map(|w| w.parse::<Ipv6Addr>()),
    ) {
        // IOS-XE: an address and a wildcard mask.
        *i += 1;
        let w = u128::from(w);
        let inv = !w;
        if inv.leading_ones() != inv.count_ones() {
            let base = Ipv6Addr::from(u128::from(ip) & inv);
            return Ok(format!("{base} {}", Ipv6Addr::from(w)));
        }
        (ip, inv.count_ones())
    } else {
        let (a, len) = t.split_once('/').ok_or_else(|| not_v6(t))?;
        let ip = a.parse::<Ipv6Addr>().map_err(|_| not_v6(t))?;
        let len: u32 = len
            .parse()
            .ok()
            .filter(|l| *l <= 128)
            .ok_or_else(|| ParseError::at(t, format!("\"{t}\" has a bad prefix length")))?;
        (ip, len)
    };
    if len == 0 {
        return Ok("any".into());
    }
    let mask = u128::MAX << (128 - len);
    let base = Ipv6Addr::from(u128::from(ip) & mask);
    Ok(format!("{base}/{len}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(f: fn(&[&str], &mut usize) -> Result<String, ParseError>, s: &str) -> String {
        let t: Vec<&str> = s.split_whitespace().collect();
        let mut i = 0;
        let a = f(&t, &mut i).unwrap();
        assert_eq!(i, t.len(), "{s}");
        a
    }

    #[test]
    fn forms_compare_equal() {
        assert_eq!(
            one(v4_standard, "10.0.0.1"),
            one(v4_standard, "host 10.0.0.1")
        );
        assert_eq!(
            one(v4_standard, "10.0.0.0, wildcard bits 0.0.0.255"),
            one(v4_standard, "10.0.0.0 0.0.0.255")
        );
        assert_eq!(one(v6, "host 2001:DB8::1"), one(v6, "2001:db8::1/128"));
        assert_eq!(one(v6, "2001:DB8:0:0:1::/32"), "2001:db8::/32");
        assert_eq!(one(v6, "::/0"), "any");
        let t = ["10.0.0.0/8"];
        let e = v6(&t, &mut 0).unwrap_err();
        assert_eq!(e.token.as_deref(), Some("10.0.0.0/8"));
        assert!(e.message.contains("IPv4"));
    }
}
