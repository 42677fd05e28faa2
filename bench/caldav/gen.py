#!/usr/bin/env python3
"""Writes the benchmark calendar: one VCALENDAR of N calendar object
resources (one UID each), deterministic for a given anchor date.

    python3 gen.py OUT.ics [--resources 5000] [--anchor 2026-11-23]

Mix (of 5,000): 4,650 single one-hour events spread over the year after the
anchor (a third in Europe/Berlin with a VTIMEZONE, the rest in UTC), 250
weekly series (COUNT=26 or UNTIL half a year on), half of them with 1 to 3
RECURRENCE-ID overrides in the same resource, and 100 all-day events (one
to three days). The anchor defaults to the Monday of the current week, so
that every event lies inside calsync's stored horizon (60 days back, 400
ahead) whenever the benchmark runs; the content depends on nothing else.
"""

import argparse
import datetime as dt
import random

BERLIN = """BEGIN:VTIMEZONE\r
TZID:Europe/Berlin\r
BEGIN:DAYLIGHT\r
TZOFFSETFROM:+0100\r
TZOFFSETTO:+0200\r
TZNAME:CEST\r
DTSTART:19700329T020000\r
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r
END:DAYLIGHT\r
BEGIN:STANDARD\r
TZOFFSETFROM:+0200\r
TZOFFSETTO:+0100\r
TZNAME:CET\r
DTSTART:19701025T030000\r
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r
END:STANDARD\r
END:VTIMEZONE\r
"""

WORDS = (
    "Standup Review Planning Retro Sync Lunch Interview Workshop Demo Call "
    "Budget Roadmap Onboarding Training Offsite Dentist Gym Dinner Flight "
    "Conference Design Ops Security Hiring Board Customer Partner Release"
).split()


def mix(n: int) -> tuple[int, int, int]:
    """(single, weekly, all-day) counts for n resources: 93% / 5% / 2%."""
    weekly = n * 5 // 100
    allday = n * 2 // 100
    return n - weekly - allday, weekly, allday


def utc(t: dt.datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%SZ")


def local(t: dt.datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%S")


def generate(n: int, anchor: dt.date) -> tuple[str, int]:
    """The VCALENDAR text and its number of VEVENT components."""
    rng = random.Random(5000)
    single, weekly, allday = mix(n)
    base = dt.datetime(anchor.year, anchor.month, anchor.day)
    blocks: list[str] = []
    vevents = 0

    def vevent(uid: str, lines: list[str]) -> str:
        summary = f"{rng.choice(WORDS)} {rng.choice(WORDS).lower()} #{uid.split('-')[-1]}"
        body = [
            "BEGIN:VEVENT",
            f"UID:{uid}",
            "DTSTAMP:20260101T000000Z",
            f"SUMMARY:{summary}",
            *lines,
        ]
        if rng.random() < 0.3:
            body.append(f"LOCATION:Room {rng.randint(1, 40)}")
        if rng.random() < 0.2:
            body.append("DESCRIPTION:Agenda: " + " ".join(rng.choice(WORDS) for _ in range(12)))
        body.append("END:VEVENT")
        return "\r\n".join(body) + "\r\n"

    for i in range(single):
        start = base + dt.timedelta(days=rng.randrange(365), hours=rng.randint(7, 19), minutes=rng.choice((0, 15, 30, 45)))
        end = start + dt.timedelta(minutes=rng.choice((30, 60, 60, 90, 120)))
        uid = f"bench-single-{i:05d}"
        if i % 3 == 0:
            lines = [f"DTSTART;TZID=Europe/Berlin:{local(start)}", f"DTEND;TZID=Europe/Berlin:{local(end)}"]
        else:
            lines = [f"DTSTART:{utc(start)}", f"DTEND:{utc(end)}"]
        blocks.append(vevent(uid, lines))
        vevents += 1

    for i in range(weekly):
        start = base + dt.timedelta(days=rng.randrange(180), hours=rng.randint(8, 17))
        end = start + dt.timedelta(minutes=rng.choice((30, 60)))
        uid = f"bench-weekly-{i:05d}"
        rule = "RRULE:FREQ=WEEKLY;COUNT=26" if i % 2 == 0 else f"RRULE:FREQ=WEEKLY;UNTIL={utc(start + dt.timedelta(days=182))}"
        master = vevent(uid, [f"DTSTART:{utc(start)}", f"DTEND:{utc(end)}", rule])
        overrides = []
        if i % 2 == 1:
            for week in sorted(rng.sample(range(1, 25), rng.randint(1, 3))):
                original = start + dt.timedelta(weeks=week)
                moved = original + dt.timedelta(hours=rng.choice((-2, -1, 1, 2)))
                overrides.append(vevent(uid, [
                    f"RECURRENCE-ID:{utc(original)}",
                    f"DTSTART:{utc(moved)}",
                    f"DTEND:{utc(moved + (end - start))}",
                ]))
        blocks.append(master + "".join(overrides))
        vevents += 1 + len(overrides)

    for i in range(allday):
        day = anchor + dt.timedelta(days=rng.randrange(365))
        uid = f"bench-allday-{i:05d}"
        lines = [
            f"DTSTART;VALUE=DATE:{day:%Y%m%d}",
            f"DTEND;VALUE=DATE:{day + dt.timedelta(days=rng.randint(1, 3)):%Y%m%d}",
            "TRANSP:TRANSPARENT",
        ]
        blocks.append(vevent(uid, lines))
        vevents += 1

    text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calsync bench//EN\r\n" + BERLIN + "".join(blocks) + "END:VCALENDAR\r\n"
    return text, vevents


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--resources", type=int, default=5000)
    today = dt.date.today()
    parser.add_argument("--anchor", type=dt.date.fromisoformat, default=today - dt.timedelta(days=today.weekday()))
    args = parser.parse_args()
    text, vevents = generate(args.resources, args.anchor)
    with open(args.out, "w", newline="") as f:
        f.write(text)
    single, weekly, allday = mix(args.resources)
    print(f"{args.resources} resources ({single} single, {weekly} weekly series, {allday} all-day), {vevents} VEVENTs, anchor {args.anchor}")


if __name__ == "__main__":
    main()
