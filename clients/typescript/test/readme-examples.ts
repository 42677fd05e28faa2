/**
 * The README's examples, type-checked with the tests (never run): if the API
 * or the generated types change under them, the build of the tests fails.
 */
import {
  CalsyncError,
  configure,
  connectCaldav,
  connectGoogleCalendar,
  createApiToken,
  createCalsyncClient,
  decideRemovals,
  disconnectCalendar,
  getCalendarConnections,
  getApiTokens,
  getEvents,
  getMe,
  getUpcomingEvents,
  revokeApiToken,
  subscribeIcs,
  syncCalendar,
  updateCalendar,
  updateMe,
  type ChangeEvent,
} from "@calsync/client";

export async function browser(username: string, password: string): Promise<void> {
  await connectGoogleCalendar();
  const connections = await getCalendarConnections();
  await syncCalendar();
  await syncCalendar(connections[0]!.id);
  const events = await getUpcomingEvents({ limit: 20, days: 7 });
  const march = await getEvents({ start: new Date("2026-03-01"), end: new Date("2026-04-01") });
  await updateCalendar(connections[0]!.calendars[0]!.id, { enabled: false, color: "#0b8043" });
  try {
    await disconnectCalendar(42);
  } catch (error) {
    if (error instanceof CalsyncError && error.code === "not_found") {
      /* already gone */
    }
  }
  for (const connection of connections) {
    if (connection.waiting) console.log(connection.waiting.reason, connection.waiting.until);
    if (connection.status !== "held") continue;
    for (const calendar of connection.calendars) {
      if (calendar.held_removals != null && !calendar.removal_decision) {
        await decideRemovals(calendar.id, "reject"); // or "apply"
      }
    }
  }
  await connectCaldav({ serverUrl: "https://caldav.icloud.com", username, password });
  await subscribeIcs({ url: "webcal://example.com/holidays.ics", name: "Holidays" });
  const me = await getMe();
  await updateMe({ email: "carol@example.com", timezone: "Europe/Berlin" });
  await updateMe({ email: null }); // no more reminders by email
  const { token, expires_at } = await createApiToken({ name: "backup script", expiresInDays: 90 });
  for (const listed of await getApiTokens()) {
    if (listed.expired) await revokeApiToken(listed.id);
  }
  console.log(me.timezone, token, expires_at);
  configure({ csrfToken: () => "token" });
  console.log(events.map((e) => e.title), march.length);
}

export async function server(): Promise<void> {
  const calsync = createCalsyncClient({ baseUrl: "https://cal.example.com", token: process.env.CALSYNC_TOKEN });
  const events = await calsync.getUpcomingEvents({ limit: 50 });
  const consentUrl: string = await calsync.connectGoogleCalendar();
  const refresh = (what: string, ids: number[] = []) => void [what, ids, events, consentUrl];
  const subscription = calsync.subscribeToChanges(
    (change: ChangeEvent) => {
      switch (change.kind) {
        case "events":
          refresh("events", change.connection_ids);
          break;
        case "connection":
          refresh("connection", [change.connection_id]);
          break;
        case "resync":
          refresh("everything");
          break;
      }
    },
    {
      onReady: () => console.log("live"),
      onError: (error, willRetry) => {
        if (!willRetry) console.warn("stream ended:", error.code);
      },
      reconnect: { initialDelayMs: 1000, maxDelayMs: 30000 },
    },
  );
  subscription.close();
}

/** The browser's EventSource fits the option's type. */
export const withNativeEventSource = () =>
  createCalsyncClient({ EventSource: globalThis.EventSource, credentials: "same-origin" });
