#!/usr/bin/env python3
"""Compares occurrence lists (JSON lines) as multisets of
(start, end, summary, all_day), times normalised like check.py does.

    python3 compare.py reference.jsonl other.jsonl [--show N]
"""
import collections
import datetime as dt
import json
import sys


def norm(v):
    if len(v) == 10:
        return v
    t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    if t.tzinfo is None:
        return t.strftime("%Y-%m-%dT%H:%M:%S")
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def load(path):
    with open(path, encoding="utf-8") as f:
        return collections.Counter(
            (norm(o["start"]), norm(o["end"]), o.get("summary") or "", o["all_day"])
            for o in map(json.loads, filter(str.strip, f)))


def main():
    a, b = load(sys.argv[1]), load(sys.argv[2])
    show = int(sys.argv[sys.argv.index("--show") + 1]) if "--show" in sys.argv else 5
    missing, extra = a - b, b - a
    print(f"{sys.argv[2]}: {sum(b.values())} occurrences; vs {sys.argv[1]} ({sum(a.values())}): "
          f"{sum(missing.values())} missing, {sum(extra.values())} extra")
    for k in list(missing.elements())[:show]:
        print("   missing ", k)
    for k in list(extra.elements())[:show]:
        print("   extra   ", k)
    return 0 if not missing and not extra else 1


if __name__ == "__main__":
    sys.exit(main())
