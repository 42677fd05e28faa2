/**
 * The calsync API client: a factory for clients with their own base URL and
 * credentials, and the same calls as plain functions bound to a default,
 * same-origin client (the browser page served by calsync).
 *
 * Request and response types come from `schema.d.ts`, generated from the
 * server's OpenAPI document; nothing here restates a schema by hand.
 */
import type { components, paths } from "./schema.js";
import { CalsyncError } from "./errors.js";
import { guard, openFetchEventStream, type Credentials, type EventStream, type ReconnectOptions } from "./sse.js";

export { CalsyncError, isCalsyncError } from "./errors.js";
export { SseParser, openFetchEventStream } from "./sse.js";
export type { Credentials, EventStream, ReconnectOptions, SseMessage } from "./sse.js";
export type { components, paths } from "./schema.js";

// ---------------------------------------------------------------------------
// Types derived from the OpenAPI document.

type Method = "get" | "post" | "patch" | "put" | "delete";
type Operation<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;
type SuccessStatus = 200 | 201 | 202 | 203;

/** The JSON body of an operation's success answer (`unknown` where the document gives no schema). */
export type ResponseJson<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { responses: infer R }
    ? {
        [S in keyof R]: S extends SuccessStatus
          ? R[S] extends { content: { "application/json": infer T } }
            ? T
            : unknown
          : never;
      }[keyof R]
    : never;

/** The JSON request body of an operation. */
export type RequestJson<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { requestBody?: { content: { "application/json": infer B } } } ? B : never;

/** The query parameters of an operation. */
export type QueryParams<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;

/** The path parameters of an operation. */
export type PathParams<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { parameters: { path: infer A } } ? A : never;

export type Schemas = components["schemas"];
export type Connection = Schemas["ConnectionJson"];
export type Calendar = Schemas["CalendarJson"];
export type CalendarPatch = Schemas["CalendarPatchJson"];
export type CalendarEvent = Schemas["EventJson"];
export type SyncRun = Schemas["SyncRunJson"];
export type SyncStarted = Schemas["SyncStarted"];
export type Disconnected = Schemas["DisconnectedJson"];
/** Why a connection's next sync waits longer than usual (`Connection.waiting`). */
export type Waiting = Schemas["WaitingJson"];
/** `apply` (remove the held events) or `reject` (keep them). */
export type RemovalDecision = Schemas["RemovalDecisionJson"];
export type ErrorBody = Schemas["ErrorBody"];
/** The caller's own settings (`GET /api/me/`). */
export type Me = Schemas["MeJson"];
/** Changes to the caller's settings: `email` (null or `""` clears it), `timezone`. */
export type MePatch = Schemas["MePatchJson"];
/** An API token as listed: never the token itself. */
export type ApiToken = Schemas["ApiTokenJson"];
/** A token just created: the only answer that carries `token`. */
export type CreatedApiToken = Schemas["CreatedApiTokenJson"];

type UpcomingQuery = QueryParams<"/api/calendar/events/upcoming/", "get">;
type RangeQuery = QueryParams<"/api/calendar/events/", "get">;
type CaldavBody = RequestJson<"/api/calendar/caldav/connect/", "post">;
type IcsBody = RequestJson<"/api/calendar/ics/subscribe/", "post">;

/** `getEvents` bounds: RFC 3339 strings or `Date`s. */
export type EventRange = { [K in keyof RangeQuery]: RangeQuery[K] | Date };

/** `connectCaldav` input: the request body's fields in camelCase. */
export interface CaldavCredentials {
  serverUrl: CaldavBody["server_url"];
  username: CaldavBody["username"];
  password: CaldavBody["password"];
}

type NewTokenBody = RequestJson<"/api/tokens/", "post">;

/** `createApiToken` input: the request body's fields in camelCase. */
export interface NewApiToken {
  name: NewTokenBody["name"];
  /** Days until it expires (1 to 3650); absent: it does not expire (or, made with a token, expires with that token). */
  expiresInDays?: NonNullable<NewTokenBody["expires_in_days"]>;
}

/** `subscribeIcs` input. */
export interface IcsFeed {
  url: IcsBody["url"];
  name?: IcsBody["name"];
}

/**
 * What a change notification says. The stream's payloads are not described in
 * the OpenAPI document (its content is `text/event-stream`); these mirror the
 * server's `live::Change`. `resync` means notifications may have been missed
 * (the server said so, or the stream reconnected): re-read everything shown.
 */
export type ChangeEvent =
  | { kind: "events"; connection_ids: number[] }
  | { kind: "connection"; connection_id: number }
  | { kind: "resync" };

// ---------------------------------------------------------------------------
// Options.

/** What the client needs of an `EventSource` (the browser's fits). */
export interface EventSourceLike {
  readonly readyState: number;
  addEventListener(type: string, listener: (event: { data?: unknown }) => void): void;
  close(): void;
}

/** A constructor compatible with the browser's `EventSource`. */
export type EventSourceConstructor = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike;

type Lazy<T> = T | (() => T | Promise<T>);

export interface CalsyncClientOptions {
  /**
   * calsync's URL, e.g. `https://cal.example.com`. Default: `""`, i.e. the page's
   * own origin (required outside a browser).
   */
  baseUrl?: string;
  /**
   * An API token (`calsync token create USER`), sent as `Authorization: Bearer`.
   * Without one the client relies on the browser's session cookie.
   */
  token?: Lazy<string | undefined>;
  /**
   * The session's CSRF token for cookie-authenticated writes. Default: the
   * `calsync_csrf` cookie's value, read from `document.cookie` for each write.
   */
  csrfToken?: Lazy<string | undefined>;
  /** `fetch` credentials; default `include` without a token, `omit` with one. */
  credentials?: Credentials;
  /** The `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
  /**
   * The `EventSource` to use for `subscribeToChanges` with cookies (default: the
   * global one). Without one, or with a token, a fetch-based reader is used.
   * `null` forces the fetch-based reader.
   */
  EventSource?: EventSourceConstructor | null;
  /** Headers added to every request. */
  headers?: Record<string, string>;
}

export interface ConnectOptions {
  /**
   * Send the browser to the consent page (`location.assign`). Default: true in
   * a browser using its cookie session, false otherwise. The URL is returned
   * either way.
   */
  redirect?: boolean;
}

export interface SubscribeOptions {
  /** The stream is open (the server's `ready` event), after each (re)connection. */
  onReady?: () => void;
  /**
   * A failure of the stream. `willRetry` false means the subscription has ended
   * (e.g. 401: not logged in, bad token).
   */
  onError?: (error: CalsyncError, willRetry: boolean) => void;
  /** Backoff of the fetch-based reader (EventSource keeps its own). */
  reconnect?: ReconnectOptions;
}

/** A live subscription; `close()` ends it. */
export interface ChangeSubscription {
  close(): void;
  readonly closed: boolean;
}

// ---------------------------------------------------------------------------
// The client.

export interface CalsyncClient {
  /** The resolved base URL (no trailing slash; `""` = same origin). */
  readonly baseUrl: string;
  /** Starts connecting Google Calendar: returns the consent URL and, in a browser, goes there. */
  connectGoogleCalendar(options?: ConnectOptions): Promise<string>;
  /** Starts connecting Outlook / Microsoft 365, like `connectGoogleCalendar`. */
  connectMicrosoftCalendar(options?: ConnectOptions): Promise<string>;
  /** Connects a CalDAV account (Apple iCloud: an app-specific password). */
  connectCaldav(credentials: CaldavCredentials): Promise<ResponseJson<"/api/calendar/caldav/connect/", "post">>;
  /** Subscribes to an ICS feed (`https://`, `http://` or `webcal://`). */
  subscribeIcs(feed: IcsFeed): Promise<ResponseJson<"/api/calendar/ics/subscribe/", "post">>;
  /** The caller's connections with their calendars and sync status. */
  getCalendarConnections(): Promise<ResponseJson<"/api/calendar/connections/", "get">>;
  /** Disconnects a connection: revokes at the provider where possible, deletes its data. */
  disconnectCalendar(
    id: PathParams<"/api/calendar/connections/{id}/disconnect/", "post">["id"],
  ): Promise<ResponseJson<"/api/calendar/connections/{id}/disconnect/", "post">>;
  /** Starts a sync of one connection, or of all the caller's when `connectionId` is absent. */
  syncCalendar(connectionId?: number): Promise<ResponseJson<"/api/calendar/sync/", "post">>;
  /** The caller's calendars across all connections. */
  getCalendars(): Promise<ResponseJson<"/api/calendar/calendars/", "get">>;
  /** Turns a calendar on or off, or changes its colour (`#rrggbb`). */
  updateCalendar(
    id: PathParams<"/api/calendar/calendars/{id}/", "patch">["id"],
    patch: RequestJson<"/api/calendar/calendars/{id}/", "patch">,
  ): Promise<ResponseJson<"/api/calendar/calendars/{id}/", "patch">>;
  /**
   * Decides about the removals the last sync held back on a calendar (its
   * connection's status is `held`, the calendar's `held_removals` says how many):
   * `apply` removes them (for a `vanished` calendar, the calendar itself),
   * `reject` keeps them. A sync starts at once to carry the decision out.
   * Fails with 409 `conflict` when nothing is held.
   */
  decideRemovals(
    calendarId: PathParams<"/api/calendar/calendars/{id}/removals/", "post">["id"],
    decision: RemovalDecision,
  ): Promise<ResponseJson<"/api/calendar/calendars/{id}/removals/", "post">>;
  /** Upcoming events, merged and ordered (server defaults: 50 events, 30 days). */
  getUpcomingEvents(query?: UpcomingQuery): Promise<ResponseJson<"/api/calendar/events/upcoming/", "get">>;
  /** Occurrences overlapping [start, end). */
  getEvents(range: EventRange): Promise<ResponseJson<"/api/calendar/events/", "get">>;
  /** The caller's own settings: username, email (where reminders go) and time zone. */
  getMe(): Promise<ResponseJson<"/api/me/", "get">>;
  /**
   * Changes the caller's email and/or time zone (absent fields stay). Fails with
   * 422 `invalid_email` or `invalid_timezone`, and then changes neither.
   */
  updateMe(patch: MePatch): Promise<ResponseJson<"/api/me/", "patch">>;
  /** The caller's API tokens, newest first, expired ones included (never the tokens themselves). */
  getApiTokens(): Promise<ResponseJson<"/api/tokens/", "get">>;
  /**
   * Creates an API token; the answer's `token` is the only time it is shown.
   * Made with a token (`options.token`), the new one is its child: it expires no
   * later than it and is revoked with it.
   */
  createApiToken(token: NewApiToken): Promise<ResponseJson<"/api/tokens/", "post">>;
  /** Revokes one of the caller's API tokens (and those made with it); 404 `not_found` if it is not theirs. */
  revokeApiToken(id: PathParams<"/api/tokens/{id}/", "delete">["id"]): Promise<void>;
  /** Live change notifications for the caller (Server-Sent Events). */
  subscribeToChanges(onChange: (change: ChangeEvent) => void, options?: SubscribeOptions): ChangeSubscription;
}

const STREAM_PATH = "/api/calendar/events/stream/";
const CSRF_COOKIE = "calsync_csrf";
const CSRF_HEADER = "X-CSRF-Token";

interface RequestSpec {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** `manual`: hand back 3xx answers instead of following them. */
  redirect?: "follow" | "manual";
}

/** Creates a client. With no options: same origin, the browser's cookie session. */
export function createCalsyncClient(options: CalsyncClientOptions = {}): CalsyncClient {
  const baseUrl = (options.baseUrl ?? "").replace(/\/+$/, "");
  const fetchImpl = options.fetch ?? globalThis.fetch?.bind(globalThis);

  const resolve = async <T>(value: Lazy<T> | undefined): Promise<T | undefined> =>
    typeof value === "function" ? await (value as () => T | Promise<T>)() : value;

  const url = (path: string, query?: RequestSpec["query"]): string => {
    if (!baseUrl && typeof (globalThis as { location?: unknown }).location === "undefined") {
      throw new CalsyncError(0, "invalid_config", "calsync client: baseUrl is required outside a browser");
    }
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) params.set(key, String(value));
    }
    const search = params.toString();
    return `${baseUrl}${path}${search ? `?${search}` : ""}`;
  };

  const authHeaders = async (unsafe: boolean): Promise<Record<string, string>> => {
    const headers: Record<string, string> = { ...options.headers };
    const token = await resolve(options.token);
    if (token) {
      headers.Authorization = `Bearer ${token}`;
    } else if (unsafe) {
      const csrf = options.csrfToken !== undefined ? await resolve(options.csrfToken) : readCookie(CSRF_COOKIE);
      if (csrf) headers[CSRF_HEADER] = csrf;
    }
    return headers;
  };

  const credentials = async (): Promise<Credentials> =>
    options.credentials ?? ((await resolve(options.token)) ? "omit" : "include");

  const send = async (method: string, path: string, spec: RequestSpec = {}): Promise<Response> => {
    if (!fetchImpl) throw new CalsyncError(0, "invalid_config", "calsync client: no fetch available; pass options.fetch");
    const target = url(path, spec.query);
    const unsafe = method !== "GET" && method !== "HEAD";
    const headers = await authHeaders(unsafe);
    headers.Accept = "application/json";
    let body: string | undefined;
    if (spec.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(spec.body);
    }
    try {
      return await fetchImpl(target, {
        method,
        headers,
        body,
        credentials: await credentials(),
        redirect: spec.redirect ?? "follow",
      });
    } catch (cause) {
      const detail = cause instanceof Error ? cause.message : String(cause);
      throw new CalsyncError(0, "network_error", `${method} ${path} failed: ${detail}`, { cause });
    }
  };

  const json = async <T>(method: string, path: string, spec?: RequestSpec): Promise<T> => {
    const response = await send(method, path, spec);
    if (!response.ok) throw await CalsyncError.fromResponse(response);
    return (await readJson(response, method, path)) as T;
  };

  const authorize = async (path: string, connect: ConnectOptions = {}): Promise<string> => {
    const response = await send("GET", path, { redirect: "manual" });
    let target: string;
    if (response.type === "opaqueredirect") {
      // A browser hides a manual redirect's target; navigating to the API path
      // itself makes the same redirect with the session cookie.
      target = new URL(url(path), (globalThis as { location?: { href: string } }).location?.href).href;
    } else if (response.status >= 300 && response.status < 400 && response.headers.get("location")) {
      target = response.headers.get("location") as string;
    } else if (response.ok) {
      const body = (await readJson(response, "GET", path)) as { authorization_url?: unknown } | undefined;
      if (typeof body?.authorization_url !== "string") {
        throw new CalsyncError(response.status, "invalid_response", `GET ${path}: no authorization_url in the answer`);
      }
      target = body.authorization_url;
    } else {
      throw await CalsyncError.fromResponse(response);
    }
    const location = (globalThis as { location?: { assign?: (url: string) => void } }).location;
    const redirect = connect.redirect ?? (typeof location?.assign === "function" && !(await resolve(options.token)));
    if (redirect) {
      if (typeof location?.assign !== "function") {
        throw new CalsyncError(0, "invalid_config", "cannot redirect: no browser location; use { redirect: false }");
      }
      location.assign(target);
    }
    return target;
  };

  const subscribeToChanges = (
    onChange: (change: ChangeEvent) => void,
    subscribe: SubscribeOptions = {},
  ): ChangeSubscription => {
    let readies = 0;
    const dispatch = (event: string, data: string) => {
      if (event === "ready") {
        // After a reconnection, changes made while away were not heard.
        if (readies++ > 0) guard(() => onChange({ kind: "resync" }));
        guard(() => subscribe.onReady?.());
      } else if (event === "resync") {
        guard(() => onChange({ kind: "resync" }));
      } else if (event === "change") {
        let change: ChangeEvent;
        try {
          change = JSON.parse(data) as ChangeEvent;
        } catch {
          guard(() =>
            subscribe.onError?.(new CalsyncError(200, "invalid_response", `unreadable change event: ${data}`), true),
          );
          return;
        }
        guard(() => onChange(change));
      }
    };

    // Looked up now, not at creation, so that a polyfill loaded later is used.
    const EventSourceImpl =
      options.EventSource === null
        ? undefined
        : (options.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource);
    if (EventSourceImpl !== undefined && options.token === undefined) {
      const source = new EventSourceImpl(url(STREAM_PATH), {
        withCredentials: (options.credentials ?? "include") === "include",
      });
      let closed = false;
      for (const name of ["ready", "change", "resync"]) {
        source.addEventListener(name, (event) => dispatch(name, String(event.data)));
      }
      source.addEventListener("error", () => {
        // EventSource reconnects by itself while CONNECTING; CLOSED is final
        // (e.g. 401), and it does not say why.
        const final = source.readyState === 2;
        if (final) closed = true;
        guard(() =>
          subscribe.onError?.(
            new CalsyncError(
              0,
              "stream_error",
              final ? "the change stream was refused or closed (logged out?)" : "the change stream dropped; reconnecting",
            ),
            !final,
          ),
        );
      });
      return {
        close() {
          closed = true;
          source.close();
        },
        get closed() {
          return closed;
        },
      };
    }

    if (!fetchImpl) throw new CalsyncError(0, "invalid_config", "calsync client: no fetch available; pass options.fetch");
    const stream: EventStream = openFetchEventStream({
      url: url(STREAM_PATH),
      fetch: fetchImpl,
      headers: () => authHeaders(false),
      credentials: options.credentials ?? (options.token === undefined ? "include" : "omit"),
      onMessage: (message) => dispatch(message.event, message.data),
      onError: subscribe.onError,
      ...subscribe.reconnect,
    });
    return stream;
  };

  return {
    baseUrl,
    connectGoogleCalendar: (connect) => authorize("/api/calendar/google/authorize/", connect),
    connectMicrosoftCalendar: (connect) => authorize("/api/calendar/microsoft/authorize/", connect),
    connectCaldav: ({ serverUrl, username, password }) =>
      json("POST", "/api/calendar/caldav/connect/", {
        body: { server_url: serverUrl, username, password } satisfies CaldavBody,
      }),
    subscribeIcs: ({ url: feedUrl, name }) =>
      json("POST", "/api/calendar/ics/subscribe/", {
        body: (name === undefined ? { url: feedUrl } : { url: feedUrl, name }) satisfies IcsBody,
      }),
    getCalendarConnections: () => json("GET", "/api/calendar/connections/"),
    disconnectCalendar: (id) => json("POST", `/api/calendar/connections/${encodeURIComponent(id)}/disconnect/`),
    syncCalendar: (connectionId) =>
      json("POST", "/api/calendar/sync/", {
        body: (connectionId === undefined ? {} : { connection_id: connectionId }) satisfies RequestJson<
          "/api/calendar/sync/",
          "post"
        >,
      }),
    getCalendars: () => json("GET", "/api/calendar/calendars/"),
    updateCalendar: (id, patch) =>
      json("PATCH", `/api/calendar/calendars/${encodeURIComponent(id)}/`, { body: patch }),
    decideRemovals: (calendarId, decision) =>
      json("POST", `/api/calendar/calendars/${encodeURIComponent(calendarId)}/removals/`, {
        body: { decision } satisfies RequestJson<"/api/calendar/calendars/{id}/removals/", "post">,
      }),
    getMe: () => json("GET", "/api/me/"),
    updateMe: (patch) => json("PATCH", "/api/me/", { body: patch }),
    getApiTokens: () => json("GET", "/api/tokens/"),
    createApiToken: ({ name, expiresInDays }) =>
      json("POST", "/api/tokens/", {
        body: (expiresInDays === undefined
          ? { name }
          : { name, expires_in_days: expiresInDays }) satisfies NewTokenBody,
      }),
    revokeApiToken: async (id) => {
      await json<unknown>("DELETE", `/api/tokens/${encodeURIComponent(id)}/`);
    },
    getUpcomingEvents: (query = {}) => json("GET", "/api/calendar/events/upcoming/", { query: queryOf(query) }),
    getEvents: (range) => json("GET", "/api/calendar/events/", { query: queryOf(range) }),
    subscribeToChanges,
  };
}

async function readJson(response: Response, method: string, path: string): Promise<unknown> {
  if (response.status === 204) return undefined;
  const text = await response.text();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new CalsyncError(response.status, "invalid_response", `${method} ${path}: the answer is not JSON`, { cause });
  }
}

/** Query parameters as strings; `Date`s as RFC 3339 instants, absent values left out. */
function queryOf(params: object): RequestSpec["query"] {
  const query: NonNullable<RequestSpec["query"]> = {};
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null) continue;
    query[key] = value instanceof Date ? value.toISOString() : (value as string | number | boolean);
  }
  return query;
}

/** A cookie's value from `document.cookie`, if there is a document. */
export function readCookie(name: string): string | undefined {
  const jar = (globalThis as { document?: { cookie?: unknown } }).document?.cookie;
  if (typeof jar !== "string") return undefined;
  for (const pair of jar.split(";")) {
    const at = pair.indexOf("=");
    if (at !== -1 && pair.slice(0, at).trim() === name) {
      const raw = pair.slice(at + 1).trim();
      try {
        return decodeURIComponent(raw);
      } catch {
        return raw;
      }
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// The same calls bound to a default client.

let defaultClient: CalsyncClient | undefined;

/** Replaces the client the plain functions below use (default: same origin, cookie session). */
export function configure(options: CalsyncClientOptions = {}): CalsyncClient {
  defaultClient = createCalsyncClient(options);
  return defaultClient;
}

/** The client the plain functions use. */
export function getDefaultClient(): CalsyncClient {
  defaultClient ??= createCalsyncClient();
  return defaultClient;
}

export const connectGoogleCalendar: CalsyncClient["connectGoogleCalendar"] = (...args) =>
  getDefaultClient().connectGoogleCalendar(...args);
export const connectMicrosoftCalendar: CalsyncClient["connectMicrosoftCalendar"] = (...args) =>
  getDefaultClient().connectMicrosoftCalendar(...args);
export const connectCaldav: CalsyncClient["connectCaldav"] = (...args) => getDefaultClient().connectCaldav(...args);
export const subscribeIcs: CalsyncClient["subscribeIcs"] = (...args) => getDefaultClient().subscribeIcs(...args);
export const getCalendarConnections: CalsyncClient["getCalendarConnections"] = (...args) =>
  getDefaultClient().getCalendarConnections(...args);
export const disconnectCalendar: CalsyncClient["disconnectCalendar"] = (...args) =>
  getDefaultClient().disconnectCalendar(...args);
export const syncCalendar: CalsyncClient["syncCalendar"] = (...args) => getDefaultClient().syncCalendar(...args);
export const getCalendars: CalsyncClient["getCalendars"] = (...args) => getDefaultClient().getCalendars(...args);
export const updateCalendar: CalsyncClient["updateCalendar"] = (...args) =>
  getDefaultClient().updateCalendar(...args);
export const decideRemovals: CalsyncClient["decideRemovals"] = (...args) =>
  getDefaultClient().decideRemovals(...args);
export const getUpcomingEvents: CalsyncClient["getUpcomingEvents"] = (...args) =>
  getDefaultClient().getUpcomingEvents(...args);
export const getEvents: CalsyncClient["getEvents"] = (...args) => getDefaultClient().getEvents(...args);
export const getMe: CalsyncClient["getMe"] = (...args) => getDefaultClient().getMe(...args);
export const updateMe: CalsyncClient["updateMe"] = (...args) => getDefaultClient().updateMe(...args);
export const getApiTokens: CalsyncClient["getApiTokens"] = (...args) => getDefaultClient().getApiTokens(...args);
export const createApiToken: CalsyncClient["createApiToken"] = (...args) =>
  getDefaultClient().createApiToken(...args);
export const revokeApiToken: CalsyncClient["revokeApiToken"] = (...args) =>
  getDefaultClient().revokeApiToken(...args);
export const subscribeToChanges: CalsyncClient["subscribeToChanges"] = (...args) =>
  getDefaultClient().subscribeToChanges(...args);
