#!/usr/bin/env python3
"""The Python stack people use today: icalendar + recurring-ical-events.
Prints the occurrences overlapping [FROM, TO) as JSON lines in calsync's
format (zoned times in UTC, floating without offset, dates as dates).

    python py_expand.py FILE FROM TO
"""
import datetime as dt
import json
import sys

import icalendar
import recurring_ical_events


def fmt(v):
    if isinstance(v, dt.datetime):
        if v.tzinfo is None:
            return v.strftime("%Y-%m-%dT%H:%M:%S")
        return v.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return v.isoformat()


def main():
    path, start, end = sys.argv[1:4]
    start = dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(end.replace("Z", "+00:00"))
    with open(path, "rb") as f:
        cal = icalendar.Calendar.from_ical(f.read())
    out = sys.stdout
    for ev in recurring_ical_events.of(cal).between(start, end):
        s = ev["DTSTART"].dt
        e = ev["DTEND"].dt if "DTEND" in ev else s
        out.write(json.dumps({
            "start": fmt(s), "end": fmt(e), "summary": str(ev.get("SUMMARY", "")),
            "all_day": not isinstance(s, dt.datetime), "uid": str(ev.get("UID", "")),
        }) + "\n")


if __name__ == "__main__":
    main()
