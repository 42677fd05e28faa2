#!/usr/bin/env python3
"""Generates the benchmark calendar: 20,000 VEVENTs (mixed single and
recurring), several zones with VTIMEZONE blocks (one under a non-IANA name,
so that its rules must be interpreted), EXDATEs and RECURRENCE-ID overrides.

Deterministic (seeded). Standard library only.

    python3 gen.py out/large.ics [--events 20000]
"""
import argparse
import random
from datetime import date, datetime, timedelta

VTIMEZONES = {
    "Europe/Berlin": ("+0100", "+0200", "CET", "CEST", "3", "-1SU", "10", "-1SU"),
    "America/New_York": ("-0500", "-0400", "EST", "EDT", "3", "2SU", "11", "1SU"),
    "America/Los_Angeles": ("-0800", "-0700", "PST", "PDT", "3", "2SU", "11", "1SU"),
    "Australia/Sydney": ("+1000", "+1100", "AEST", "AEDT", "10", "1SU", "4", "1SU"),
    # Not an IANA name: the expander must read the VTIMEZONE rules.
    "Custom Central European": ("+0100", "+0200", "CET", "CEST", "3", "-1SU", "10", "-1SU"),
}
FIXED = {"Asia/Tokyo": ("+0900", "JST")}

WORDS = ("planning review sync standup retro budget design launch offsite workshop "
         "interview lunch dentist yoga training call demo onboarding audit hiring").split()


def vtimezone(tzid, std, dst, sname, dname, dmon, dday, smon, sday):
    # Southern-hemisphere zones switch to DST in the second half of the year.
    return "\r\n".join([
        "BEGIN:VTIMEZONE", f"TZID:{tzid}",
        "BEGIN:DAYLIGHT", f"TZOFFSETFROM:{std}", f"TZOFFSETTO:{dst}", f"TZNAME:{dname}",
        f"DTSTART:1970{int(dmon):02d}01T020000", f"RRULE:FREQ=YEARLY;BYMONTH={dmon};BYDAY={dday}",
        "END:DAYLIGHT",
        "BEGIN:STANDARD", f"TZOFFSETFROM:{dst}", f"TZOFFSETTO:{std}", f"TZNAME:{sname}",
        f"DTSTART:1970{int(smon):02d}01T030000", f"RRULE:FREQ=YEARLY;BYMONTH={smon};BYDAY={sday}",
        "END:STANDARD",
        "END:VTIMEZONE",
    ])


def fixed_vtimezone(tzid, off, name):
    return "\r\n".join([
        "BEGIN:VTIMEZONE", f"TZID:{tzid}", "BEGIN:STANDARD", f"TZOFFSETFROM:{off}",
        f"TZOFFSETTO:{off}", f"TZNAME:{name}", "DTSTART:19700101T000000", "END:STANDARD",
        "END:VTIMEZONE",
    ])


def fold(line):
    out = []
    while len(line.encode()) > 75:
        out.append(line[:74])
        line = " " + line[74:]
    out.append(line)
    return "\r\n".join(out)


def dt(d):
    return d.strftime("%Y%m%dT%H%M%S")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=5545)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    zones = list(VTIMEZONES) + list(FIXED)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//calsync//bench//EN", "CALSCALE:GREGORIAN"]
    for tzid, spec in VTIMEZONES.items():
        lines.append(vtimezone(tzid, *spec))
    for tzid, (off, name) in FIXED.items():
        lines.append(fixed_vtimezone(tzid, off, name))

    n = 0
    uid_no = 0
    while n < args.events:
        uid_no += 1
        uid = f"bench-{uid_no:06d}@calsync.invalid"
        title = " ".join(rnd.sample(WORDS, 3)).title()
        kind = rnd.random()
        tz = rnd.choice(zones)
        day = date(2024, 1, 1) + timedelta(days=rnd.randrange(0, 3 * 365))
        start = datetime(day.year, day.month, day.day, rnd.choice([8, 9, 10, 11, 13, 14, 15, 16, 17]), rnd.choice([0, 15, 30]))
        minutes = rnd.choice([30, 45, 60, 90, 120])
        end = start + timedelta(minutes=minutes)
        common = [
            f"UID:{uid}", "DTSTAMP:20250101T000000Z", f"SUMMARY:{title} #{uid_no}",
            fold(f"DESCRIPTION:Agenda for {title.lower()}: " + ", ".join(rnd.sample(WORDS, 8)) + "\\nBring notes\\, please."),
            f"LOCATION:Room {rnd.randrange(1, 40)}\\, Building {rnd.choice('ABCDE')}",
            f"ORGANIZER;CN=Person {rnd.randrange(100)}:mailto:p{rnd.randrange(100)}@example.com",
            fold(f"ATTENDEE;CN=Person {rnd.randrange(100)};PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT:mailto:a{rnd.randrange(1000)}@example.com"),
            "STATUS:CONFIRMED", "SEQUENCE:0",
        ]
        ev = ["BEGIN:VEVENT"] + common
        overrides = []
        if kind < 0.12:  # all-day
            ev += [f"DTSTART;VALUE=DATE:{day:%Y%m%d}", f"DTEND;VALUE=DATE:{day + timedelta(days=rnd.choice([1, 1, 2, 3])):%Y%m%d}"]
            if rnd.random() < 0.3:
                ev.append("RRULE:FREQ=YEARLY")
        elif kind < 0.20:  # UTC single
            ev += [f"DTSTART:{dt(start)}Z", f"DTEND:{dt(end)}Z"]
        elif kind < 0.62:  # zoned single
            ev += [f"DTSTART;TZID={tz}:{dt(start)}", f"DTEND;TZID={tz}:{dt(end)}"]
        else:  # zoned recurring
            ev += [f"DTSTART;TZID={tz}:{dt(start)}", f"DURATION:PT{minutes}M" if rnd.random() < 0.3 else f"DTEND;TZID={tz}:{dt(end)}"]
            wd = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"][start.weekday()]
            r = rnd.random()
            step = timedelta(weeks=1)
            if r < 0.45:
                rule = f"FREQ=WEEKLY;BYDAY={wd}"
                if rnd.random() < 0.5:
                    rule += f";UNTIL={dt(start + timedelta(weeks=rnd.randrange(10, 120)))}Z"
            elif r < 0.60:
                rule = f"FREQ=WEEKLY;INTERVAL=2;BYDAY={wd};COUNT={rnd.randrange(5, 60)}"
                step = timedelta(weeks=2)
            elif r < 0.72:
                rule = f"FREQ=DAILY;COUNT={rnd.randrange(3, 40)}"
                step = timedelta(days=1)
            elif r < 0.87:
                rule = f"FREQ=MONTHLY;BYMONTHDAY={start.day}"
                step = None
            else:
                rule = "FREQ=MONTHLY;BYDAY=" + f"{(start.day - 1) // 7 + 1}{wd}" if start.day <= 28 else f"FREQ=MONTHLY;BYMONTHDAY={start.day}"
                step = None
            ev.append(f"RRULE:{rule}")
            if step and rnd.random() < 0.35:
                ex = [start + step * k for k in rnd.sample(range(1, 6), 2)]
                ev.append(f"EXDATE;TZID={tz}:" + ",".join(dt(x) for x in ex))
            if step and rnd.random() < 0.15:
                orig = start + step * rnd.randrange(6, 10)
                moved = orig + timedelta(hours=rnd.choice([-2, 1, 3]))
                overrides.append(["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20250101T000000Z",
                                  f"RECURRENCE-ID;TZID={tz}:{dt(orig)}", f"SUMMARY:{title} #{uid_no} (moved)",
                                  f"DTSTART;TZID={tz}:{dt(moved)}", f"DTEND;TZID={tz}:{dt(moved + timedelta(minutes=minutes))}",
                                  "SEQUENCE:1", "END:VEVENT"])
        ev.append("END:VEVENT")
        lines.append("\r\n".join(ev))
        n += 1
        for o in overrides:
            if n < args.events:
                lines.append("\r\n".join(o))
                n += 1
    lines.append("END:VCALENDAR")
    with open(args.out, "w", newline="") as f:
        f.write("\r\n".join(lines) + "\r\n")


if __name__ == "__main__":
    main()
