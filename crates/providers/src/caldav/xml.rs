//! WebDAV/CalDAV XML: the request bodies calsync sends and a
//! namespace-aware reader of the `DAV:multistatus` answers (RFC 4918 §14.16,
//! RFC 4791 §9, RFC 6578 §6).
//!
//! Servers choose their own prefixes (`D:`, `d:`, none, `ns0:`), so elements
//! are matched on their namespace URI and local name, never on the prefix.
//! Answers are read into a small tree first: their size is already bounded
//! by `HttpConfig::max_body_bytes`, and nesting is bounded here.
//!
//! Everything variable in a request body (hrefs, sync tokens) is escaped.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// `DAV:` (RFC 4918).
pub const NS_DAV: &str = "DAV:";
/// CalDAV (RFC 4791 §9).
pub const NS_CALDAV: &str = "urn:ietf:params:xml:ns:caldav";
/// Apple's iCal properties (`calendar-color`, `calendar-order`).
pub const NS_APPLE: &str = "http://apple.com/ns/ical/";
/// CalendarServer extensions (`getctag`).
pub const NS_CS: &str = "http://calendarserver.org/ns/";

/// Elements nest no deeper than this in any real answer.
const MAX_DEPTH: usize = 64;

/// The namespaces calsync reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ns {
    Dav,
    CalDav,
    Apple,
    CalServer,
    Other,
}

impl Ns {
    fn from_uri(uri: &[u8]) -> Self {
        match uri {
            b"DAV:" => Self::Dav,
            b"urn:ietf:params:xml:ns:caldav" => Self::CalDav,
            b"http://apple.com/ns/ical/" => Self::Apple,
            b"http://calendarserver.org/ns/" => Self::CalServer,
            _ => Self::Other,
        }
    }
}

/// One element of an answer: its namespace, local name, text (character
/// data and CDATA, entities resolved) and child elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub ns: Ns,
    pub name: String,
    /// The unprefixed `name` attribute (`<C:comp name="VEVENT"/>`).
    pub name_attr: Option<String>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    fn open(ns: Ns, start: &quick_xml::events::BytesStart<'_>) -> Self {
        let name_attr = start
            .try_get_attribute("name")
            .ok()
            .flatten()
            .and_then(|a| {
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .ok()
                    .map(|v| v.trim().to_owned())
            });
        Self {
            ns,
            name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
            name_attr,
            text: String::new(),
            children: Vec::new(),
        }
    }

    pub fn is(&self, ns: Ns, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// The first child with this name.
    pub fn child(&self, ns: Ns, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// Every child with this name.
    pub fn children_named<'a>(
        &'a self,
        ns: Ns,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// Whether this element or any descendant has this name.
    pub fn contains(&self, ns: Ns, name: &str) -> bool {
        self.is(ns, name) || self.children.iter().any(|c| c.contains(ns, name))
    }

    /// The trimmed text, `None` when empty.
    pub fn text_value(&self) -> Option<String> {
        let t = self.text.trim();
        (!t.is_empty()).then(|| t.to_owned())
    }
}

/// Why an answer could not be read as XML. Never quotes the input (it may
/// hold event data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("malformed XML at byte {0}")]
    Malformed(u64),
    #[error("XML nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("XML without a root element")]
    Empty,
}

/// Reads a whole XML document into its root [`Element`].
pub fn parse_document(bytes: &[u8]) -> Result<Element, XmlError> {
    let mut reader = NsReader::from_reader(bytes);
    let mut buf = Vec::new();
    // The open elements; the finished root lands in `root`.
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let position = reader.buffer_position();
        let (resolved, event) = reader
            .read_resolved_event_into(&mut buf)
            .map_err(|_| XmlError::Malformed(position))?;
        let ns = match resolved {
            ResolveResult::Bound(ns) => Ns::from_uri(ns.0),
            _ => Ns::Other,
        };
        match event {
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                stack.push(Element::open(ns, &start));
            }
            Event::Empty(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                stack.push(Element::open(ns, &start));
                close(&mut stack, &mut root);
            }
            Event::End(_) => close(&mut stack, &mut root),
            Event::Text(text) => {
                if let Some(open) = stack.last_mut() {
                    let decoded = text
                        .xml10_content()
                        .map_err(|_| XmlError::Malformed(position))?;
                    open.text.push_str(&decoded);
                }
            }
            Event::CData(data) => {
                if let Some(open) = stack.last_mut() {
                    let decoded = data
                        .xml10_content()
                        .map_err(|_| XmlError::Malformed(position))?;
                    open.text.push_str(&decoded);
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(open) = stack.last_mut() {
                    if let Ok(Some(ch)) = reference.resolve_char_ref() {
                        open.text.push(ch);
                    } else {
                        let name = reference
                            .decode()
                            .map_err(|_| XmlError::Malformed(position))?;
                        let value = quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or(XmlError::Malformed(position))?;
                        open.text.push_str(value);
                    }
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed(reader.buffer_position()));
    }
    root.ok_or(XmlError::Empty)
}

fn close(stack: &mut Vec<Element>, root: &mut Option<Element>) {
    if let Some(done) = stack.pop() {
        match stack.last_mut() {
            Some(parent) => parent.children.push(done),
            None => {
                if root.is_none() {
                    *root = Some(done);
                }
            }
        }
    }
}

/// The status code of a `DAV:status` line (`HTTP/1.1 404 Not Found`).
pub fn status_code(line: &str) -> Option<u16> {
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The properties calsync reads, from the `200` propstats of one response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Props {
    pub is_collection: bool,
    pub is_calendar: bool,
    pub displayname: Option<String>,
    pub color: Option<String>,
    pub ctag: Option<String>,
    pub sync_token: Option<String>,
    /// `C:supported-calendar-component-set`: component names; `None` when
    /// the property was not returned (RFC 4791 §5.2.3: then all are allowed).
    pub components: Option<Vec<String>>,
    /// Local names of the privileges in `DAV:current-user-privilege-set`.
    pub privileges: Option<Vec<String>>,
    /// Local names of the reports in `DAV:supported-report-set`.
    pub reports: Option<Vec<String>>,
    pub current_user_principal: Option<String>,
    pub calendar_home_set: Vec<String>,
    pub getetag: Option<String>,
    pub calendar_data: Option<String>,
    pub calendar_timezone: Option<String>,
}

/// One `DAV:response` of a multistatus.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DavResponse {
    /// The first `DAV:href`, as sent (not yet normalised).
    pub href: String,
    /// The response-level `DAV:status` (a member without propstat, e.g. a
    /// removed member in a sync report), when there is one.
    pub status: Option<u16>,
    /// Whether any propstat carried a 2xx status.
    pub found: bool,
    pub props: Props,
}

/// A `DAV:multistatus` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Multistatus {
    pub responses: Vec<DavResponse>,
    /// The top-level `DAV:sync-token` of a sync-collection report.
    pub sync_token: Option<String>,
}

/// Reads a multistatus answer.
pub fn parse_multistatus(bytes: &[u8]) -> Result<Multistatus, XmlError> {
    let root = parse_document(bytes)?;
    if !root.is(Ns::Dav, "multistatus") {
        return Err(XmlError::Empty);
    }
    let mut out = Multistatus {
        sync_token: root
            .child(Ns::Dav, "sync-token")
            .and_then(Element::text_value),
        ..Multistatus::default()
    };
    for response in root.children_named(Ns::Dav, "response") {
        let Some(href) = response
            .child(Ns::Dav, "href")
            .and_then(Element::text_value)
        else {
            continue;
        };
        let mut item = DavResponse {
            href,
            status: response
                .child(Ns::Dav, "status")
                .and_then(|s| status_code(&s.text)),
            ..DavResponse::default()
        };
        for propstat in response.children_named(Ns::Dav, "propstat") {
            let ok = propstat
                .child(Ns::Dav, "status")
                .and_then(|s| status_code(&s.text))
                .is_some_and(|code| (200..300).contains(&code));
            if !ok {
                // A property the server does not have comes back in a 404
                // propstat: it is simply absent.
                continue;
            }
            item.found = true;
            if let Some(prop) = propstat.child(Ns::Dav, "prop") {
                read_props(prop, &mut item.props);
            }
        }
        out.responses.push(item);
    }
    Ok(out)
}

fn read_props(prop: &Element, props: &mut Props) {
    for p in &prop.children {
        match (p.ns, p.name.as_str()) {
            (Ns::Dav, "resourcetype") => {
                props.is_collection = p.child(Ns::Dav, "collection").is_some();
                props.is_calendar = p.child(Ns::CalDav, "calendar").is_some();
            }
            (Ns::Dav, "displayname") => props.displayname = p.text_value(),
            (Ns::Apple, "calendar-color") => props.color = p.text_value(),
            (Ns::CalServer, "getctag") => props.ctag = p.text_value(),
            (Ns::Dav, "sync-token") => props.sync_token = p.text_value(),
            (Ns::CalDav, "supported-calendar-component-set") => {
                props.components = Some(
                    p.children_named(Ns::CalDav, "comp")
                        .filter_map(|c| c.name_attr.clone())
                        .collect(),
                );
            }
            (Ns::Dav, "current-user-privilege-set") => {
                let mut names = Vec::new();
                for privilege in p.children_named(Ns::Dav, "privilege") {
                    names.extend(privilege.children.iter().map(|c| c.name.clone()));
                }
                props.privileges = Some(names);
            }
            (Ns::Dav, "supported-report-set") => {
                let mut names = Vec::new();
                for supported in p.children_named(Ns::Dav, "supported-report") {
                    for report in supported.children_named(Ns::Dav, "report") {
                        names.extend(report.children.iter().map(|c| c.name.clone()));
                    }
                }
                props.reports = Some(names);
            }
            (Ns::Dav, "current-user-principal") => {
                props.current_user_principal =
                    p.child(Ns::Dav, "href").and_then(Element::text_value);
            }
            (Ns::CalDav, "calendar-home-set") => {
                props.calendar_home_set = p
                    .children_named(Ns::Dav, "href")
                    .filter_map(Element::text_value)
                    .collect();
            }
            (Ns::Dav, "getetag") => props.getetag = p.text_value(),
            (Ns::CalDav, "calendar-data") => {
                // Keep the data exactly (folded lines start with a space).
                props.calendar_data = (!p.text.trim().is_empty()).then(|| p.text.clone());
            }
            (Ns::CalDav, "calendar-timezone") => props.calendar_timezone = p.text_value(),
            _ => {}
        }
    }
}

/// Whether an error answer names this `DAV:` precondition, e.g.
/// `<D:error><D:valid-sync-token/></D:error>` (RFC 6578 §3.2). Falls back to
/// a plain search when the body is not XML.
pub fn has_precondition(body: &[u8], name: &str) -> bool {
    match parse_document(body) {
        Ok(root) => root.contains(Ns::Dav, name),
        Err(_) => body.windows(name.len()).any(|w| w == name.as_bytes()),
    }
}

/// Escapes text for an XML body.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

const XML_HEAD: &str = r#"<?xml version="1.0" encoding="utf-8"?>"#;

/// PROPFIND for the principal (RFC 5397) on the context URL.
pub fn propfind_principal() -> String {
    format!(
        r#"{XML_HEAD}<D:propfind xmlns:D="DAV:"><D:prop><D:current-user-principal/><D:resourcetype/></D:prop></D:propfind>"#
    )
}

/// PROPFIND for the calendar home on the principal (RFC 4791 §6.2.1).
pub fn propfind_home() -> String {
    format!(
        r#"{XML_HEAD}<D:propfind xmlns:D="DAV:" xmlns:C="{NS_CALDAV}"><D:prop><C:calendar-home-set/><D:displayname/></D:prop></D:propfind>"#
    )
}

/// PROPFIND Depth 1 on the home: the calendar collections and their
/// properties (spec B2). Not their change tags (`getctag`, `sync-token`):
/// the listing does not use them, and a server may have to visit every
/// member of every calendar to compute them (Radicale 3.9: 0.35-0.42 s per
/// listing of a home with one 5,000-event calendar, against 2.5 ms
/// without; docs/BENCHMARKS.md, "CalDAV sync"). A sync asks each calendar
/// for its own token.
pub fn propfind_calendars() -> String {
    format!(
        r#"{XML_HEAD}<D:propfind xmlns:D="DAV:" xmlns:C="{NS_CALDAV}" xmlns:A="{NS_APPLE}"><D:prop><D:resourcetype/><D:displayname/><A:calendar-color/><C:supported-calendar-component-set/><C:calendar-timezone/><D:current-user-privilege-set/><D:supported-report-set/></D:prop></D:propfind>"#
    )
}

/// PROPFIND Depth 0 on one calendar: the change tags and reports.
pub fn propfind_collection_state() -> String {
    format!(
        r#"{XML_HEAD}<D:propfind xmlns:D="DAV:" xmlns:CS="{NS_CS}"><D:prop><CS:getctag/><D:sync-token/><D:supported-report-set/></D:prop></D:propfind>"#
    )
}

/// PROPFIND Depth 1 on one calendar: every member's etag (the fallback
/// listing, spec B4).
pub fn propfind_etags() -> String {
    format!(
        r#"{XML_HEAD}<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getetag/></D:prop></D:propfind>"#
    )
}

/// The sync-collection REPORT (RFC 6578 §3.2): sync-level 1, only
/// `getetag`, and never `DAV:limit` (servers get it wrong, spec B4).
pub fn sync_collection(token: &str) -> String {
    format!(
        r#"{XML_HEAD}<D:sync-collection xmlns:D="DAV:"><D:sync-token>{}</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>"#,
        escape(token)
    )
}

/// The calendar-multiget REPORT (RFC 4791 §7.9) for these hrefs.
pub fn calendar_multiget<'a>(hrefs: impl IntoIterator<Item = &'a str>) -> String {
    let mut body = format!(
        r#"{XML_HEAD}<C:calendar-multiget xmlns:D="DAV:" xmlns:C="{NS_CALDAV}"><D:prop><D:getetag/><C:calendar-data/></D:prop>"#
    );
    for href in hrefs {
        body.push_str("<D:href>");
        body.push_str(&escape(href));
        body.push_str("</D:href>");
    }
    body.push_str("</C:calendar-multiget>");
    body
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_do_not_matter_namespaces_do() {
        // Default namespace, `ns0:`-style prefixes, a foreign element with a
        // DAV-looking prefix, a property in a 404 propstat.
        let body = br#"<?xml version="1.0"?>
<multistatus xmlns="DAV:" xmlns:ns0="urn:ietf:params:xml:ns:caldav" xmlns:x="http://apple.com/ns/ical/" xmlns:D="urn:not-dav">
  <response>
    <href>/u/cal/</href>
    <propstat>
      <prop>
        <resourcetype><collection/><ns0:calendar/></resourcetype>
        <displayname>Caf&#233; &amp; more</displayname>
        <x:calendar-color>#FF2968FF</x:calendar-color>
        <ns0:supported-calendar-component-set><ns0:comp name="VEVENT"/><ns0:comp name='VTODO'/></ns0:supported-calendar-component-set>
        <D:displayname>not DAV</D:displayname>
        <current-user-privilege-set><privilege><read/></privilege><privilege><ns0:read-free-busy/></privilege></current-user-privilege-set>
      </prop>
      <status>HTTP/1.1 200 OK</status>
    </propstat>
    <propstat>
      <prop><getctag xmlns="http://calendarserver.org/ns/"/></prop>
      <status>HTTP/1.1 404 Not Found</status>
    </propstat>
  </response>
</multistatus>"#;
        let ms = parse_multistatus(body).unwrap();
        assert_eq!(ms.responses.len(), 1);
        let r = &ms.responses[0];
        assert_eq!(r.href, "/u/cal/");
        assert!(r.found && r.props.is_calendar && r.props.is_collection);
        assert_eq!(r.props.displayname.as_deref(), Some("Café & more"));
        assert_eq!(r.props.color.as_deref(), Some("#FF2968FF"));
        assert_eq!(
            r.props.components.as_deref(),
            Some(&["VEVENT".to_owned(), "VTODO".to_owned()][..])
        );
        assert_eq!(r.props.ctag, None);
        assert_eq!(
            r.props.privileges.as_deref(),
            Some(&["read".to_owned(), "read-free-busy".to_owned()][..])
        );
    }

    #[test]
    fn sync_reports_and_calendar_data() {
        let body = br#"<?xml version="1.0" encoding="utf-8"?>
<d:multistatus xmlns:d="DAV:" xmlns:cal="urn:ietf:params:xml:ns:caldav">
 <d:response><d:href>/u/cal/a.ics</d:href>
  <d:propstat><d:prop><d:getetag>"1"</d:getetag>
   <cal:calendar-data><![CDATA[BEGIN:VCALENDAR
BEGIN:VEVENT
SUMMARY:a <b> & c
END:VEVENT
END:VCALENDAR
]]></cal:calendar-data></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>
 <d:response><d:href>/u/cal/gone.ics</d:href><d:status>HTTP/1.1 404 Not Found</d:status></d:response>
 <d:response><d:href>/u/cal/</d:href><d:status>HTTP/1.1 507 Insufficient Storage</d:status></d:response>
 <d:sync-token>http://example.com/ns/sync/42</d:sync-token>
</d:multistatus>"#;
        let ms = parse_multistatus(body).unwrap();
        assert_eq!(
            ms.sync_token.as_deref(),
            Some("http://example.com/ns/sync/42")
        );
        assert_eq!(ms.responses.len(), 3);
        let a = &ms.responses[0];
        assert_eq!(a.props.getetag.as_deref(), Some("\"1\""));
        assert!(a
            .props
            .calendar_data
            .as_deref()
            .unwrap()
            .contains("SUMMARY:a <b> & c\n"));
        assert_eq!(
            (ms.responses[1].found, ms.responses[1].status),
            (false, Some(404))
        );
        assert_eq!(ms.responses[2].status, Some(507));
    }

    #[test]
    fn broken_and_hostile_xml_is_refused() {
        assert!(parse_multistatus(b"").is_err());
        assert!(parse_multistatus(b"<a><b></a>").is_err());
        assert!(parse_multistatus(b"<multistatus xmlns=\"DAV:\">&bogus;</multistatus>").is_err());
        assert!(parse_multistatus(b"<x xmlns=\"DAV:\"/>").is_err());
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert_eq!(parse_document(deep.as_bytes()), Err(XmlError::TooDeep));
        let err = parse_multistatus(b"<multistatus xmlns=\"DAV:\"><secret-value").unwrap_err();
        assert!(!err.to_string().contains("secret"));
    }

    #[test]
    fn preconditions_and_escaped_bodies() {
        let error = br#"<?xml version="1.0"?><error xmlns="DAV:"><valid-sync-token/></error>"#;
        assert!(has_precondition(error, "valid-sync-token"));
        assert!(!has_precondition(
            b"<error xmlns='DAV:'/>",
            "valid-sync-token"
        ));
        assert!(has_precondition(
            b"not xml valid-sync-token",
            "valid-sync-token"
        ));
        let body = sync_collection("http://x/sync?a=1&b=<2>");
        assert!(body.contains("<D:sync-token>http://x/sync?a=1&amp;b=&lt;2&gt;</D:sync-token>"));
        assert!(body.contains("<D:sync-level>1</D:sync-level>"));
        assert!(!body.contains("limit"));
        // The calendar listing runs on every sync: no change tags in it.
        let listing = propfind_calendars();
        assert!(listing.contains("<D:displayname/>") && listing.contains("<D:resourcetype/>"));
        assert!(!listing.contains("getctag") && !listing.contains("sync-token"));
        let multiget = calendar_multiget(["/u/c/a&b.ics", "/u/c/x.ics"]);
        assert!(multiget.contains("<D:href>/u/c/a&amp;b.ics</D:href><D:href>/u/c/x.ics</D:href>"));
        // Every body is well-formed XML.
        for body in [
            propfind_principal(),
            propfind_home(),
            propfind_calendars(),
            propfind_collection_state(),
            propfind_etags(),
            body,
            multiget,
        ] {
            parse_document(body.as_bytes()).unwrap();
        }
    }
}
