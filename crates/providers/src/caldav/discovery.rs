//! Finding an account's calendars from the URL a user typed (RFC 6764 §6,
//! RFC 5397, RFC 4791 §6.2.1), and listing them (spec B1, B2).
//!
//! 1. PROPFIND Depth 0 for `DAV:current-user-principal` on the URL as
//!    given, then on `/.well-known/caldav` of its host (RFC 6764 §5).
//!    Redirects are followed by hand, the method KEPT, at most
//!    `CaldavLimits::max_redirects` hops, each to the same site only (the
//!    password goes along). A URL that answers WebDAV but names no principal
//!    is taken as the principal itself (Synology-style servers).
//! 2. PROPFIND Depth 0 on the principal for `C:calendar-home-set`; the home
//!    may be on another host of the same site (iCloud's
//!    `pNN-caldav.icloud.com`); absent, the principal is the home.
//! 3. PROPFIND Depth 1 on the home: collections whose `resourcetype` has
//!    `C:calendar` and whose `supported-calendar-component-set` has VEVENT
//!    (absent = all components, RFC 4791 §5.2.3).
//!
//! A 401 anywhere is [`ProviderError::Unauthorized`]: wrong user name or
//! password at connect time, a revoked app password later.

use calsync_core::model::RemoteCalendar;
use reqwest::Url;
use secrecy::SecretString;

use super::{classify, href, parse_server_url, xml, Auth, CaldavAccount, CaldavClient, Depth};
use crate::error::ProviderError;

/// What a PROPFIND for the principal found at one starting point.
enum Found {
    Principal(Url),
    /// A WebDAV resource without `current-user-principal`: its final URL.
    DavWithoutPrincipal(Url),
    NotDav,
}

impl CaldavClient {
    /// Discovers the account behind `server_url` (a host such as
    /// `caldav.icloud.com`, `https://` assumed, or any URL on the server)
    /// and lists its event calendars.
    pub async fn discover(
        &self,
        server_url: &str,
        username: &str,
        password: &SecretString,
    ) -> Result<CaldavAccount, ProviderError> {
        let trusted = parse_server_url(server_url)?;
        let auth = Auth {
            trusted: &trusted,
            username,
            password,
        };
        let well_known = trusted
            .join("/.well-known/caldav")
            .map_err(|e| ProviderError::Setup(format!("well-known URL: {e}")))?;
        let mut principal = None;
        let mut context = None;
        for start in [trusted.clone(), well_known] {
            match self.find_principal(auth, start).await? {
                Found::Principal(url) => {
                    principal = Some(url);
                    break;
                }
                Found::DavWithoutPrincipal(url) => {
                    context.get_or_insert(url);
                }
                Found::NotDav => {}
            }
        }
        let principal = principal.or(context).ok_or_else(|| ProviderError::Provider {
            status: 404,
            reason: "no_caldav_server".to_owned(),
            message: format!(
                "no CalDAV server answered at {} (tried the URL and /.well-known/caldav); check the server URL",
                trusted.host_str().unwrap_or("?")
            ),
        })?;
        tracing::debug!(principal = %principal, "caldav principal found");
        let home = self.find_home(auth, &principal).await?;
        tracing::debug!(home = %home, "caldav calendar home found");
        let calendars = self.list_home(auth, &home).await?;
        Ok(CaldavAccount {
            principal_url: principal.to_string(),
            home_url: home.to_string(),
            calendars,
        })
    }

    /// PROPFIND Depth 0 following redirects by hand; returns the final URL
    /// and answer. Every hop is checked: same site (the password goes
    /// along), and the address guard when private addresses are refused.
    async fn propfind_following(
        &self,
        auth: Auth<'_>,
        start: Url,
        body: String,
    ) -> Result<(Url, crate::http::RawResponse), ProviderError> {
        let mut url = start;
        for _ in 0..=self.limits.max_redirects {
            self.check_address(&url)?;
            let (response, location) = self
                .dav_once(auth, "PROPFIND", &url, Depth::Zero, body.clone())
                .await?;
            let redirect = matches!(response.status, 301 | 302 | 303 | 307 | 308);
            match (redirect, location) {
                (true, Some(location)) => {
                    let next = url
                        .join(location.trim())
                        .map_err(|_| ProviderError::Provider {
                            status: response.status,
                            reason: "bad_redirect".to_owned(),
                            message: format!(
                                "unreadable redirect from {}",
                                url.host_str().unwrap_or("?")
                            ),
                        })?;
                    if !href::same_site(auth.trusted, &next) {
                        return Err(ProviderError::Provider {
                            status: response.status,
                            reason: "cross_site_redirect".to_owned(),
                            message: format!(
                                "{} redirects to {}, another site; enter that server's URL instead",
                                url.host_str().unwrap_or("?"),
                                next.host_str().unwrap_or("?")
                            ),
                        });
                    }
                    tracing::debug!(from = %url, to = %next, "caldav discovery redirect");
                    url = next;
                }
                _ => return Ok((url, response)),
            }
        }
        Err(ProviderError::Provider {
            status: 310,
            reason: "too_many_redirects".to_owned(),
            message: format!(
                "more than {} redirects from {}",
                self.limits.max_redirects,
                auth.trusted.host_str().unwrap_or("?")
            ),
        })
    }

    async fn find_principal(&self, auth: Auth<'_>, start: Url) -> Result<Found, ProviderError> {
        let (url, response) = self
            .propfind_following(auth, start, xml::propfind_principal())
            .await?;
        match response.status {
            207 => {}
            401 => return Err(ProviderError::Unauthorized),
            429 => return Err(classify(&response, "PROPFIND", &url)),
            _ => return Ok(Found::NotDav),
        }
        let Ok(multistatus) = xml::parse_multistatus(&response.body) else {
            return Ok(Found::NotDav);
        };
        let principal = multistatus
            .responses
            .iter()
            .find_map(|r| r.props.current_user_principal.as_deref())
            .and_then(|h| href::resolve(&url, h));
        Ok(match principal {
            Some(principal) => Found::Principal(principal),
            None => Found::DavWithoutPrincipal(url),
        })
    }

    async fn find_home(&self, auth: Auth<'_>, principal: &Url) -> Result<Url, ProviderError> {
        let (url, response) = self
            .propfind_following(auth, principal.clone(), xml::propfind_home())
            .await?;
        if response.status != 207 {
            return Err(classify(&response, "PROPFIND calendar-home-set", &url));
        }
        let multistatus = xml::parse_multistatus(&response.body)
            .map_err(|e| ProviderError::Decode(format!("calendar-home-set: {e}")))?;
        let home = multistatus
            .responses
            .iter()
            .flat_map(|r| r.props.calendar_home_set.iter())
            .find_map(|h| href::resolve(&url, h))
            .unwrap_or(url);
        let home = href::as_collection(home);
        if !href::same_site(auth.trusted, &home) {
            return Err(ProviderError::Provider {
                status: 207,
                reason: "untrusted_calendar_home".to_owned(),
                message: format!(
                    "the calendar home is on {}, not the same site as {}; refusing to send the password there",
                    home.host_str().unwrap_or("?"),
                    auth.trusted.host_str().unwrap_or("?")
                ),
            });
        }
        Ok(home)
    }

    /// PROPFIND Depth 1 on the home: its event calendars.
    pub(super) async fn list_home(
        &self,
        auth: Auth<'_>,
        home: &Url,
    ) -> Result<Vec<RemoteCalendar>, ProviderError> {
        self.check_address(home)?;
        let response = self
            .dav(
                auth,
                "PROPFIND",
                home,
                Depth::One,
                xml::propfind_calendars(),
            )
            .await?;
        if response.status != 207 {
            return Err(classify(&response, "PROPFIND calendars", home));
        }
        let multistatus = xml::parse_multistatus(&response.body)
            .map_err(|e| ProviderError::Decode(format!("calendar list: {e}")))?;
        let home_key = href::key(home);
        let mut calendars: Vec<RemoteCalendar> = Vec::new();
        for response in multistatus.responses {
            let Some(url) = href::resolve(home, &response.href) else {
                continue;
            };
            let props = &response.props;
            if href::key(&url) == home_key || !props.is_calendar {
                continue;
            }
            let has_events = props
                .components
                .as_ref()
                .is_none_or(|c| c.iter().any(|name| name.eq_ignore_ascii_case("VEVENT")));
            if !has_events {
                continue;
            }
            let url = href::as_collection(url);
            let external_id = url.to_string();
            if calendars.iter().any(|c| c.external_id == external_id) {
                continue;
            }
            calendars.push(RemoteCalendar {
                name: props
                    .displayname
                    .clone()
                    .unwrap_or_else(|| last_segment(&url)),
                color: props.color.as_deref().and_then(calendar_color),
                timezone: props.calendar_timezone.as_deref().and_then(tzid),
                is_primary: false,
                access_role: props.privileges.as_deref().and_then(access_role),
                external_id,
            });
        }
        Ok(calendars)
    }
}

/// `#RRGGBB` or `#RRGGBBAA` (Apple) -> `#rrggbb`; anything else: no colour.
pub(super) fn calendar_color(value: &str) -> Option<String> {
    let hex = value.trim().strip_prefix('#')?;
    if !(hex.len() == 6 || hex.len() == 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(format!("#{}", hex[..6].to_ascii_lowercase()))
}

/// The TZID of a `C:calendar-timezone` VTIMEZONE.
fn tzid(vtimezone: &str) -> Option<String> {
    vtimezone.lines().find_map(|line| {
        let value = line.trim_end().strip_prefix("TZID")?;
        let value = value.split_once(':')?.1.trim();
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// `DAV:current-user-privilege-set` -> the access roles the other providers
/// use: `owner` (all / write-acl), `writer` (write / write-content / bind),
/// `reader` (anything else, i.e. read only).
pub(super) fn access_role(privileges: &[String]) -> Option<String> {
    let has = |name: &str| privileges.iter().any(|p| p == name);
    let role = if has("all") || has("write-acl") {
        "owner"
    } else if has("write") || has("write-content") || has("bind") {
        "writer"
    } else if has("read") {
        "reader"
    } else {
        return None;
    };
    Some(role.to_owned())
}

/// A calendar without a display name is named after its path segment.
fn last_segment(url: &Url) -> String {
    let key = href::key(url);
    let segment = key.rsplit('/').next().unwrap_or_default();
    let decoded = percent_decode(segment);
    if decoded.is_empty() {
        "Calendar".to_owned()
    } else {
        decoded
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn colors_lose_their_alpha() {
        assert_eq!(calendar_color("#FF2968FF").as_deref(), Some("#ff2968"));
        assert_eq!(calendar_color(" #a1b2c3 ").as_deref(), Some("#a1b2c3"));
        assert_eq!(calendar_color("#abc"), None);
        assert_eq!(calendar_color("red"), None);
        assert_eq!(calendar_color("#GGGGGG"), None);
    }

    #[test]
    fn roles_from_privileges() {
        let names = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(access_role(&names(&["all"])).as_deref(), Some("owner"));
        assert_eq!(
            access_role(&names(&["read", "write"])).as_deref(),
            Some("writer")
        );
        assert_eq!(
            access_role(&names(&["read", "read-current-user-privilege-set"])).as_deref(),
            Some("reader")
        );
        assert_eq!(access_role(&[]), None);
    }

    #[test]
    fn names_and_zones() {
        let url = Url::parse("https://x/u/My%20Cal/").unwrap();
        assert_eq!(last_segment(&url), "My Cal");
        assert_eq!(
            tzid("BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nEND:VTIMEZONE\r\n")
                .as_deref(),
            Some("Europe/Berlin")
        );
    }
}
