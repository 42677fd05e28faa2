//! The component tree (RFC 5545 §3.4, §3.6): BEGIN/END nesting of the parts
//! calsync reads — VCALENDAR, VEVENT, VTIMEZONE with STANDARD/DAYLIGHT.
//!
//! Everything else (VTODO, VJOURNAL, VALARM, unknown X- components) is
//! skipped while its nesting is still tracked, so that an alarm's DESCRIPTION
//! never lands on its event. Only the properties the expander needs are kept,
//! which keeps a 10 MB feed's tree small.

use super::lexer::{split_line, ContentLine, Unfolder};
use super::IcalError;

/// Deepest nesting accepted; deeper input is malformed or hostile.
const MAX_DEPTH: usize = 64;

/// A kept component with its kept properties and sub-components.
#[derive(Debug, Clone, Default)]
pub struct Component<'a> {
    /// Upper-case component name, e.g. `VEVENT`.
    pub name: &'static str,
    /// Properties in file order.
    pub props: Vec<ContentLine<'a>>,
    /// Kept sub-components.
    pub children: Vec<Component<'a>>,
}

impl<'a> Component<'a> {
    /// The first property called `name` (case-insensitive).
    pub fn prop(&self, name: &str) -> Option<&ContentLine<'a>> {
        self.props
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// Every property called `name` (case-insensitive).
    pub fn props_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s ContentLine<'a>> {
        self.props
            .iter()
            .filter(move |p| p.name.eq_ignore_ascii_case(name))
    }
}

enum Frame<'a> {
    Keep(Component<'a>),
    Skip(String),
}

impl Frame<'_> {
    fn name(&self) -> &str {
        match self {
            Frame::Keep(c) => c.name,
            Frame::Skip(n) => n,
        }
    }
}

/// RFC 5545 components that hold properties of their own; anything else
/// (VCALENDAR aside) is an unknown wrapper that calsync looks through.
const STANDARD_COMPONENTS: &[&str] = &[
    "VEVENT",
    "VTODO",
    "VJOURNAL",
    "VFREEBUSY",
    "VTIMEZONE",
    "VALARM",
    "STANDARD",
    "DAYLIGHT",
    "VAVAILABILITY",
    "AVAILABLE",
];

/// Top-level calendar components: one of them cannot begin inside another,
/// so a BEGIN of one closes any left open (a missing or misspelt END).
const TOP_LEVEL: &[&str] = &[
    "VEVENT",
    "VTODO",
    "VJOURNAL",
    "VFREEBUSY",
    "VTIMEZONE",
    "VAVAILABILITY",
];

fn is_standard(name: &str) -> bool {
    STANDARD_COMPONENTS.contains(&name)
}

fn keeps_component(stack: &[Frame<'_>], name: &str) -> bool {
    let parent = stack.last().map(Frame::name);
    match name {
        "VCALENDAR" => stack.is_empty(),
        // VEVENTs wrapped in unknown X- components are still events.
        "VEVENT" | "VTIMEZONE" => !stack.iter().any(|f| is_standard(f.name())),
        "STANDARD" | "DAYLIGHT" => {
            matches!(stack.last(), Some(Frame::Keep(_))) && parent == Some("VTIMEZONE")
        }
        _ => false,
    }
}

/// The static spelling of a kept component name.
fn kept_name(name: &str) -> &'static str {
    ["VCALENDAR", "VEVENT", "VTIMEZONE", "STANDARD", "DAYLIGHT"]
        .into_iter()
        .find(|n| *n == name)
        .unwrap_or("")
}

/// Properties kept only by [`parse_pass_detailed`]: what a provider's event
/// needs beyond the expander's timing (RFC 5545 §3.8.1.5, §3.8.1.7,
/// §3.8.4.6, §3.8.7.2, §3.8.7.3) and a feed's name and colour (RFC 7986
/// §5.1, §5.9, and the X- names Google and Apple write).
const DETAIL_EVENT: &[&str] = &["DESCRIPTION", "LOCATION", "URL", "LAST-MODIFIED", "DTSTAMP"];
const DETAIL_CALENDAR: &[&str] = &["X-WR-CALNAME", "NAME", "COLOR", "X-APPLE-CALENDAR-COLOR"];

fn keeps_property(component: &str, prop: &str, details: bool) -> bool {
    const EVENT: &[&str] = &[
        "UID",
        "DTSTART",
        "DTEND",
        "DURATION",
        "RRULE",
        "RDATE",
        "EXDATE",
        "RECURRENCE-ID",
        "SUMMARY",
        "STATUS",
        "SEQUENCE",
    ];
    const ZONE: &[&str] = &[
        "TZID",
        "DTSTART",
        "RRULE",
        "RDATE",
        "TZOFFSETFROM",
        "TZOFFSETTO",
        "X-LIC-LOCATION",
    ];
    let list: &[&str] = match component {
        "VEVENT" => EVENT,
        "VTIMEZONE" | "STANDARD" | "DAYLIGHT" => ZONE,
        "VCALENDAR" => &["X-WR-TIMEZONE"],
        _ => return false,
    };
    let extra: &[&str] = match (details, component) {
        (true, "VEVENT") => DETAIL_EVENT,
        (true, "VCALENDAR") => DETAIL_CALENDAR,
        _ => &[],
    };
    list.iter()
        .chain(extra)
        .any(|n| n.eq_ignore_ascii_case(prop))
}

/// Which components a pass over the text keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Everything calsync reads, VEVENTs attached to their calendar.
    All,
    /// Only VCALENDAR properties and VTIMEZONEs (VEVENTs skipped unread).
    Zones,
    /// Only VEVENTs, each handed to the sink when it ends, so that a large
    /// feed never holds all its event components at once.
    Events,
}

/// Receives each VEVENT of an [`Pass::Events`] pass with the index of its
/// VCALENDAR (`None` for a VEVENT outside any).
pub type EventSink<'s, 'a> = &'s mut dyn FnMut(Option<usize>, Component<'a>);

struct Builder<'a, 's> {
    pass: Pass,
    details: bool,
    roots: Vec<Component<'a>>,
    stack: Vec<Frame<'a>>,
    calendars: usize,
    current: Option<usize>,
    sink: Option<EventSink<'s, 'a>>,
}

impl<'a> Builder<'a, '_> {
    fn keeps(&self, name: &str) -> bool {
        match (name, self.pass) {
            ("VEVENT", Pass::Zones) | ("VTIMEZONE" | "STANDARD" | "DAYLIGHT", Pass::Events) => {
                false
            }
            _ => keeps_component(&self.stack, name),
        }
    }

    fn begin(&mut self, name: String) -> Result<(), IcalError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(IcalError::TooDeep(MAX_DEPTH));
        }
        if TOP_LEVEL.contains(&name.as_str()) {
            if let Some(pos) = self.stack.iter().position(|f| is_standard(f.name())) {
                self.close_to(pos);
            }
        }
        if self.keeps(&name) {
            if name == "VCALENDAR" {
                self.current = Some(self.calendars);
                self.calendars += 1;
            }
            self.stack.push(Frame::Keep(Component {
                name: kept_name(&name),
                ..Component::default()
            }));
        } else {
            self.stack.push(Frame::Skip(name));
        }
        Ok(())
    }

    fn end(&mut self, name: &str) {
        if let Some(pos) = self
            .stack
            .iter()
            .rposition(|f| f.name().eq_ignore_ascii_case(name))
        {
            self.close_to(pos);
        }
    }

    fn close_to(&mut self, depth: usize) {
        while self.stack.len() > depth {
            self.close_top();
        }
    }

    fn close_top(&mut self) {
        let Some(Frame::Keep(done)) = self.stack.pop() else {
            return;
        };
        if done.name == "VCALENDAR" {
            self.current = None;
        }
        if done.name == "VEVENT" && self.pass == Pass::Events {
            if let Some(sink) = self.sink.as_mut() {
                sink(self.current, done);
            }
            return;
        }
        let parent = self.stack.iter_mut().rev().find_map(|f| match f {
            Frame::Keep(c) => Some(c),
            Frame::Skip(_) => None,
        });
        match parent {
            Some(parent) => parent.children.push(done),
            None => self.roots.push(done),
        }
    }
}

/// Parses `text` into its top-level kept components (VCALENDARs, and bare
/// VEVENT/VTIMEZONE components found outside any VCALENDAR).
///
/// Never fails on malformed lines: they are skipped. Unbalanced END lines
/// close the nearest matching BEGIN; components left open at the end of the
/// text are closed there.
pub fn parse_tree(text: &str) -> Result<Vec<Component<'_>>, IcalError> {
    parse_pass(text, Pass::All, None)
}

/// One pass over `text` keeping what `pass` asks for; VEVENTs of an
/// [`Pass::Events`] pass go to `sink` instead of the tree.
pub fn parse_pass<'a>(
    text: &'a str,
    pass: Pass,
    sink: Option<EventSink<'_, 'a>>,
) -> Result<Vec<Component<'a>>, IcalError> {
    parse_pass_with(text, pass, false, sink)
}

/// [`parse_pass`] that also keeps the descriptive properties a provider's
/// event needs (DESCRIPTION, LOCATION, URL, LAST-MODIFIED, DTSTAMP) and the
/// calendar's name and colour; the expander's own passes skip them unread.
pub fn parse_pass_detailed<'a>(
    text: &'a str,
    pass: Pass,
    sink: Option<EventSink<'_, 'a>>,
) -> Result<Vec<Component<'a>>, IcalError> {
    parse_pass_with(text, pass, true, sink)
}

fn parse_pass_with<'a>(
    text: &'a str,
    pass: Pass,
    details: bool,
    sink: Option<EventSink<'_, 'a>>,
) -> Result<Vec<Component<'a>>, IcalError> {
    let mut b = Builder {
        pass,
        details,
        roots: Vec::new(),
        stack: Vec::new(),
        calendars: 0,
        current: None,
        sink,
    };
    for raw in Unfolder::new(text) {
        // The name nearly always ends on the first physical line; when it
        // does not, the line is unfolded first (the slow path).
        let (name, early) = match raw.name() {
            Some(name) => (name, None),
            None if raw.folded => match split_line(raw.unfold()) {
                Some(line) => ("", Some(line)),
                None => continue,
            },
            None => continue,
        };
        let name = early.as_ref().map_or(name, |l| l.name.as_ref());
        let is_begin = name.eq_ignore_ascii_case("BEGIN");
        let is_end = name.eq_ignore_ascii_case("END");
        if !is_begin && !is_end {
            // Most lines (ATTENDEE, DESCRIPTION, X-...) are dropped here,
            // before any splitting or unfolding.
            if let Some(Frame::Keep(c)) = b.stack.last_mut() {
                if keeps_property(c.name, name, b.details) {
                    if let Some(line) = early.or_else(|| split_line(raw.unfold())) {
                        c.props.push(line);
                    }
                }
            }
            continue;
        }
        let Some(line) = early.or_else(|| split_line(raw.unfold())) else {
            continue;
        };
        if is_begin {
            b.begin(line.value.trim().to_ascii_uppercase())?;
        } else {
            b.end(line.value.trim());
        }
    }
    b.close_to(0);
    Ok(b.roots)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn skips_alarms_and_todos() {
        let text = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:a\nBEGIN:VALARM\nDESCRIPTION:x\nEND:VALARM\nEND:VEVENT\nBEGIN:VTODO\nSUMMARY:t\nEND:VTODO\nEND:VCALENDAR\n";
        let roots = parse_tree(text).unwrap();
        assert_eq!(roots.len(), 1);
        let cal = &roots[0];
        assert_eq!(cal.children.len(), 1);
        let ev = &cal.children[0];
        assert_eq!(ev.props.len(), 1);
        assert!(ev.prop("DESCRIPTION").is_none());
    }

    #[test]
    fn closes_unbalanced() {
        let roots = parse_tree(
            "BEGIN:VEVENT\nSUMMARY:x\nEND:VCALENDAR\nEND:VEVENT\nBEGIN:VCALENDAR\nBEGIN:VEVENT\n",
        )
        .unwrap();
        assert_eq!(roots.len(), 2);
        assert_eq!(roots[0].props.len(), 1);
        assert_eq!(roots[1].children.len(), 1);
    }

    #[test]
    fn recovers_from_misspelt_end_and_wrappers() {
        let text = "BEGIN:VCALENDAR\nBEGIN:VTODO\nEND:VTOOD\nBEGIN:VEVENT\nUID:a\nEND:VEVENT\nBEGIN:X-WRAP\nBEGIN:VEVENT\nUID:b\nEND:VEVENT\nEND:X-WRAP\nEND:VCALENDAR\n";
        let roots = parse_tree(text).unwrap();
        assert_eq!(roots.len(), 1);
        assert_eq!(roots[0].children.len(), 2);
    }

    #[test]
    fn reads_names_folded_before_the_colon() {
        let roots = parse_tree(
            "BEGIN:VEVENT\nUID\n\n :abc\nDTSTART\n ;VALUE=DATE\n :20031225\nEND:VEVENT\n",
        )
        .unwrap();
        assert_eq!(roots[0].prop("UID").unwrap().value, "abc");
        assert_eq!(
            roots[0].prop("DTSTART").unwrap().param("VALUE"),
            Some("DATE")
        );
    }

    #[test]
    fn refuses_deep_nesting() {
        let text = "BEGIN:X\n".repeat(100);
        assert!(matches!(parse_tree(&text), Err(IcalError::TooDeep(_))));
    }
}
