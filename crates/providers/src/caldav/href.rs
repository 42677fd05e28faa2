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
/// The rule: the scheme must not drop from https to http, and the hosts must
/// be one site:
///
/// - DNS names: equal, or under the same registrable domain by the Public
///   Suffix List (the `psl` crate, which compiles the list in), private
///   section included. So `caldav.icloud.com` and `p42-caldav.icloud.com`
///   are one site (`icloud.com`), while `a.github.io` and `b.github.io` are
///   two (`github.io` is a public suffix, its subdomains belong to different
///   people), and so are `a.co.uk` and `b.co.uk`. A name that is itself a
///   public suffix, or has no registrable domain (`localhost`, a bare
///   `nas`), is only its own site.
/// - IP addresses: only the same address (IPv4 and IPv6 literals are never
///   compared by any suffix).
///
/// Ports do not matter: a server may move a client from one port to another
/// on the same host.
pub fn same_site(trusted: &Url, target: &Url) -> bool {
    if trusted.scheme() == "https" && target.scheme() != "https" {
        return false;
    }
    match (
        trusted.host_str().map(host_kind),
        target.host_str().map(host_kind),
    ) {
        (Some(HostKind::Name(a)), Some(HostKind::Name(b))) => same_registrable_domain(&a, &b),
        (Some(HostKind::Ip(a)), Some(HostKind::Ip(b))) => a == b,
        _ => false,
    }
}

enum HostKind {
    Name(String),
    /// An IPv4 literal, or an IPv6 one in brackets (as a parsed URL writes
    /// both: canonical, so equal addresses are equal text).
    Ip(String),
}

fn host_kind(host: &str) -> HostKind {
    let lower = host.trim_end_matches('.').to_ascii_lowercase();
    if lower.starts_with('[') || lower.parse::<std::net::Ipv4Addr>().is_ok() {
        HostKind::Ip(lower)
    } else {
        HostKind::Name(lower)
    }
}

/// Whether two DNS names (as a parsed URL holds them: IDNA-encoded, lower
/// case) are one site: equal, or of the same registrable domain.
pub fn same_registrable_domain(a: &str, b: &str) -> bool {
    let a = a.trim_end_matches('.').to_ascii_lowercase();
    let b = b.trim_end_matches('.').to_ascii_lowercase();
    if a.is_empty() || b.is_empty() {
        return false;
    }
    if a == b {
        return true;
    }
    match (registrable_domain(&a), registrable_domain(&b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// The registrable domain ("eTLD+1") of a lower-case DNS name by the Public
/// Suffix List; `None` for a name that is a public suffix itself or has a
/// single label.
fn registrable_domain(name: &str) -> Option<&str> {
    if !name.contains('.') {
        return None;
    }
    psl::domain_str(name)
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

    fn site(a: &str, b: &str) -> bool {
        same_site(&Url::parse(a).unwrap(), &Url::parse(b).unwrap())
    }

    #[test]
    fn sites_follow_the_public_suffix_list() {
        // Subdomains of a public suffix (private section) belong to different people.
        assert!(!site("https://a.github.io/", "https://b.github.io/"));
        assert!(site("https://a.github.io/", "https://a.github.io:8443/x/"));
        assert!(!site("https://github.io/", "https://a.github.io/"));
        // One registrable domain, many hosts.
        assert!(site(
            "https://caldav.icloud.com/",
            "https://p12-caldav.icloud.com/123/calendars/"
        ));
        assert!(site(
            "https://icloud.com/",
            "https://p12-caldav.icloud.com/"
        ));
        assert!(site(
            "https://CalDAV.iCloud.com./",
            "https://p12-caldav.icloud.com/"
        ));
        // Two-label public suffixes.
        assert!(site("https://example.co.uk/", "https://dav.example.co.uk/"));
        assert!(site("https://a.example.co.uk/", "https://b.example.co.uk/"));
        assert!(!site("https://a.co.uk/", "https://b.co.uk/"));
        assert!(!site("https://example.co.uk/", "https://example2.co.uk/"));
        assert!(!site("https://co.uk/", "https://example.co.uk/"));
        assert!(!site("https://example.co.uk/", "https://example.uk/"));
        // Look-alikes.
        assert!(!site(
            "https://caldav.icloud.com/",
            "https://icloud.com.evil.example/"
        ));
        assert!(!site("https://icloud.com/", "https://xicloud.com/"));
        // IDNs compare in their IDNA form.
        assert!(site("https://bücher.de/", "https://dav.xn--bcher-kva.de/"));
        // Single labels are only themselves.
        assert!(!site("http://nas/", "http://nas2/"));
        assert!(site("http://nas:5232/", "http://NAS:80/"));
        // Names that are unknown to the list take the default rule ("*").
        assert!(site("http://dav.home.internal/", "http://x.home.internal/"));
    }

    #[test]
    fn ip_literals_are_only_themselves() {
        assert!(site("http://192.0.2.1/", "http://192.0.2.1:8080/a/"));
        assert!(!site("http://192.0.2.1/", "http://192.0.2.2/"));
        assert!(site("http://[2001:db8::1]/", "http://[2001:DB8:0::1]:81/"));
        assert!(!site("http://[2001:db8::1]/", "http://[2001:db8::2]/"));
        // An address and a name never match, even when the name resolves to it.
        assert!(!site("http://127.0.0.1/", "http://localhost/"));
        assert!(!site("http://localhost/", "http://127.0.0.1/"));
        // Addresses are not names: no "last labels" of a dotted quad.
        assert!(!site("http://10.0.0.1/", "http://20.0.0.1/"));
        assert!(!site("http://[::ffff:10.0.0.1]/", "http://10.0.0.1/"));
    }
}
