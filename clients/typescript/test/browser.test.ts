/**
 * The client in a real browser (headless Chromium) on calsync's own origin:
 * the default same-origin client with the session cookie, the CSRF token read
 * from `document.cookie`, `connectGoogleCalendar()` sending the browser
 * through the emulator's consent page, and live changes over the browser's own
 * EventSource. The built package (dist/) is loaded as ES modules from a small
 * static server with CORS, into a calsync page without a CSP (/healthz).
 *
 * Chromium and ChromeDriver are required (scripts/setup.sh installs both):
 * without them the test fails, unless CALSYNC_TEST_ALLOW_MISSING=1 skips it.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";

import { Calsync, eventually } from "./harness.js";
import { Browser, browserAvailable } from "./webdriver.js";

const DIST = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "dist");
const missing = !browserAvailable();
if (missing && process.env.CALSYNC_TEST_ALLOW_MISSING !== "1") {
  throw new Error(
    "Chromium or ChromeDriver is missing: scripts/setup.sh installs them (or set CALSYNC_TEST_ALLOW_MISSING=1 to skip)",
  );
}
const skip = missing ? "no chromium / chromedriver (CALSYNC_TEST_ALLOW_MISSING=1)" : false;

/** Serves dist/ to any origin. */
async function serveDist(): Promise<{ server: Server; url: string }> {
  const server = createServer((request, response) => {
    const path = normalize(decodeURIComponent(new URL(request.url ?? "/", "http://x").pathname)).replace(/^\/+/, "");
    readFile(join(DIST, path)).then(
      (body) => {
        response.writeHead(200, {
          "Content-Type": "text/javascript; charset=utf-8",
          "Access-Control-Allow-Origin": "*",
        });
        response.end(body);
      },
      () => {
        response.writeHead(404);
        response.end();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  return { server, url: `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}` };
}

/**
 * Runs `body` (an async function body with `m`, the package, and `args` in
 * scope) in the page and returns its JSON-able result; failures come back as
 * `{ thrown: { name, code, status, message } }`.
 */
function inPage(lib: string, body: string): string {
  return `
    const done = arguments[arguments.length - 1];
    const args = arguments[0];
    import(${JSON.stringify(`${lib}/index.js`)})
      .then(async (m) => { ${body} })
      .then((value) => done({ value }),
            (e) => done({ thrown: { name: e?.name, code: e?.code, status: e?.status, message: String(e?.message ?? e) } }));`;
}

interface Outcome<T> {
  value?: T;
  thrown?: { name: string; code: string; status: number; message: string };
}

describe("calsync client in a browser (Chromium)", { skip }, () => {
  let calsync: Calsync;
  let browser: Browser;
  let lib: { server: Server; url: string };

  before(async () => {
    calsync = await Calsync.start();
    await calsync.addUser("alice");
    lib = await serveDist();
    browser = await Browser.start();
  });

  after(async () => {
    await browser?.stop();
    lib?.server.close();
    await calsync?.stop();
  });

  const run = async <T>(body: string, args: unknown = {}): Promise<Outcome<T>> =>
    browser.runAsync<Outcome<T>>(inPage(lib.url, body), args);

  it("logs in through calsync's form", async () => {
    await browser.goto(`${calsync.base}/login`);
    await browser.run(`
      document.querySelector('#username').value = 'alice';
      document.querySelector('#password').value = arguments[0];
      document.querySelector('form').submit();`, "correct horse battery staple");
    await eventually("the Dashboard", async () => !(await browser.url()).includes("/login"));
    await browser.goto(`${calsync.base}/healthz`);
    const cookie = await browser.run<string>("return document.cookie;");
    assert.match(cookie, /calsync_csrf=/, "the CSRF cookie is readable; the session cookie is HttpOnly");
    assert.doesNotMatch(cookie, /calsync_session=/);
  });

  it("writes with the CSRF token from document.cookie, and fails without it", async () => {
    const ok = await run<{ connection_ids: number[] }>("return await m.syncCalendar();");
    assert.deepEqual(ok, { value: { connection_ids: [] } });
    const refused = await run(
      "return await m.createCalsyncClient({ csrfToken: 'forged' }).syncCalendar();",
    );
    assert.equal(refused.thrown?.name, "CalsyncError");
    assert.equal(refused.thrown?.status, 403);
    assert.equal(refused.thrown?.code, "csrf_failed");
  });

  it("connectGoogleCalendar() sends the browser through the consent page and back", async () => {
    // The call navigates away, so the promise is left behind with the page.
    await browser.run(`import(${JSON.stringify(`${lib.url}/index.js`)}).then((m) => m.connectGoogleCalendar());`);
    // Settings strips its one-time `?connected=google` from the address bar
    // once shown, so the flash message is what tells the outcome.
    await eventually("the return to Settings", async () =>
      (await browser.url()).includes("/settings") &&
      (await browser.run<string>("return document.body.innerText;")).includes("Google Calendar connected"),
    );
    await browser.goto(`${calsync.base}/healthz`);
    const connections = await run<{ provider: string; account_email: string }[]>(
      "return await m.getCalendarConnections();",
    );
    assert.equal(connections.value?.length, 1);
    assert.equal(connections.value?.[0]?.provider, "google");
    assert.equal(connections.value?.[0]?.account_email, "alice@example.com");
    // Let the sync that connecting started finish, so later changes are ours.
    await eventually("the first sync", async () => {
      const listed = await run<{ status: string }[]>("return await m.getCalendarConnections();");
      return listed.value?.every((c) => c.status !== "pending" && c.status !== "syncing");
    });
  });

  it("hears changes over the browser's EventSource", async () => {
    const outcome = await run<{ usedEventSource: boolean; changes: { kind: string }[]; ready: number }>(`
      let constructed = 0;
      const Native = window.EventSource;
      window.EventSource = class extends Native { constructor(...a) { super(...a); constructed++; } };
      const changes = [];
      let ready = 0;
      await new Promise((resolve, reject) => {
        const subscription = m.subscribeToChanges((change) => {
          changes.push(change);
          // The sync's status changes arrive as 'connection' changes.
          if (change.kind === 'connection') { subscription.close(); resolve(); }
        }, {
          onReady: () => { ready++; m.syncCalendar().catch(reject); },
          onError: (e, willRetry) => { if (!willRetry) reject(e); },
        });
        setTimeout(() => reject(new Error('no change within 20 s: ' + JSON.stringify(changes))), 20000);
      });
      window.EventSource = Native;
      return { usedEventSource: constructed === 1, changes, ready };`);
    assert.equal(outcome.thrown, undefined, outcome.thrown?.message);
    assert.equal(outcome.value?.usedEventSource, true);
    assert.equal(outcome.value?.ready, 1);
    assert.ok(outcome.value?.changes.some((c) => c.kind === "connection"), JSON.stringify(outcome.value?.changes));
  });

  it("reads events, and surfaces errors as CalsyncError", async () => {
    const events = await run<number>("return (await m.getUpcomingEvents({ limit: 100 })).length;");
    assert.ok((events.value ?? 0) > 0);
    const missing = await run("return await m.disconnectCalendar(987654);");
    assert.equal(missing.thrown?.name, "CalsyncError");
    assert.equal(missing.thrown?.code, "not_found");
    const microsoft = await run("return await m.connectMicrosoftCalendar({ redirect: false });");
    assert.equal(microsoft.thrown?.code, "provider_not_configured");
  });

  it("disconnects", async () => {
    const result = await run<{ disconnected: boolean }>(
      "const [c] = await m.getCalendarConnections(); return await m.disconnectCalendar(c.id);",
    );
    assert.equal(result.value?.disconnected, true);
    assert.deepEqual((await run("return await m.getCalendarConnections();")).value, []);
  });
});
