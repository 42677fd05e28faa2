/**
 * A small Server-Sent Events reader on `fetch` + `ReadableStream`, for where
 * `EventSource` cannot be used: it cannot send an `Authorization` header (bearer
 * tokens), and Node has none. It follows the WHATWG parsing rules (CR, LF or
 * CRLF line ends, multi-line `data`, comments, `id` and `retry` fields),
 * reconnects after a drop with exponential backoff (sending `Last-Event-ID`
 * when the server set one), and stops for good on `close()` or on an answer
 * that retrying cannot fix (4xx other than 408 / 429).
 */
import { CalsyncError } from "./errors.js";

/** One dispatched event. */
export interface SseMessage {
  /** The `event` field; `message` when absent. */
  event: string;
  /** The `data` lines joined with `\n`. */
  data: string;
  /** The last `id` seen on this stream, if any. */
  lastEventId: string;
}

/** Incremental parser: feed it decoded text, get the complete events. */
export class SseParser {
  private buffer = "";
  private eventType = "";
  private data: string[] = [];
  private started = false;
  /** The last `id` field (kept across events, as the spec says). */
  lastEventId = "";
  /** The last valid `retry` field, in milliseconds. */
  retry: number | undefined;

  feed(text: string): SseMessage[] {
    this.buffer += text;
    if (!this.started && this.buffer.length > 0) {
      this.started = true;
      if (this.buffer.charCodeAt(0) === 0xfeff) this.buffer = this.buffer.slice(1);
    }
    const out: SseMessage[] = [];
    const lineEnd = /\r\n|\r|\n/g;
    let from = 0;
    for (;;) {
      lineEnd.lastIndex = from;
      const match = lineEnd.exec(this.buffer);
      if (!match) break;
      // A CR at the very end may be the first half of a CRLF: wait for more.
      if (match[0] === "\r" && match.index === this.buffer.length - 1) break;
      const message = this.line(this.buffer.slice(from, match.index));
      if (message) out.push(message);
      from = match.index + match[0].length;
    }
    this.buffer = this.buffer.slice(from);
    return out;
  }

  /** Forgets a half-received event (after the connection dropped). */
  reset(): void {
    this.buffer = "";
    this.eventType = "";
    this.data = [];
    this.started = false;
  }

  private line(line: string): SseMessage | undefined {
    if (line === "") {
      const event = this.eventType || "message";
      const data = this.data;
      this.eventType = "";
      this.data = [];
      if (data.length === 0) return undefined;
      return { event, data: data.join("\n"), lastEventId: this.lastEventId };
    }
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event":
        this.eventType = value;
        break;
      case "data":
        this.data.push(value);
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break;
    }
    return undefined;
  }
}

/** Backoff between reconnection attempts. */
export interface ReconnectOptions {
  /** The first wait after a drop (default 1000 ms; a `retry:` field from the server replaces it). */
  initialDelayMs?: number;
  /** The longest wait (default 30000 ms); each failed attempt doubles the wait up to it. */
  maxDelayMs?: number;
}

/** `fetch`'s `credentials` (spelled out, so the types need no DOM library). */
export type Credentials = "include" | "omit" | "same-origin";

export interface FetchStreamOptions extends ReconnectOptions {
  url: string;
  fetch: typeof fetch;
  /** Extra request headers, computed for every (re)connection. */
  headers?: () => Record<string, string> | Promise<Record<string, string>>;
  credentials?: Credentials;
  /** A connection was established (200 with `text/event-stream`). */
  onOpen?: () => void;
  onMessage: (message: SseMessage) => void;
  /** A failure; `willRetry` tells whether the reader tries again. */
  onError?: (error: CalsyncError, willRetry: boolean) => void;
}

/** A running reader. */
export interface EventStream {
  /** Stops reading and never reconnects. Safe to call more than once. */
  close(): void;
  /** True after `close()` or after a failure that retrying cannot fix. */
  readonly closed: boolean;
}

/** Starts reading `options.url` as an event stream; returns at once. */
export function openFetchEventStream(options: FetchStreamOptions): EventStream {
  const initial = options.initialDelayMs ?? 1000;
  const max = Math.max(options.maxDelayMs ?? 30_000, initial);
  const parser = new SseParser();
  let closed = false;
  let attempt = 0;
  let controller: AbortController | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const report = (error: CalsyncError, willRetry: boolean) => {
    if (closed && willRetry) return;
    guard(() => options.onError?.(error, willRetry));
  };

  const schedule = () => {
    if (closed) return;
    const base = Math.min(max, (parser.retry ?? initial) * 2 ** attempt);
    attempt += 1;
    // Up to 20 % jitter, so many clients dropped together do not return together.
    const delay = Math.round(base * (0.8 + Math.random() * 0.2));
    timer = setTimeout(() => void connect(), delay);
  };

  const stop = () => {
    closed = true;
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    controller?.abort();
  };

  const connect = async (): Promise<void> => {
    timer = undefined;
    if (closed) return;
    controller = new AbortController();
    const signal = controller.signal;
    let response: Response;
    try {
      const headers: Record<string, string> = {
        Accept: "text/event-stream",
        "Cache-Control": "no-cache",
        ...(await options.headers?.()),
      };
      if (parser.lastEventId) headers["Last-Event-ID"] = parser.lastEventId;
      response = await options.fetch(options.url, {
        method: "GET",
        headers,
        credentials: options.credentials,
        cache: "no-store",
        signal,
      });
    } catch (cause) {
      if (closed) return;
      report(networkError(cause), true);
      schedule();
      return;
    }
    if (!response.ok) {
      const error = await CalsyncError.fromResponse(response);
      const fatal = response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429;
      if (fatal) {
        closed = true;
        report(error, false);
      } else {
        report(error, true);
        schedule();
      }
      return;
    }
    const type = response.headers.get("content-type") ?? "";
    if (!type.toLowerCase().startsWith("text/event-stream") || !response.body) {
      void response.body?.cancel().catch(() => {});
      report(
        new CalsyncError(response.status, "invalid_response", `expected an event stream, got ${type || "no content type"}`),
        true,
      );
      schedule();
      return;
    }
    guard(() => options.onOpen?.());
    parser.reset();
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        for (const message of parser.feed(decoder.decode(value, { stream: true }))) {
          if (closed) return;
          attempt = 0;
          guard(() => options.onMessage(message));
        }
      }
      if (closed) return;
      report(new CalsyncError(0, "stream_ended", "the server ended the change stream; reconnecting"), true);
    } catch (cause) {
      if (closed) return;
      report(networkError(cause), true);
    } finally {
      reader.releaseLock();
    }
    schedule();
  };

  void connect();
  return {
    close: stop,
    get closed() {
      return closed;
    },
  };
}

function networkError(cause: unknown): CalsyncError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new CalsyncError(0, "network_error", `the change stream failed: ${detail}`, { cause });
}

/** Runs a caller's callback; its exception is rethrown on its own tick, as event handlers' are. */
export function guard(callback: () => void): void {
  try {
    callback();
  } catch (error) {
    setTimeout(() => {
      throw error;
    });
  }
}
