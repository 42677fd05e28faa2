//! Small helpers shared by the handlers: random identifiers, URL encoding,
//! form parsing, RFC 3339 formatting and HMAC-SHA256 (for the HS256 id_token).
//!
//! Pure functions only; no state and no HTTP. Kept here so that no handler
//! pulls in an extra crate for a dozen lines of code.

use base64::Engine as _;
use jiff::Timestamp;
use sha2::{Digest, Sha256};

/// `n` random bytes. Falls back to a hash of the clock and a counter if the OS
/// source fails, because an emulator must keep serving (these tokens guard
/// nothing real).
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    if getrandom::getrandom(&mut buf).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut seed = Sha256::new();
        seed.update(Timestamp::now().as_nanosecond().to_le_bytes());
        seed.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        let digest = seed.finalize();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = digest[i % digest.len()];
        }
    }
    buf
}

/// URL-safe random token text (no padding) from `n` random bytes.
pub fn random_token(n: usize) -> String {
    b64url(&random_bytes(n))
}

pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A Google-style event id: base32hex (`0-9a-v`), 26 characters.
pub fn base32hex_id() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuv";
    random_bytes(26)
        .iter()
        .map(|b| ALPHABET[(b & 31) as usize] as char)
        .collect()
}

/// Google accepts client-chosen event ids of base32hex characters, 5 to 1024 long.
pub fn is_valid_event_id(id: &str) -> bool {
    (5..=1024).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b))
}

/// A stable 21-digit account id (`sub`) derived from the email, so that a reset
/// or restart gives the same account the same `sub` (clients key on it).
pub fn sub_for_email(email: &str) -> String {
    let digest = Sha256::digest(email.to_ascii_lowercase().as_bytes());
    let mut out = String::from("1");
    for b in digest.iter().take(20) {
        out.push(char::from(b'0' + (b % 10)));
    }
    out
}

/// Percent-encodes everything except RFC 3986 unreserved characters.
pub fn pct_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space).
pub fn pct_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a query string or form body into ordered pairs (repeats kept).
pub fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (pct_decode(k), pct_decode(v)),
            None => (pct_decode(pair), String::new()),
        })
        .collect()
}

/// Builds `a=b&c=d` with encoding.
pub fn build_query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", pct_encode(k), pct_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Appends query pairs to a URL that may already carry a query.
pub fn append_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", build_query(pairs))
}

/// `2026-11-26T08:48:02.000Z`: Google writes `updated`/`created` with millis in UTC.
pub fn rfc3339_millis(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// HMAC-SHA256 (RFC 2104), for the HS256 id_token.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// The S256 PKCE transform: BASE64URL(SHA256(verifier)).
pub fn s256(verifier: &str) -> String {
    b64url(&Sha256::digest(verifier.as_bytes()))
}

/// Redacts secret-bearing query parameters for the request log.
pub fn redact_query(query: &str) -> String {
    const SECRET: &[&str] = &[
        "access_token",
        "refresh_token",
        "code",
        "code_verifier",
        "client_secret",
        "token",
        "id_token",
    ];
    parse_form(query)
        .into_iter()
        .map(|(k, v)| {
            let v = if SECRET.contains(&k.as_str()) {
                "REDACTED".to_owned()
            } else {
                v
            };
            format!("{}={}", pct_encode(&k), pct_encode(&v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Minimal HTML escaping for the consent and error pages.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn s256_matches_rfc7636_example() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn form_round_trip() {
        let q = build_query(&[("a b", "c&d=é"), ("x", "")]);
        assert_eq!(
            parse_form(&q),
            vec![("a b".into(), "c&d=é".into()), ("x".into(), String::new())]
        );
        assert_eq!(pct_decode("%zz+%41"), "%zz A");
    }

    #[test]
    fn event_ids() {
        assert!(is_valid_event_id(&base32hex_id()));
        assert!(!is_valid_event_id("abc"));
        assert!(!is_valid_event_id("ABCDEFG"));
        assert!(!is_valid_event_id("abcdw"));
    }
}
