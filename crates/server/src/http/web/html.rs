//! The page frame and HTML escaping shared by every page.

use crate::http::auth::SessionUser;

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
:root{color-scheme:light dark;--fg:#1f2328;--bg:#fff;--muted:#57606a;--accent:#0b57d0}\
@media(prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--muted:#9198a1;--accent:#7cacf8}}\
body{font:16px/1.5 system-ui,sans-serif;color:var(--fg);background:var(--bg);margin:0}\
nav{display:flex;gap:1rem;align-items:center;padding:.75rem 1rem;border-bottom:1px solid var(--muted)}\
nav form{margin-left:auto}main{max-width:48rem;margin:0 auto;padding:1rem}.narrow{max-width:22rem}\
a{color:var(--accent)}label{display:block;margin-top:.75rem}input{width:100%;padding:.5rem;box-sizing:border-box}\
button,.button{margin-top:1rem;padding:.5rem 1rem}.error{color:#d1242f}.hint,.empty{color:var(--muted)}\
.swatch{display:inline-block;width:.75rem;height:.75rem;border-radius:50%;margin-right:.5rem}";

/// A whole page: head, navigation (when logged in) and `body`.
pub fn page(title: &str, user: Option<&SessionUser>, body: &str) -> String {
    let nav = user.map_or(String::new(), |u| {
        format!(
            "<nav><a href=\"/\">Dashboard</a><a href=\"/settings\">Settings</a>\
             <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\
             <button type=\"submit\">Log out</button></form></nav>",
            escape(&u.csrf_token)
        )
    });
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · calsync</title><style>{STYLE}</style></head><body>{nav}{body}</body></html>",
        escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
