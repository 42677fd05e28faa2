//! HTML escaping and the small pieces of markup every page repeats.

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

/// A round colour swatch. SVG's `fill` is a presentation attribute, not a
/// style, so the strict CSP (no inline styles) still lets a calendar's own
/// colour through. `color` must be a normalised `#rrggbb`.
pub fn swatch(color: &str) -> String {
    format!(
        "<svg class=\"swatch\" viewBox=\"0 0 10 10\" aria-hidden=\"true\" focusable=\"false\">\
         <circle cx=\"5\" cy=\"5\" r=\"5\" fill=\"{}\"/></svg>",
        escape(safe_color(color))
    )
}

/// A vertical colour bar at the side of an event.
pub fn bar(color: &str) -> String {
    format!(
        "<svg class=\"bar\" viewBox=\"0 0 4 10\" preserveAspectRatio=\"none\" aria-hidden=\"true\" \
         focusable=\"false\"><rect width=\"4\" height=\"10\" rx=\"2\" fill=\"{}\"/></svg>",
        escape(safe_color(color))
    )
}

/// The colour if it is `#rrggbb`, else a neutral grey: stored colours come
/// from providers and must not become anything but a colour.
pub fn safe_color(color: &str) -> &str {
    let hex = color.strip_prefix('#').unwrap_or("");
    if hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        color
    } else {
        "#8c959f"
    }
}

/// A link target from a provider, only when it is a plain web address
/// (never `javascript:` or `data:`).
pub fn web_link(url: &str) -> Option<&str> {
    let lower = url
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    (lower.starts_with("https://") || lower.starts_with("http://")).then_some(url)
}

/// The hidden field that carries the session's CSRF token in a form.
pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf_token\" value=\"{}\">",
        escape(token)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn only_colours_and_web_links_pass() {
        assert_eq!(safe_color("#7BD148"), "#7BD148");
        assert_eq!(safe_color("red\" onload=\"x"), "#8c959f");
        assert_eq!(
            web_link("https://calendar.google.com/e?x=1"),
            Some("https://calendar.google.com/e?x=1")
        );
        assert_eq!(web_link("javascript:alert(1)"), None);
        assert_eq!(web_link("HTTP://x"), Some("HTTP://x"));
    }
}
