//! Who is asking: the client's address for throttling and the log.
//!
//! The TCP peer is the client unless it is one of `CALSYNC_TRUSTED_PROXIES`.
//! Only then are the forwarding headers read, from the right: each trusted
//! proxy appends the address it got the request from, so the rightmost hop
//! that is not a trusted proxy is the client, and whatever a client wrote
//! further left (a forged `X-Forwarded-For: 1.2.3.4`) is never reached.
//!
//! `X-Forwarded-For` is read when present (nginx, HAProxy, Caddy, Traefik and
//! most load balancers set it), else `Forwarded: for=` (RFC 7239). A proxy
//! that sets only `Forwarded` must drop a client's `X-Forwarded-For`, or the
//! client picks its own address.

use std::net::{IpAddr, SocketAddr};

use axum::http::{header, HeaderMap};
use ipnet::IpNet;

/// The client's address: `peer` itself, or when `peer` is a trusted proxy,
/// the rightmost forwarded hop outside `trusted`. IPv4-mapped IPv6 addresses
/// come back as IPv4.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let forwarded_for = headers.get_all("x-forwarded-for");
    let hops: Vec<Option<IpAddr>> = if forwarded_for.iter().next().is_some() {
        forwarded_for
            .iter()
            .flat_map(|value| match value.to_str() {
                Ok(text) => text.split(',').map(parse_hop).collect(),
                Err(_) => vec![None],
            })
            .collect()
    } else {
        headers
            .get_all(header::FORWARDED)
            .iter()
            .flat_map(|value| match value.to_str() {
                Ok(text) => forwarded_for_values(text),
                Err(_) => vec![None],
            })
            .collect()
    };
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        // A hop that is not an address (`unknown`, an obfuscated name,
        // garbage): nothing left of it can be believed, and the trusted
        // proxy to its right is the best we know.
        let Some(address) = hop else {
            return client;
        };
        client = address.to_canonical();
        if !is_trusted(client, trusted) {
            return client;
        }
    }
    client
}

fn is_trusted(address: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&address))
}

/// One `X-Forwarded-For` hop: `192.0.2.1`, `2001:db8::1`, `192.0.2.1:4711`,
/// `[2001:db8::1]:4711` or `[2001:db8::1]`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            hop.strip_prefix('[')?
                .strip_suffix(']')?
                .parse::<std::net::Ipv6Addr>()
                .ok()
                .map(IpAddr::V6)
        })
}

/// The `for=` of each element of a `Forwarded` value, in order; `None` for an
/// element without one or with a value that is not an address.
fn forwarded_for_values(text: &str) -> Vec<Option<IpAddr>> {
    split_outside_quotes(text, ',')
        .into_iter()
        .map(|element| {
            split_outside_quotes(element, ';')
                .into_iter()
                .find_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| unquote(value.trim()))
                })
                .and_then(|value| parse_hop(&value))
        })
        .collect()
}

/// Splits at `separator` where it is not inside a quoted string.
fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A token as is, a quoted string without its quotes and escapes.
fn unquote(value: &str) -> String {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.extend(if c == '\\' { chars.next() } else { Some(c) });
            }
            out
        }
        None => value.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    const PROXY: &str = "10.0.0.5";

    fn resolve(pairs: &[(&'static str, &str)]) -> IpAddr {
        client_address(ip(PROXY), &headers(pairs), &nets(&["10.0.0.0/8"]))
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let forged = headers(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=198.51.100.8"),
        ]);
        assert_eq!(
            client_address(ip("203.0.113.9"), &forged, &[]),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_address(ip("203.0.113.9"), &forged, &nets(&["10.0.0.0/8"])),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        assert_eq!(resolve(&[]), ip(PROXY), "no header: the proxy itself");
        assert_eq!(
            resolve(&[("x-forwarded-for", "198.51.100.7")]),
            ip("198.51.100.7")
        );
        // A client's forged hops stay left of the one its proxy appended.
        assert_eq!(
            resolve(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.1.1.1")]),
            ip("198.51.100.7")
        );
        assert_eq!(
            resolve(&[
                ("x-forwarded-for", "1.2.3.4"),
                ("x-forwarded-for", "198.51.100.7,10.1.1.1")
            ]),
            ip("198.51.100.7"),
            "several header lines are one list"
        );
        assert_eq!(
            resolve(&[("x-forwarded-for", "10.9.9.9, 10.1.1.1")]),
            ip("10.9.9.9"),
            "only proxies: the leftmost"
        );
        assert_eq!(
            resolve(&[("x-forwarded-for", "198.51.100.7:4711")]),
            ip("198.51.100.7")
        );
        assert_eq!(
            resolve(&[("x-forwarded-for", "[2001:db8::7]:4711")]),
            ip("2001:db8::7")
        );
        assert_eq!(
            resolve(&[("x-forwarded-for", "::ffff:198.51.100.7")]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_trusted_hop() {
        assert_eq!(
            resolve(&[("x-forwarded-for", "198.51.100.7, unknown, 10.1.1.1")]),
            ip("10.1.1.1")
        );
        assert_eq!(resolve(&[("x-forwarded-for", "")]), ip(PROXY));
        assert_eq!(resolve(&[("x-forwarded-for", "not an ip")]), ip(PROXY));
    }

    #[test]
    fn forwarded_is_read_when_there_is_no_x_forwarded_for() {
        assert_eq!(
            resolve(&[("forwarded", "for=198.51.100.7;proto=https")]),
            ip("198.51.100.7")
        );
        assert_eq!(
            resolve(&[(
                "forwarded",
                "for=1.2.3.4, For=\"[2001:db8:cafe::17]:4711\";by=10.0.0.5, for=10.1.1.1"
            )]),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(
            resolve(&[("forwarded", "for=\"1.2.3.4, 5.6.7.8\", for=198.51.100.7")]),
            ip("198.51.100.7"),
            "a comma inside quotes does not split"
        );
        assert_eq!(
            resolve(&[("forwarded", "for=198.51.100.7, proto=https")]),
            ip(PROXY),
            "an element without for= ends the walk"
        );
        assert_eq!(
            resolve(&[("forwarded", "for=_hidden")]),
            ip(PROXY),
            "obfuscated"
        );
        assert_eq!(
            resolve(&[
                ("forwarded", "for=198.51.100.8"),
                ("x-forwarded-for", "198.51.100.7")
            ]),
            ip("198.51.100.7"),
            "X-Forwarded-For wins"
        );
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_proxies() {
        let mapped = ip("::ffff:10.0.0.5");
        assert_eq!(
            client_address(
                mapped,
                &headers(&[("x-forwarded-for", "198.51.100.7")]),
                &nets(&["10.0.0.0/8"])
            ),
            ip("198.51.100.7")
        );
        assert_eq!(client_address(mapped, &HeaderMap::new(), &[]), ip(PROXY));
    }
}
