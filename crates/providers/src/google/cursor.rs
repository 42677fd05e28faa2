//! The opaque continuation string handed out in `PageNext::Page`.
//!
//! Never touches the database. Google wants every request of a round to
//! repeat the round's parameters: later pages of an incremental round carry
//! the `syncToken` as well as the `pageToken` (spec §2.3), so the
//! continuation must remember both. It is `f.<b64 pageToken>` for a full
//! listing and `s.<b64 syncToken>.<b64 pageToken>` for an incremental one
//! (base64url has no `.`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::error::ProviderError;

/// A decoded continuation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Continuation {
    Full {
        page_token: String,
    },
    Incremental {
        sync_token: String,
        page_token: String,
    },
}

impl Continuation {
    pub fn encode(&self) -> String {
        match self {
            Self::Full { page_token } => format!("f.{}", URL_SAFE_NO_PAD.encode(page_token)),
            Self::Incremental {
                sync_token,
                page_token,
            } => format!(
                "s.{}.{}",
                URL_SAFE_NO_PAD.encode(sync_token),
                URL_SAFE_NO_PAD.encode(page_token)
            ),
        }
    }

    pub fn decode(text: &str) -> Result<Self, ProviderError> {
        let bad = || ProviderError::Decode("not a page cursor this client handed out".to_owned());
        let part = |b64: &str| -> Result<String, ProviderError> {
            let bytes = URL_SAFE_NO_PAD.decode(b64).map_err(|_| bad())?;
            String::from_utf8(bytes).map_err(|_| bad())
        };
        let mut parts = text.split('.');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("f"), Some(page), None, None) => Ok(Self::Full {
                page_token: part(page)?,
            }),
            (Some("s"), Some(sync), Some(page), None) => Ok(Self::Incremental {
                sync_token: part(sync)?,
                page_token: part(page)?,
            }),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for c in [
            Continuation::Full {
                page_token: "EjYKKzBk.Y2x/+=".into(),
            },
            Continuation::Incremental {
                sync_token: "CPDAlvWDx70CEPDAlvWDx70CGAU=".into(),
                page_token: "p2".into(),
            },
        ] {
            assert_eq!(Continuation::decode(&c.encode()).unwrap(), c);
        }
        for bad in ["", "x.abc", "f", "f.a.b", "s.abc", "f.!!", "s.a.b.c"] {
            assert!(Continuation::decode(bad).is_err(), "{bad}");
        }
    }
}
