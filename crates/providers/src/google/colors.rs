//! Google's fixed colour palettes (`colors.get`, spec §2.6), so a calendar
//! that only has a `colorId` still gets a colour without an extra request.
//!
//! Never touches the database.

/// `colors.calendar`, ids "1" to "24".
const CALENDAR: [&str; 24] = [
    "#ac725e", "#d06b64", "#f83a22", "#fa573c", "#ff7537", "#ffad46", "#42d692", "#16a765",
    "#7bd148", "#b3dc6c", "#fbe983", "#fad165", "#92e1c0", "#9fe1e7", "#9fc6e7", "#4986e7",
    "#9a9cff", "#b99aff", "#c2c2c2", "#cabdbf", "#cca6ac", "#f691b2", "#cd74e6", "#a47ae2",
];

/// `colors.event`, ids "1" to "11".
const EVENT: [&str; 11] = [
    "#a4bdfc", "#7ae7bf", "#dbadff", "#ff887c", "#fbd75b", "#ffb878", "#46d6db", "#e1e1e1",
    "#5484ed", "#51b749", "#dc2127",
];

fn lookup(palette: &'static [&'static str], color_id: &str) -> Option<&'static str> {
    let index: usize = color_id.trim().parse().ok()?;
    palette.get(index.checked_sub(1)?).copied()
}

/// The background of a calendar `colorId`.
pub fn calendar_color(color_id: &str) -> Option<&'static str> {
    lookup(&CALENDAR, color_id)
}

/// The background of an event `colorId`.
pub fn event_color(color_id: &str) -> Option<&'static str> {
    lookup(&EVENT, color_id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn palette_lookups() {
        assert_eq!(calendar_color("1"), Some("#ac725e"));
        assert_eq!(calendar_color("24"), Some("#a47ae2"));
        assert_eq!(event_color("11"), Some("#dc2127"));
        for bad in ["0", "25", "x", "", "-1"] {
            assert_eq!(calendar_color(bad), None, "{bad}");
        }
        assert_eq!(event_color("12"), None);
    }
}
