/**
 * The client against a real calsync and the Google emulator: connect through
 * the emulator's consent page, list, sync, read, toggle a calendar, hear a
 * change over Server-Sent Events (also across a server restart), disconnect;
 * and every failure arriving as a CalsyncError with the server's code.
 *
 * The tests in the first suite build on each other, in order (one user, one
 * connection), as a user's session would.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import {
  CalsyncError,
  createCalsyncClient,
  isCalsyncError,
  type CalendarEvent,
  type CalsyncClient,
  type ChangeEvent,
  type Connection,
  type RemovalDecision,
} from "@calsync/client";

import { Calsync, eventually, freePort, type Session } from "./harness.js";

const ALICE = "alice@example.com";

/** Awaits `promise`, which must reject with a CalsyncError; returns it. */
async function failure(promise: Promise<unknown>): Promise<CalsyncError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof CalsyncError, `not a CalsyncError: ${String(error)}`);
    assert.ok(isCalsyncError(error));
    assert.equal(error.name, "CalsyncError");
    assert.ok(error.message.length > 0, "the server's message is carried");
    return error;
  }
  assert.fail("the call should have failed");
}

/** Lets the worker finish: no connection pending or syncing. */
async function synced(client: CalsyncClient): Promise<Connection[]> {
  return eventually("the sync to finish", async () => {
    const connections = await client.getCalendarConnections();
    return connections.every((c) => c.status !== "pending" && c.status !== "syncing") && connections;
  });
}

/** A browser-like global scope for the duration of `body`. */
async function inBrowser<T>(
  globals: { document?: { cookie: string }; location?: { href: string; assign(url: string): void } },
  body: () => Promise<T>,
): Promise<T> {
  const scope = globalThis as Record<string, unknown>;
  const saved = { document: scope.document, location: scope.location };
  Object.assign(scope, globals);
  try {
    return await body();
  } finally {
    for (const key of ["document", "location"] as const) {
      if (saved[key] === undefined) delete scope[key];
      else scope[key] = saved[key];
    }
  }
}

describe("calsync client against calsync + the Google emulator", () => {
  let calsync: Calsync;
  let session: Session;
  let token: string;
  /** Bearer client, as a server-side caller. */
  let api: CalsyncClient;
  /** Cookie client, as the page: same-origin cookies, CSRF header from the session. */
  let page: CalsyncClient;
  let connection: Connection;

  before(async () => {
    calsync = await Calsync.start();
    await calsync.addUser("alice");
    token = await calsync.token("alice");
    session = await calsync.login("alice");
    api = createCalsyncClient({ baseUrl: calsync.base, token });
    page = createCalsyncClient({
      baseUrl: calsync.base,
      fetch: calsync.browserFetch(session),
      csrfToken: session.csrf,
    });
  });

  after(async () => {
    await calsync?.stop();
  });

  it("connects Google through the emulator's consent page", async () => {
    const url = await page.connectGoogleCalendar({ redirect: false });
    assert.ok(url.startsWith(`${calsync.emulator}/o/oauth2/v2/auth?`), url);
    // The browser at the consent page: the emulator approves at once.
    const consent = await fetch(`${url}&login_hint=${encodeURIComponent(ALICE)}`, { redirect: "manual" });
    assert.equal(consent.status, 302);
    const callback = consent.headers.get("location") ?? "";
    assert.ok(callback.startsWith(`${calsync.base}/api/calendar/google/callback/?`), callback);
    // Back at calsync with the session cookie.
    const back = await calsync.browserFetch(session)(callback, { redirect: "manual" });
    assert.equal(back.status, 303);
    assert.equal(back.headers.get("location"), "/settings?connected=google");
  });

  it("sends the browser to the consent page when asked without options", async () => {
    const assigned: string[] = [];
    const url = await inBrowser(
      { location: { href: `${calsync.base}/settings`, assign: (to) => void assigned.push(to) } },
      () => page.connectGoogleCalendar(),
    );
    assert.deepEqual(assigned, [url]);
    // A bearer client never navigates by default: it only returns the URL.
    const viaToken = await inBrowser(
      { location: { href: `${calsync.base}/settings`, assign: (to) => void assigned.push(to) } },
      () => api.connectGoogleCalendar(),
    );
    assert.ok(viaToken.startsWith(`${calsync.emulator}/o/oauth2/v2/auth?`));
    assert.equal(assigned.length, 1);
  });

  it("lists the connection with its calendars", async (t) => {
    const connections = await synced(api);
    assert.equal(connections.length, 1);
    connection = connections[0] as Connection;
    assert.equal(connection.provider, "google");
    assert.equal(connection.account_email, ALICE);
    // The sync that connecting starts in the background runs while this file
    // makes other writes (sessions, OAuth states). On SQLite it can then fail
    // with "database error" (a deferred transaction that reads before it
    // writes gets SQLITE_BUSY; the store's business, not the client's): noted
    // here, and the next test's explicit sync must come out "ok".
    if (connection.status === "error" && connection.last_error === "database error") {
      t.diagnostic(`the first background sync failed with "database error" (server-side SQLite contention)`);
    } else {
      assert.equal(connection.status, "ok", `${JSON.stringify(connection)}\n${calsync.log()}`);
    }
    assert.equal(connection.needs_reauth, false);
    const names = connection.calendars.map((c) => c.name);
    assert.ok(names.includes("Work") && names.includes("Personal"), names.join(", "));
    // The page (cookie session) sees the same.
    assert.deepEqual(
      (await page.getCalendarConnections()).map((c) => c.id),
      [connection.id],
    );
  });

  it("syncs and reads upcoming events and a range", async () => {
    const started = await api.syncCalendar(connection.id);
    assert.deepEqual(started.connection_ids, [connection.id]);
    const all = await page.syncCalendar();
    assert.deepEqual(all.connection_ids, [connection.id]);
    const [after] = await synced(api);
    assert.equal(after?.status, "ok", `${JSON.stringify(after)}\n${calsync.log()}`);
    assert.ok((after?.recent_runs.length ?? 0) >= 1);

    const upcoming = await api.getUpcomingEvents({ limit: 200, days: 30 });
    assert.ok(upcoming.length > 0, "the sample account has upcoming events");
    assert.ok(upcoming.length <= 200);
    for (const event of upcoming) {
      assert.equal(event.connection_id, connection.id);
      assert.match(event.color, /^#[0-9a-f]{6}$/i);
      assert.equal(typeof event.title, "string");
    }
    const starts = upcoming.map((e) => Date.parse(e.all_day ? `${e.start}T00:00:00Z` : e.start));
    assert.ok(starts.every((s) => !Number.isNaN(s)), "starts are dates");
    assert.equal((await api.getUpcomingEvents({ limit: 1 })).length, 1);

    const now = new Date();
    const range = await api.getEvents({ start: now, end: new Date(now.getTime() + 30 * 86_400_000) });
    assert.ok(range.length > 0);
    const asStrings = await api.getEvents({
      start: now.toISOString(),
      end: new Date(now.getTime() + 30 * 86_400_000).toISOString(),
    });
    assert.equal(asStrings.length, range.length);
  });

  it("turns a calendar off and on and recolours it (cookie session, CSRF from document.cookie)", async () => {
    const upcoming = await api.getUpcomingEvents({ limit: 500, days: 60 });
    const calendarId = (upcoming[0] as CalendarEvent).calendar_id;
    // The page's default: the CSRF token read from the calsync_csrf cookie.
    const pageFromCookie = createCalsyncClient({ baseUrl: calsync.base, fetch: calsync.browserFetch(session) });
    const off = await inBrowser({ document: { cookie: `theme=dark; calsync_csrf=${session.csrf}` } }, () =>
      pageFromCookie.updateCalendar(calendarId, { enabled: false }),
    );
    assert.equal(off.id, calendarId);
    assert.equal(off.enabled, false);
    const without = await api.getUpcomingEvents({ limit: 500, days: 60 });
    assert.ok(without.every((e) => e.calendar_id !== calendarId), "its events are hidden");
    assert.ok(without.length < upcoming.length);

    const on = await page.updateCalendar(calendarId, { enabled: true, color: "#0b8043" });
    assert.equal(on.enabled, true);
    assert.equal(on.color, "#0b8043");
    const again = await api.getUpcomingEvents({ limit: 500, days: 60 });
    const mine = again.filter((e) => e.calendar_id === calendarId);
    assert.ok(mine.length > 0 && mine.every((e) => e.color === "#0b8043"));
    const listed = (await api.getCalendars()).find((c) => c.id === calendarId);
    assert.equal(listed?.color, "#0b8043");
  });

  it("says when a connection syncs next, and decides about held removals (409 when nothing is held)", async () => {
    const [listed] = await synced(api);
    assert.ok(listed);
    assert.equal(typeof listed.next_sync_at, "string", JSON.stringify(listed));
    assert.ok(!Number.isNaN(Date.parse(listed.next_sync_at ?? "")), "next_sync_at is an instant");
    assert.equal(listed.waiting, null, "a healthy connection is not waiting");
    const calendar = listed.calendars[0];
    assert.ok(calendar);
    assert.equal(calendar.held_removals, null);
    assert.equal(calendar.removal_decision, null);
    assert.equal(calendar.vanished, false);

    const nothingHeld = await failure(page.decideRemovals(calendar.id, "reject"));
    assert.equal(nothingHeld.status, 409);
    assert.equal(nothingHeld.code, "conflict");
    assert.equal((await failure(api.decideRemovals(calendar.id, "apply"))).code, "conflict");
    const missing = await failure(api.decideRemovals(987_654, "apply"));
    assert.equal(missing.status, 404);
    assert.equal(missing.code, "not_found");
    // Outside the types (plain JavaScript callers): the server refuses it.
    const nonsense = await failure(api.decideRemovals(calendar.id, "maybe" as RemovalDecision));
    assert.equal(nonsense.status, 422);
  });

  it("hears a change over Server-Sent Events (bearer token, fetch reader)", async () => {
    const changes: ChangeEvent[] = [];
    const errors: CalsyncError[] = [];
    let ready = 0;
    const subscription = api.subscribeToChanges((change) => changes.push(change), {
      onReady: () => ready++,
      onError: (error) => errors.push(error),
    });
    try {
      await eventually("the stream's ready event", () => ready === 1);
      // The account's primary calendar (the emulator's control API accepts `primary`).
      assert.ok(connection.calendars.some((c) => c.is_primary && c.enabled), "the primary calendar is synced");
      const start = new Date(Date.now() + 2 * 86_400_000);
      await calsync.emulatorCall("POST", `/_emulator/accounts/${ALICE}/calendars/primary/events`, {
        id: "tsclient1",
        summary: "Planned from TypeScript",
        start: { dateTime: start.toISOString() },
        end: { dateTime: new Date(start.getTime() + 3_600_000).toISOString() },
      });
      await api.syncCalendar(connection.id);
      await eventually("an events change", () =>
        changes.some((c) => c.kind === "events" && c.connection_ids.includes(connection.id)),
      );
      assert.ok(changes.some((c) => c.kind === "connection" && c.connection_id === connection.id));
      await synced(api);
      const titles = (await api.getUpcomingEvents({ limit: 500 })).map((e) => e.title);
      assert.ok(titles.includes("Planned from TypeScript"), titles.join(", "));
      assert.deepEqual(errors, []);
    } finally {
      subscription.close();
    }
    assert.equal(subscription.closed, true);
  });

  it("hears changes with the cookie session too (fetch reader when there is no EventSource)", async () => {
    const changes: ChangeEvent[] = [];
    let ready = 0;
    const subscription = page.subscribeToChanges((change) => changes.push(change), { onReady: () => ready++ });
    try {
      await eventually("ready", () => ready === 1);
      await page.syncCalendar(connection.id);
      await eventually("a connection change", () => changes.some((c) => c.kind === "connection"));
      await synced(api);
    } finally {
      subscription.close();
    }
  });

  it("reconnects after the server restarts, says resync, and stops on close()", async () => {
    let streamRequests = 0;
    const counting: typeof fetch = (input, init) => {
      if (String(input).includes("/api/calendar/events/stream/")) streamRequests++;
      return fetch(input, init);
    };
    const client = createCalsyncClient({ baseUrl: calsync.base, token, fetch: counting });
    const changes: ChangeEvent[] = [];
    const errors: CalsyncError[] = [];
    let ready = 0;
    const subscription = client.subscribeToChanges((change) => changes.push(change), {
      onReady: () => ready++,
      onError: (error, willRetry) => {
        assert.equal(willRetry, true, `a restart is not final: ${error.code} ${error.message}`);
        errors.push(error);
      },
      reconnect: { initialDelayMs: 100, maxDelayMs: 400 },
    });
    try {
      await eventually("ready", () => ready === 1);
      await calsync.restartServer(300);
      await eventually("ready again after the restart", () => ready === 2, 30_000);
      assert.ok(errors.length >= 1, "the drop was reported");
      assert.ok(changes.some((c) => c.kind === "resync"), "a reconnection asks the page to re-read");
      // Still live: a sync's change arrives on the new connection.
      await client.syncCalendar(connection.id);
      await eventually("a change after reconnecting", () => changes.some((c) => c.kind === "connection"));
      await synced(api);
    } finally {
      subscription.close();
    }
    const requests = streamRequests;
    await calsync.restartServer();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.equal(streamRequests, requests, "no reconnection after close()");
    assert.equal(subscription.closed, true);
  });

  it("surfaces 401, 403, 404, 400 and 422 as CalsyncError with the server's code", async () => {
    const stranger = createCalsyncClient({ baseUrl: calsync.base, token: "cst_not_a_real_token" });
    const unauthenticated = await failure(stranger.getCalendarConnections());
    assert.equal(unauthenticated.status, 401);
    assert.equal(unauthenticated.code, "unauthenticated");

    const anonymous = createCalsyncClient({ baseUrl: calsync.base });
    assert.equal((await failure(anonymous.getUpcomingEvents())).code, "unauthenticated");

    const missing = await failure(api.disconnectCalendar(987_654));
    assert.equal(missing.status, 404);
    assert.equal(missing.code, "not_found");
    assert.equal((await failure(api.updateCalendar(987_654, { enabled: false }))).code, "not_found");
    assert.equal((await failure(api.syncCalendar(987_654))).status, 404);

    // A cookie write without the CSRF token is refused.
    const noCsrf = createCalsyncClient({ baseUrl: calsync.base, fetch: calsync.browserFetch(session) });
    const forbidden = await failure(noCsrf.syncCalendar());
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.code, "csrf_failed");
    const wrongCsrf = createCalsyncClient({
      baseUrl: calsync.base,
      fetch: calsync.browserFetch(session),
      csrfToken: "not-the-token",
    });
    assert.equal((await failure(wrongCsrf.syncCalendar())).code, "csrf_failed");

    const badRange = await failure(api.getEvents({ start: "yesterday", end: "tomorrow" }));
    assert.equal(badRange.status, 400);
    assert.equal(badRange.code, "bad_query");
    assert.equal((await failure(api.getUpcomingEvents({ limit: 0 }))).code, "bad_query");

    const badColor = await failure(api.updateCalendar(connection.calendars[0]?.id ?? 0, { color: "green" }));
    assert.equal(badColor.status, 422);
  });

  it("a refused stream ends the subscription with the error", async () => {
    const stranger = createCalsyncClient({ baseUrl: calsync.base, token: "cst_not_a_real_token" });
    const failures: [CalsyncError, boolean][] = [];
    const subscription = stranger.subscribeToChanges(() => assert.fail("no change for a stranger"), {
      onError: (error, willRetry) => failures.push([error, willRetry]),
      reconnect: { initialDelayMs: 50 },
    });
    await eventually("the refusal", () => failures.length === 1);
    const [[error, willRetry]] = failures as [[CalsyncError, boolean]];
    assert.equal(error.status, 401);
    assert.equal(error.code, "unauthenticated");
    assert.equal(willRetry, false);
    assert.equal(subscription.closed, true);
  });

  it("exposes the Microsoft, CalDAV and ICS connect calls, failing as CalsyncError", async () => {
    // This server has no Microsoft client id configured.
    const microsoft = await failure(api.connectMicrosoftCalendar({ redirect: false }));
    assert.equal(microsoft.status, 503);
    assert.equal(microsoft.code, "provider_not_configured");

    const caldav = await failure(api.connectCaldav({ serverUrl: "ftp://caldav.example.com", username: "a", password: "b" }));
    assert.equal(caldav.status, 422);
    assert.equal(caldav.code, "invalid_url");

    const ics = await failure(api.subscribeIcs({ url: "not a url", name: "Holidays" }));
    assert.equal(ics.status, 422);
    assert.equal(ics.code, "invalid_url");
  });

  it("reports a server that cannot be reached as network_error", async () => {
    const nowhere = createCalsyncClient({ baseUrl: `http://127.0.0.1:${await freePort()}`, token });
    const error = await failure(nowhere.getCalendarConnections());
    assert.equal(error.status, 0);
    assert.equal(error.code, "network_error");
  });

  it("disconnects: revoked at Google, gone from the list", async () => {
    const changes: ChangeEvent[] = [];
    let ready = 0;
    const subscription = api.subscribeToChanges((change) => changes.push(change), { onReady: () => ready++ });
    try {
      await eventually("ready", () => ready === 1);
      const result = await page.disconnectCalendar(connection.id);
      assert.deepEqual(result, { id: connection.id, disconnected: true, revoked: true });
      assert.deepEqual(await api.getCalendarConnections(), []);
      assert.deepEqual(await api.getUpcomingEvents(), []);
      await eventually("the disconnection's change", () =>
        changes.some((c) => c.kind === "connection" && c.connection_id === connection.id),
      );
      assert.equal((await failure(api.disconnectCalendar(connection.id))).code, "not_found");
    } finally {
      subscription.close();
    }
  });
});
