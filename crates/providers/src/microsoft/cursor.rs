//! The opaque strings the Microsoft client hands out: page continuations
//! (`PageNext::Page`) and sync tokens (`PageNext::Done`), per
//! `shared/specs/microsoft-graph.md` §A3.
//!
//! Never touches the database. A Graph delta round is fixed to the window
//! (`startDateTime`/`endDateTime`) it started with: the `@odata.nextLink` and
//! `@odata.deltaLink` URLs encode it, and mixing a token with new dates is
//! undefined. So each string carries the whole Graph URL (which must be
//! followed as is) plus the window the round was anchored at, which the
//! client needs to decide when a sync token's window has fallen too far
//! behind the caller's and must be re-anchored by a full round:
//!
//! - page: `mp1.<b64url nextLink>.<window start>.<window end>`
//! - sync: `md1.<b64url deltaLink>.<window start>.<window end>`
//!
//! Window bounds are Unix seconds (base64url has no `.`, integers have none).
//! The `1` is a format version, so a later format can tell old strings apart.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jiff::{SignedDuration, Timestamp};

/// How far the caller's window start may move past a sync token's anchor
/// before the token is dropped for a full round over the new window. Graph
/// tokens keep their window forever, so without this a "next year" view
/// would slowly become "last year"; a week keeps re-baselines rare (spec §A3:
/// "re-baseline weekly").
pub(crate) const REANCHOR_AFTER: SignedDuration = SignedDuration::from_hours(7 * 24);

/// Which kind of Graph link a string holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkKind {
    /// `@odata.nextLink`: the next page of the round in progress.
    Next,
    /// `@odata.deltaLink`: the start of the next round.
    Delta,
}

impl LinkKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::Next => "mp1",
            Self::Delta => "md1",
        }
    }
}

/// A Graph link with the window its round was anchored at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoundLink {
    pub url: String,
    pub window_start: Timestamp,
    pub window_end: Timestamp,
}

/// Why a string could not be read back (never quotes it: it holds tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a Microsoft {0} cursor this client handed out")]
pub(crate) struct BadCursor(&'static str);

impl RoundLink {
    pub fn encode(&self, kind: LinkKind) -> String {
        format!(
            "{}.{}.{}.{}",
            kind.prefix(),
            URL_SAFE_NO_PAD.encode(&self.url),
            self.window_start.as_second(),
            self.window_end.as_second()
        )
    }

    pub fn decode(kind: LinkKind, text: &str) -> Result<Self, BadCursor> {
        let bad = BadCursor(match kind {
            LinkKind::Next => "page",
            LinkKind::Delta => "sync",
        });
        let mut parts = text.split('.');
        let (Some(prefix), Some(url), Some(start), Some(end), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad);
        };
        if prefix != kind.prefix() {
            return Err(bad);
        }
        let url = URL_SAFE_NO_PAD
            .decode(url)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .filter(|url| !url.is_empty())
            .ok_or(bad)?;
        let second = |text: &str| {
            text.parse::<i64>()
                .ok()
                .and_then(|s| Timestamp::from_second(s).ok())
                .ok_or(bad)
        };
        Ok(Self {
            url,
            window_start: second(start)?,
            window_end: second(end)?,
        })
    }

    /// Whether a sync token anchored here is too old for a caller whose
    /// window now starts at `window_start`.
    pub fn needs_reanchor(&self, window_start: Timestamp) -> bool {
        window_start.duration_since(self.window_start) > REANCHOR_AFTER
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn link() -> RoundLink {
        RoundLink {
            url: "https://graph.microsoft.com/v1.0/me/calendars/AAMk%3D/calendarView/delta?$skiptoken=b9658z.Ab-_c".into(),
            window_start: ts("2026-01-01T00:00:00Z"),
            window_end: ts("2027-01-01T00:00:00Z"),
        }
    }

    #[test]
    fn round_trips_per_kind() {
        for kind in [LinkKind::Next, LinkKind::Delta] {
            let text = link().encode(kind);
            assert_eq!(RoundLink::decode(kind, &text).unwrap(), link());
        }
        // A page cursor is not a sync token and vice versa.
        let page = link().encode(LinkKind::Next);
        assert!(page.starts_with("mp1."));
        assert!(RoundLink::decode(LinkKind::Delta, &page).is_err());
        let sync = link().encode(LinkKind::Delta);
        assert!(RoundLink::decode(LinkKind::Next, &sync).is_err());
        // Windows before 1970 survive too.
        let old = RoundLink {
            window_start: ts("1969-12-01T00:00:00Z"),
            ..link()
        };
        assert_eq!(
            RoundLink::decode(LinkKind::Next, &old.encode(LinkKind::Next)).unwrap(),
            old
        );
    }

    #[test]
    fn foreign_strings_are_refused_without_quoting_them() {
        for bad in [
            "",
            "mp1",
            "mp1.aGk.1",
            "mp1.aGk.1.2.3",
            "mp1..1.2",
            "mp1.!!.1.2",
            "mp1.aGk.x.2",
            "mp1.aGk.1.99999999999999999",
            "mp2.aGk.1.2",
            "f.aGk",
            "s.c3luYw.cGFnZQ",
        ] {
            let err = RoundLink::decode(LinkKind::Next, bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                "not a Microsoft page cursor this client handed out"
            );
        }
    }

    #[test]
    fn reanchor_after_more_than_a_week() {
        let l = link();
        assert!(!l.needs_reanchor(ts("2026-01-01T00:00:00Z")));
        assert!(
            !l.needs_reanchor(ts("2025-12-01T00:00:00Z")),
            "moving back is fine"
        );
        assert!(
            !l.needs_reanchor(ts("2026-01-08T00:00:00Z")),
            "exactly 7 days"
        );
        assert!(l.needs_reanchor(ts("2026-01-08T00:00:01Z")));
    }
}
