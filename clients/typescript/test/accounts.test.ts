/**
 * The account calls against a real calsync: the caller's settings
 * (`getMe`, `updateMe`) and API tokens (`getApiTokens`, `createApiToken`,
 * `revokeApiToken`), with a bearer token and with the page's cookie session,
 * and their failures as CalsyncErrors with the server's codes.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { CalsyncError, createCalsyncClient, type ApiToken, type CalsyncClient } from "@calsync/client";

import { Calsync, type Session } from "./harness.js";

async function failure(promise: Promise<unknown>): Promise<CalsyncError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof CalsyncError, `not a CalsyncError: ${String(error)}`);
    return error;
  }
  assert.fail("the call should have failed");
}

describe("account calls against calsync", () => {
  let calsync: Calsync;
  let session: Session;
  let token: string;
  /** Bearer client. */
  let api: CalsyncClient;
  /** Cookie client, as the page. */
  let page: CalsyncClient;

  before(async () => {
    calsync = await Calsync.start();
    await calsync.addUser("carol");
    await calsync.addUser("dave");
    token = await calsync.token("carol");
    session = await calsync.login("carol");
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

  it("reads and changes the caller's settings", async () => {
    assert.deepEqual(await api.getMe(), { username: "carol", email: null, timezone: "UTC" });
    const changed = await page.updateMe({ email: "carol@example.com", timezone: "Europe/Berlin" });
    assert.deepEqual(changed, { username: "carol", email: "carol@example.com", timezone: "Europe/Berlin" });
    assert.deepEqual(await api.getMe(), changed);

    const zone = await failure(api.updateMe({ timezone: "Mars/Olympus_Mons", email: "new@example.com" }));
    assert.equal(zone.status, 422);
    assert.equal(zone.code, "invalid_timezone");
    const email = await failure(api.updateMe({ email: "not an address", timezone: "Asia/Tokyo" }));
    assert.equal(email.code, "invalid_email");
    assert.deepEqual(await api.getMe(), changed, "a refused change changes nothing");

    const cleared = await api.updateMe({ email: null });
    assert.equal(cleared.email, null);
    assert.equal(cleared.timezone, "Europe/Berlin");
  });

  it("creates, lists and revokes API tokens", async () => {
    const created = await page.createApiToken({ name: "laptop", expiresInDays: 30 });
    assert.match(created.token, /^cst_/);
    assert.equal(created.name, "laptop");
    assert.equal(created.parent_id, null);
    const expires = Date.parse(created.expires_at ?? "");
    assert.ok(Math.abs(expires - (Date.now() + 30 * 86_400_000)) < 120_000, created.expires_at ?? "null");

    const laptop = createCalsyncClient({ baseUrl: calsync.base, token: created.token });
    assert.equal((await laptop.getMe()).username, "carol");
    // Made with a token: its child.
    const child = await laptop.createApiToken({ name: "script" });
    assert.equal(child.parent_id, created.id);
    assert.equal(child.expires_at, created.expires_at, "it expires with its parent");

    const listed: ApiToken[] = await api.getApiTokens();
    assert.deepEqual(
      listed.map((t) => t.name),
      ["script", "laptop", "cli"],
    );
    const text = JSON.stringify(listed);
    for (const secret of [token, created.token, child.token]) assert.ok(!text.includes(secret));
    assert.ok(listed.every((t) => !("token" in t)));

    // Someone else's token is not found; revoking the parent revokes the child.
    const daveToken = await calsync.token("dave");
    const dave = createCalsyncClient({ baseUrl: calsync.base, token: daveToken });
    const notTheirs = await failure(dave.revokeApiToken(created.id));
    assert.equal(notTheirs.status, 404);
    assert.equal(notTheirs.code, "not_found");

    assert.equal(await page.revokeApiToken(created.id), undefined);
    for (const revoked of [laptop, createCalsyncClient({ baseUrl: calsync.base, token: child.token })]) {
      const error = await failure(revoked.getMe());
      assert.equal(error.status, 401);
      assert.equal(error.code, "unauthenticated");
    }
    assert.deepEqual(
      (await api.getApiTokens()).map((t) => t.name),
      ["cli"],
    );

    const bad = await failure(api.createApiToken({ name: "x", expiresInDays: 0 }));
    assert.equal(bad.status, 422);
    assert.equal(bad.code, "invalid_expiry");
    const unnamed = await failure(api.createApiToken({ name: "  " }));
    assert.equal(unnamed.code, "invalid_name");
  });
});
