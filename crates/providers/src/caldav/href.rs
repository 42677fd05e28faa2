//! Hrefs and hosts: one canonical form per resource, and which hosts may
//! receive the account's password.
//!
//! Servers send the same href in different shapes: absolute URL or path
//! (RFC 4918 §8.3 allows both), `%40` or `@`, lower- or upper-case escapes,
//! with or without a collection's trailing slash (spec B2, C2 #1). calsync
//! resolves every href against the URL it asked, then rewrites the path in
//! one canonical percent-encoding: every escape is decoded (except `%2F`,
//! which is a different path than `/`) and every byte outside RFC 3986
//! `pchar` + `/` is encoded again, with upper-case hex.

use reqwest::Url;

/// Bytes that stay as they are in a canonical path: RFC 3986 unreserved,
/// sub-delims, `:`, `@` and `/`.
fn keeps(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&byte)
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

fn push_encoded(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    if keeps(byte) {
        out.push(char::from(byte));
    } else {
        out.push('%');
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 15)]));
    }
}

/// The canonical percent-encoding of a path.
pub fn canonical_path(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                let decoded = hi * 16 + lo;
                if decoded == b'/' {
                    out.push_str("%2F");
                } else {
                    push_encoded(&mut out, decoded);
                }
                i += 3;
                continue;
            }
        }
        push_encoded(&mut out, byte);
        i += 1;
    }
    out
}

/// `href` resolved against `base`, with its path in canonical form and no
/// query or fragment. `None` for an href that is not a URL.
pub fn resolve(base: &Url, href: &str) -> Option<Url> {
    let mut url = base.join(href.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let path = canonical_path(url.path());
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    Some(url)
}

/// The key under which a resource or collection is compared: its canonical
/// path without a trailing slash (a collection is named both ways).
pub fn key(url: &Url) -> String {
    let path = url.path();
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// A collection URL always ends in `/` (spec B1: some servers redirect or
/// refuse otherwise).
pub fn as_collection(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// Whether the password given for `trusted` (the URL the user typed) may be
/// sent to `target`.
///
/// The rule, simple on purpose: the scheme must not drop from https to http;
/// the hosts must be equal, or both be DNS names whose last two labels are
/// equal (`caldav.icloud.com` and `p42-caldav.icloud.com` are one site).
/// IP addresses must match exactly. This is looser than the Public Suffix
/// List for names under a two-label public suffix (`a.co.uk` and `b.co.uk`
/// pass), which is accepted: the user chose the first host and a redirect
/// or home-set that points elsewhere on such a suffix is still that
/// server's answer.
pub fn same_site(trusted: &Url, target: &Url) -> bool {
    if trusted.scheme() == "https" && target.scheme() != "https" {
        return false;
    }
    match (trusted.host_str(), target.host_str()) {
        (Some(a), Some(b)) => match (host_kind(a), host_kind(b)) {
            (HostKind::Name(a), HostKind::Name(b)) => a == b || last_two(&a) == last_two(&b),
            (HostKind::Ip(a), HostKind::Ip(b)) => a == b,
            _ => false,
        },
        _ => false,
    }
}

enum HostKind {
    Name(String),
    Ip(String),
}

fn host_kind(host: &str) -> HostKind {
    let lower = host.trim_end_matches('.').to_ascii_lowercase();
    if host.starts_with('[') || lower.parse::<std::net::Ipv4Addr>().is_ok() {
        HostKind::Ip(lower)
    } else {
        HostKind::Name(lower)
    }
}

/// The last two labels; a single-label name (`localhost`) is itself.
fn last_two(name: &str) -> String {
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() <= 2 {
        return name.to_owned();
    }
    labels[labels.len() - 2..].join(".")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_canonical() {
        assert_eq!(canonical_path("/a/b%40c.ics"), "/a/b@c.ics");
        assert_eq!(canonical_path("/a/b c.ics"), "/a/b%20c.ics");
        assert_eq!(canonical_path("/a/%e2%82%ac"), "/a/%E2%82%AC");
        assert_eq!(canonical_path("/a/€"), "/a/%E2%82%AC");
        assert_eq!(canonical_path("/a%2Fb/"), "/a%2Fb/");
        assert_eq!(canonical_path("/a%2fb/"), "/a%2Fb/");
        assert_eq!(canonical_path("/100%"), "/100%25");
        assert_eq!(canonical_path("/x%zz%4"), "/x%25zz%254");
        assert_eq!(canonical_path("/a+b"), "/a+b");
    }

    #[test]
    fn hrefs_resolve_to_one_form() {
        let base = Url::parse("https://dav.example.com/u/cal/").unwrap();
        let a = resolve(&base, "/u/cal/ev%40x.ics").unwrap();
        let b = resolve(&base, "https://dav.example.com/u/cal/ev@x.ics").unwrap();
        let c = resolve(&base, "ev%40x.ics").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(key(&a), "/u/cal/ev@x.ics");
        let collection = resolve(&base, "/u/cal").unwrap();
        assert_eq!(key(&collection), key(&base));
        assert_eq!(as_collection(collection).as_str(), base.as_str());
        assert!(resolve(&base, "mailto:x@y").is_none());
    }

    #[test]
    fn credentials_stay_on_the_site() {
        let icloud = Url::parse("https://caldav.icloud.com/").unwrap();
        let part = Url::parse("https://p42-caldav.icloud.com:443/1/calendars/").unwrap();
        assert!(same_site(&icloud, &part));
        assert!(!same_site(
            &icloud,
            &Url::parse("https://evil.com/").unwrap()
        ));
        assert!(!same_site(
            &icloud,
            &Url::parse("https://icloud.com.evil.com/").unwrap()
        ));
        assert!(!same_site(
            &icloud,
            &Url::parse("http://p1-caldav.icloud.com/").unwrap()
        ));
        let local = Url::parse("http://127.0.0.1:5232/").unwrap();
        assert!(same_site(
            &local,
            &Url::parse("http://127.0.0.1:5232/alice/").unwrap()
        ));
        assert!(!same_site(
            &local,
            &Url::parse("http://127.0.0.2/").unwrap()
        ));
        assert!(same_site(
            &Url::parse("http://localhost:1/").unwrap(),
            &Url::parse("http://LOCALHOST:2/").unwrap()
        ));
    }
}
