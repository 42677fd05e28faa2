/**
 * Every failure of the client: the server's `{"error": {"code", "message"}}`
 * with the HTTP status, or a client-side code when no such body arrived.
 *
 * Server codes (stable, snake_case) include `unauthenticated` (401),
 * `csrf_failed` (403), `not_found` (404), `conflict` (409), `invalid_body` /
 * `invalid_url` (422), `rate_limited` (429), `provider_error` (502),
 * `provider_not_configured` (503), `not_implemented` (501).
 *
 * Client codes (status 0 unless a response arrived): `network_error` (fetch
 * itself failed), `invalid_response` (a success without the expected JSON),
 * `http_error` (an error status without calsync's error body, e.g. from a
 * proxy), `stream_error` (EventSource reported a failure without details).
 */
export class CalsyncError extends Error {
  override readonly name = "CalsyncError";
  /** The HTTP status, or 0 when no response arrived. */
  readonly status: number;
  /** The server's `error.code`, or one of the client codes above. */
  readonly code: string;
  /** `Retry-After` in seconds, when the server sent one (429). */
  readonly retryAfter?: number;

  constructor(
    status: number,
    code: string,
    message: string,
    options?: { cause?: unknown; retryAfter?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.status = status;
    this.code = code;
    if (options?.retryAfter !== undefined) this.retryAfter = options.retryAfter;
  }

  /** Builds the error for a non-2xx response from its body (consumed here). */
  static async fromResponse(response: Response): Promise<CalsyncError> {
    const retryHeader = response.headers.get("retry-after");
    const retryAfter = retryHeader !== null && /^\d+$/.test(retryHeader) ? Number(retryHeader) : undefined;
    let text = "";
    try {
      text = await response.text();
    } catch {
      // the body could not be read; fall through to the generic error
    }
    const detail = parseErrorBody(text);
    if (detail) {
      return new CalsyncError(response.status, detail.code, detail.message, { retryAfter });
    }
    const snippet = text.trim().slice(0, 200);
    return new CalsyncError(
      response.status,
      "http_error",
      `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}${snippet ? `: ${snippet}` : ""}`,
      { retryAfter },
    );
  }
}

/** Whether `value` is a CalsyncError (also across bundled copies of this package). */
export function isCalsyncError(value: unknown): value is CalsyncError {
  return (
    value instanceof CalsyncError ||
    (typeof value === "object" &&
      value !== null &&
      (value as { name?: unknown }).name === "CalsyncError" &&
      typeof (value as { code?: unknown }).code === "string")
  );
}

function parseErrorBody(text: string): { code: string; message: string } | undefined {
  if (!text) return undefined;
  try {
    const body: unknown = JSON.parse(text);
    const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    if (error && typeof error.code === "string") {
      return { code: error.code, message: typeof error.message === "string" ? error.message : error.code };
    }
  } catch {
    // not JSON
  }
  return undefined;
}
