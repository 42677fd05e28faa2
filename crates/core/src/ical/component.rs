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
    pub name: String,
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
            Frame::Keep(c) => &c.name,
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

fn keeps_property(component: &str, prop: &str) -> bool {
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
        "LOCATION",
        "DESCRIPTION",
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
    list.iter().any(|n| n.eq_ignore_ascii_case(prop))
}

/// Parses `text` into its top-level kept components (VCALENDARs, and bare
/// VEVENT/VTIMEZONE components found outside any VCALENDAR).
///
/// Never fails on malformed lines: they are skipped. Unbalanced END lines
/// close the nearest matching BEGIN; components left open at the end of the
/// text are closed there.
pub fn parse_tree(text: &str) -> Result<Vec<Component<'_>>, IcalError> {
    let mut roots = Vec::new();
    let mut stack: Vec<Frame<'_>> = Vec::new();
    for raw in Unfolder::new(text) {
        let Some(line) = split_line(raw) else {
            continue;
        };
        if line.name.eq_ignore_ascii_case("BEGIN") {
            let name = line.value.trim().to_ascii_uppercase();
            if stack.len() >= MAX_DEPTH {
                return Err(IcalError::TooDeep(MAX_DEPTH));
            }
            if TOP_LEVEL.contains(&name.as_str()) {
                if let Some(pos) = stack.iter().position(|f| is_standard(f.name())) {
                    while stack.len() > pos {
                        close_top(&mut stack, &mut roots);
                    }
                }
            }
            if keeps_component(&stack, &name) {
                stack.push(Frame::Keep(Component {
                    name,
                    ..Component::default()
                }));
            } else {
                stack.push(Frame::Skip(name));
            }
        } else if line.name.eq_ignore_ascii_case("END") {
            let name = line.value.trim();
            if let Some(pos) = stack
                .iter()
                .rposition(|f| f.name().eq_ignore_ascii_case(name))
            {
                while stack.len() > pos {
                    close_top(&mut stack, &mut roots);
                }
            }
        } else if let Some(Frame::Keep(c)) = stack.last_mut() {
            if keeps_property(&c.name, &line.name) {
                c.props.push(line);
            }
        }
    }
    while !stack.is_empty() {
        close_top(&mut stack, &mut roots);
    }
    Ok(roots)
}

fn close_top<'a>(stack: &mut Vec<Frame<'a>>, roots: &mut Vec<Component<'a>>) {
    if let Some(Frame::Keep(done)) = stack.pop() {
        let parent = stack.iter_mut().rev().find_map(|f| match f {
            Frame::Keep(c) => Some(c),
            Frame::Skip(_) => None,
        });
        match parent {
            Some(parent) => parent.children.push(done),
            None => roots.push(done),
        }
    }
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
    fn refuses_deep_nesting() {
        let text = "BEGIN:X\n".repeat(100);
        assert!(matches!(parse_tree(&text), Err(IcalError::TooDeep(_))));
    }
}
