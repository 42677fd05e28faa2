/** CalsyncError from answers that are not calsync's, without a server. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { CalsyncError, createCalsyncClient, isCalsyncError } from "@calsync/client";

const answer = (status: number, body: string, headers: Record<string, string> = {}) =>
  (async () => new Response(body, { status, headers })) as typeof fetch;

describe("CalsyncError", () => {
  it("carries the server's code, message and Retry-After", async () => {
    const error = await CalsyncError.fromResponse(
      new Response(JSON.stringify({ error: { code: "rate_limited", message: "too many attempts" } }), {
        status: 429,
        headers: { "Retry-After": "7" },
      }),
    );
    assert.deepEqual([error.status, error.code, error.message, error.retryAfter], [429, "rate_limited", "too many attempts", 7]);
    assert.ok(error instanceof Error && isCalsyncError(error));
  });

  it("reports a proxy's page as http_error, and a broken success as invalid_response", async () => {
    const proxied = createCalsyncClient({ baseUrl: "http://calsync.test", token: "t", fetch: answer(502, "<h1>Bad Gateway</h1>") });
    await assert.rejects(proxied.getCalendars(), (error: unknown) => {
      assert.ok(isCalsyncError(error));
      assert.equal(error.status, 502);
      assert.equal(error.code, "http_error");
      assert.match(error.message, /502.*Bad Gateway/);
      return true;
    });
    const broken = createCalsyncClient({ baseUrl: "http://calsync.test", token: "t", fetch: answer(200, "not json") });
    await assert.rejects(broken.getCalendars(), { name: "CalsyncError", code: "invalid_response" });
  });

  it("needs a baseUrl outside a browser", async () => {
    await assert.rejects(createCalsyncClient().getCalendars(), { name: "CalsyncError", code: "invalid_config" });
  });

  it("sends the bearer token, JSON bodies and no CSRF header with a token", async () => {
    const seen: { url: string; init: RequestInit }[] = [];
    const client = createCalsyncClient({
      baseUrl: "http://calsync.test/",
      token: async () => "cst_abc",
      csrfToken: "ignored-with-a-token",
      fetch: (async (url: string, init: RequestInit) => {
        seen.push({ url, init });
        return new Response(JSON.stringify({ connection_ids: [3] }), { status: 202 });
      }) as typeof fetch,
    });
    assert.deepEqual(await client.syncCalendar(3), { connection_ids: [3] });
    const [{ url, init }] = seen as [{ url: string; init: RequestInit }];
    assert.equal(url, "http://calsync.test/api/calendar/sync/");
    const headers = init.headers as Record<string, string>;
    assert.equal(headers.Authorization, "Bearer cst_abc");
    assert.equal(headers["X-CSRF-Token"], undefined);
    assert.equal(headers["Content-Type"], "application/json");
    assert.equal(init.body, JSON.stringify({ connection_id: 3 }));
    assert.equal(init.credentials, "omit");
  });

  it("posts a removal decision to the calendar's removals path", async () => {
    const seen: { url: string; init: RequestInit }[] = [];
    const calendar = { id: 7, connection_id: 3, held_removals: 212, removal_decision: "apply", vanished: false };
    const client = createCalsyncClient({
      baseUrl: "http://calsync.test",
      token: "cst_abc",
      fetch: (async (url: string, init: RequestInit) => {
        seen.push({ url, init });
        return new Response(JSON.stringify(calendar), { status: 200 });
      }) as typeof fetch,
    });
    const decided = await client.decideRemovals(7, "apply");
    assert.equal(decided.removal_decision, "apply");
    const [{ url, init }] = seen as [{ url: string; init: RequestInit }];
    assert.equal(url, "http://calsync.test/api/calendar/calendars/7/removals/");
    assert.equal(init.method, "POST");
    assert.equal(init.body, JSON.stringify({ decision: "apply" }));
  });
});
