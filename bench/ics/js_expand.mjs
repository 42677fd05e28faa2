// The Node stack people use today: ical.js. Prints the occurrences
// overlapping [FROM, TO) as JSON lines in calsync's format.
//
//   node js_expand.mjs FILE FROM TO
import fs from "node:fs";
import ICAL from "ical.js";

const [file, fromArg, toArg] = process.argv.slice(2);
const from = ICAL.Time.fromDateTimeString(fromArg.replace("Z", ""), null);
from.zone = ICAL.Timezone.utcTimezone;
const to = ICAL.Time.fromDateTimeString(toArg.replace("Z", ""), null);
to.zone = ICAL.Timezone.utcTimezone;
const fromMs = from.toUnixTime(), toMs = to.toUnixTime();

const root = new ICAL.Component(ICAL.parse(fs.readFileSync(file, "utf8")));
for (const vtz of root.getAllSubcomponents("vtimezone")) {
  ICAL.TimezoneService.register(new ICAL.Timezone(vtz));
}

const pad = (n, w = 2) => String(n).padStart(w, "0");
function fmt(t) {
  if (t.isDate) return `${pad(t.year, 4)}-${pad(t.month)}-${pad(t.day)}`;
  if (t.zone === ICAL.Timezone.localTimezone || !t.zone) {
    return `${pad(t.year, 4)}-${pad(t.month)}-${pad(t.day)}T${pad(t.hour)}:${pad(t.minute)}:${pad(t.second)}`;
  }
  const u = t.convertToZone(ICAL.Timezone.utcTimezone);
  return `${pad(u.year, 4)}-${pad(u.month)}-${pad(u.day)}T${pad(u.hour)}:${pad(u.minute)}:${pad(u.second)}Z`;
}
// Dates and floating times are compared as UTC wall clock, like calsync.
const secs = (t) => (t.isDate || !t.zone || t.zone === ICAL.Timezone.localTimezone)
  ? Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second) / 1000
  : t.toUnixTime();

// Exceptions are handed to their master by UID. Left to itself, ical.js's
// Event constructor relates every RECURRENCE-ID component of the calendar
// to every master (no UID check, quadratic: it ran out of 4 GB here).
const vevents = root.getAllSubcomponents("vevent");
const exceptionsByUid = new Map();
for (const c of vevents) {
  if (!c.hasProperty("recurrence-id")) continue;
  const uid = c.getFirstPropertyValue("uid");
  if (!exceptionsByUid.has(uid)) exceptionsByUid.set(uid, []);
  exceptionsByUid.get(uid).push(c);
}
const masters = new Map();
for (const c of vevents) {
  if (c.hasProperty("recurrence-id")) continue;
  const uid = c.getFirstPropertyValue("uid");
  masters.set(uid, new ICAL.Event(c, { exceptions: exceptionsByUid.get(uid) || [] }));
}

const out = [];
let stuck = 0;
const emit = (start, end, summary, uid) => {
  const s = secs(start), e = secs(end);
  if ((s === e && s >= fromMs && s < toMs) || (s < toMs && e > fromMs)) {
    out.push(JSON.stringify({ start: fmt(start), end: fmt(end), summary, all_day: start.isDate, uid }));
  }
};
for (const ev of masters.values()) {
  if (!ev.startDate) continue;
  if (!ev.isRecurring()) {
    emit(ev.startDate, ev.endDate, ev.summary || "", ev.uid);
    continue;
  }
  const it = ev.iterator();
  let prev = -Infinity;
  for (let next = it.next(), n = 0; next && n < 100000; next = it.next(), n++) {
    const at = secs(next);
    if (at >= toMs) break;
    // Guard against iterators that stop making progress.
    if (at <= prev) { stuck++; break; }
    prev = at;
    const d = ev.getOccurrenceDetails(next);
    if (secs(d.endDate) <= fromMs && secs(d.startDate) < fromMs) continue;
    emit(d.startDate, d.endDate, d.item.summary || "", ev.uid);
  }
}
process.stdout.write(out.join("\n") + (out.length ? "\n" : ""));
if (stuck) process.stderr.write(`ical.js: ${stuck} recurrences stopped making progress\n`);
