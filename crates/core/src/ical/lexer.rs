//! Content lines (RFC 5545 §3.1): unfolding and splitting a logical line into
//! name, parameters and value.
//!
//! Lenient on purpose: real feeds use bare LF, stray whitespace, lower-case
//! names and unquoted colons in parameters. A line that cannot be split is
//! skipped rather than failing the file.

use std::borrow::Cow;

/// One logical (unfolded) content line. Borrowed from the input unless it was
/// folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentLine<'a> {
    /// Property or BEGIN/END name, as written (compare case-insensitively).
    pub name: Cow<'a, str>,
    /// Parameters in order; values keep their quotes stripped.
    pub params: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// The raw value, still escaped.
    pub value: Cow<'a, str>,
}

impl ContentLine<'_> {
    /// The value of the first parameter called `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

/// Iterates over logical lines: physical lines joined where the next one
/// starts with a space or tab (§3.1), CRLF or bare LF (or bare CR) endings.
pub struct Unfolder<'a> {
    rest: &'a str,
    cr_only: bool,
}

impl<'a> Unfolder<'a> {
    /// Starts reading `text`, skipping a leading byte-order mark.
    pub fn new(text: &'a str) -> Self {
        let rest = text.strip_prefix('\u{feff}').unwrap_or(text);
        Self {
            rest,
            cr_only: !rest.contains('\n') && rest.contains('\r'),
        }
    }

    fn physical(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        // `find(char)` on an ASCII byte is a fast memchr; a bare-CR file
        // (classic Mac) takes the slower two-byte scan.
        let eol = if self.cr_only {
            self.rest.find(['\r', '\n'])
        } else {
            self.rest.find('\n')
        };
        let (line, skip) = match eol {
            Some(i) => {
                let bytes = self.rest.as_bytes();
                let skip = if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                let line = &self.rest[..i];
                (line.strip_suffix('\r').unwrap_or(line), i + skip)
            }
            None => (self.rest, self.rest.len()),
        };
        self.rest = &self.rest[skip..];
        Some(line)
    }

    /// Whether the next non-blank physical line continues the current one.
    /// Blank lines are dropped first: some exporters put one between a
    /// property name and its folded value.
    fn next_is_continuation(&mut self) -> bool {
        while let Some(rest) = self
            .rest
            .strip_prefix("\r\n")
            .or_else(|| self.rest.strip_prefix('\n'))
        {
            self.rest = rest;
        }
        matches!(self.rest.as_bytes().first(), Some(b' ' | b'\t'))
    }
}

/// One logical line as it sits in the input: its first physical line and
/// the whole span with any continuation lines. Unfolding (which allocates)
/// is left to [`RawLine::unfold`], so that lines calsync ignores cost
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawLine<'a> {
    /// The first physical line.
    pub first: &'a str,
    /// The first line and its continuations, line breaks included.
    pub span: &'a str,
    /// Whether continuation lines follow.
    pub folded: bool,
}

impl<'a> RawLine<'a> {
    /// The property name, read from the first physical line when the name
    /// ends there (it nearly always does).
    pub fn name(&self) -> Option<&'a str> {
        let end = self.first.find([';', ':'])?;
        Some(self.first[..end].trim())
    }

    /// The logical line: continuation lines joined without their leading
    /// whitespace character (§3.1).
    pub fn unfold(&self) -> Cow<'a, str> {
        if !self.folded {
            return Cow::Borrowed(self.first);
        }
        let mut joined = String::with_capacity(self.span.len());
        for (i, piece) in self
            .span
            .split(['\r', '\n'])
            .filter(|p| !p.is_empty())
            .enumerate()
        {
            if i == 0 {
                joined.push_str(piece);
            } else {
                // Always a space or tab here: that is what made it a continuation.
                joined.push_str(piece.get(1..).unwrap_or(""));
            }
        }
        Cow::Owned(joined)
    }
}

impl<'a> Iterator for Unfolder<'a> {
    type Item = RawLine<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let before = self.rest;
            let first = self.physical()?;
            if !self.next_is_continuation() {
                if first.trim().is_empty() {
                    continue;
                }
                return Some(RawLine {
                    first,
                    span: first,
                    folded: false,
                });
            }
            while self.next_is_continuation() {
                self.physical();
            }
            let consumed = before.len() - self.rest.len();
            let span = before[..consumed].trim_end_matches(['\r', '\n']);
            let line = RawLine {
                first,
                span,
                folded: true,
            };
            // Blank only if every piece is: checked without unfolding.
            if span.split(['\r', '\n']).all(|p| p.trim().is_empty()) {
                continue;
            }
            return Some(line);
        }
    }
}

/// Splits a logical line into name, parameters and value (§3.1 grammar,
/// with DQUOTE-quoted parameter values that may hold `:` `;` `,`).
pub fn split_line(line: Cow<'_, str>) -> Option<ContentLine<'_>> {
    match line {
        Cow::Borrowed(s) => split_borrowed(s),
        Cow::Owned(s) => split_borrowed(&s).map(into_owned),
    }
}

fn into_owned(l: ContentLine<'_>) -> ContentLine<'static> {
    ContentLine {
        name: Cow::Owned(l.name.into_owned()),
        params: l
            .params
            .into_iter()
            .map(|(k, v)| (Cow::Owned(k.into_owned()), Cow::Owned(v.into_owned())))
            .collect(),
        value: Cow::Owned(l.value.into_owned()),
    }
}

fn split_borrowed(s: &str) -> Option<ContentLine<'_>> {
    let bytes = s.as_bytes();
    let name_end = bytes.iter().position(|&b| b == b';' || b == b':')?;
    let name = s[..name_end].trim();
    if name.is_empty() {
        return None;
    }
    let mut params = Vec::new();
    let mut i = name_end;
    while bytes.get(i) == Some(&b';') {
        i += 1;
        let key_start = i;
        while i < bytes.len() && !matches!(bytes[i], b'=' | b';' | b':') {
            i += 1;
        }
        let key = s[key_start..i].trim();
        let mut value = "";
        if bytes.get(i) == Some(&b'=') {
            i += 1;
            let (v, next) = param_value(s, i)?;
            value = v;
            i = next;
        }
        if !key.is_empty() {
            params.push((Cow::Borrowed(key), Cow::Borrowed(value)));
        }
    }
    if bytes.get(i) != Some(&b':') {
        return None;
    }
    Some(ContentLine {
        name: Cow::Borrowed(name),
        params,
        value: Cow::Borrowed(&s[i + 1..]),
    })
}

/// Reads a parameter value list starting at `i`; returns the text (quotes
/// removed when the whole value is one quoted string) and the index after it.
fn param_value(s: &str, mut i: usize) -> Option<(&str, usize)> {
    let bytes = s.as_bytes();
    let start = i;
    let mut in_quote = false;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => in_quote = !in_quote,
            b';' | b':' if !in_quote => break,
            _ => {}
        }
        i += 1;
    }
    if in_quote {
        return None;
    }
    let raw = s[start..i].trim();
    let unquoted = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .filter(|r| !r.contains('"'))
        .unwrap_or(raw);
    Some((unquoted, i))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unfolds_crlf_and_lf() {
        let text = "A:1\r\n\r\n 2\r\nB;X=\"a:b\";Y=c:v\nC:x\n\tyz";
        let lines: Vec<_> = Unfolder::new(text).map(|l| l.unfold()).collect();
        assert_eq!(lines, vec!["A:12", "B;X=\"a:b\";Y=c:v", "C:xyz"]);
        let b = split_line(lines[1].clone()).unwrap();
        assert_eq!(b.name, "B");
        assert_eq!(b.param("x"), Some("a:b"));
        assert_eq!(b.param("Y"), Some("c"));
        assert_eq!(b.value, "v");
    }

    #[test]
    fn reads_bare_cr_endings() {
        let lines: Vec<_> = Unfolder::new("A:1\r 2\rB:3\r")
            .map(|l| l.unfold())
            .collect();
        assert_eq!(lines, vec!["A:12", "B:3"]);
    }

    #[test]
    fn rejects_line_without_colon() {
        assert!(split_line(Cow::Borrowed("NOCOLON")).is_none());
        assert!(split_line(Cow::Borrowed(";X=1:v")).is_none());
        assert!(split_line(Cow::Borrowed("A;X=\"unterminated:v")).is_none());
    }
}
