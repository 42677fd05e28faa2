/**
 * Starts the real `calsync` binary for the tests: `calsync emulator` (the
 * Google stand-in) and `calsync serve` on free ports with a temporary data
 * folder, plus users, API tokens and browser-like logins. The binary is
 * $CALSYNC_BIN, else $CARGO_TARGET_DIR/debug/calsync (default target
 * ~/.cache/calsync-target).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

export const PASSWORD = "correct horse battery staple";
export const CLIENT_ID = "ts-client-test.apps.googleusercontent.com";
export const CLIENT_SECRET = "ts-client-test-secret";

export function binary(): string {
  const bin =
    process.env.CALSYNC_BIN ??
    join(process.env.CARGO_TARGET_DIR ?? join(homedir(), ".cache", "calsync-target"), "debug", "calsync");
  if (!existsSync(bin)) {
    throw new Error(`no calsync binary at ${bin}: run \`cargo build -p calsync-server\` or set CALSYNC_BIN`);
  }
  return bin;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns a value other than undefined / false. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > until) {
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    }
    await sleep(50);
  }
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

interface Process {
  child: ChildProcess;
  log: string[];
}

/** Spawns `calsync ARGS` and waits until `healthUrl` answers 200 (or the process exits). */
function start(args: string[], env: NodeJS.ProcessEnv, healthUrl: string, timeoutMs = 60_000): Promise<Process> {
  const child = spawn(binary(), args, { env, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  child.on("exit", () => running.delete(child));
  const log: string[] = [];
  child.stdout?.on("data", (chunk: Buffer) => log.push(chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => log.push(chunk.toString()));
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      child.kill("SIGKILL");
      reject(new Error(`calsync ${args.join(" ")} ${why}; log:\n${log.join("")}`));
    };
    child.on("exit", (code, signal) => fail(`exited (${code ?? signal})`));
    const until = Date.now() + timeoutMs;
    const poll = async () => {
      while (!settled) {
        try {
          if ((await fetch(healthUrl)).ok) {
            settled = true;
            resolve({ child, log });
            return;
          }
        } catch {
          // not listening yet
        }
        if (Date.now() > until) return fail(`did not answer ${healthUrl} within ${timeoutMs} ms`);
        await sleep(50);
      }
    };
    void poll();
  });
}

async function stop(process: Process | undefined): Promise<void> {
  if (!process || process.child.exitCode !== null || process.child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => process.child.once("exit", () => resolve()));
  process.child.kill("SIGTERM");
  const timer = setTimeout(() => process.child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Runs a one-shot `calsync` command; returns its stdout. */
function run(args: string[], env: NodeJS.ProcessEnv, stdin?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary(), args, { env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`calsync ${args.join(" ")} failed (${code}): ${err}`)),
    );
    child.stdin.end(stdin ?? "");
  });
}

/** A logged-in browser session: its cookies and CSRF token. */
export interface Session {
  cookie: string;
  csrf: string;
}

/** calsync with the Google emulator, running until `stop()`. */
export class Calsync {
  private server: Process | undefined;

  private constructor(
    readonly base: string,
    readonly emulator: string,
    readonly dataDir: string,
    private readonly emulatorProcess: Process,
    private readonly port: number,
  ) {}

  static async start(): Promise<Calsync> {
    const [serverPort, emulatorPort] = [await freePort(), await freePort()];
    const base = `http://127.0.0.1:${serverPort}`;
    const dataDir = await mkdtemp(join(tmpdir(), "calsync-ts-"));
    const emulatorProcess = await start(
      ["emulator", "--port", String(emulatorPort)],
      { ...baseEnv(dataDir), CALSYNC_PUBLIC_URL: base },
      `http://127.0.0.1:${emulatorPort}/_emulator/health`,
    );
    const emulator = `http://127.0.0.1:${emulatorPort}`;
    const calsync = new Calsync(base, emulator, dataDir, emulatorProcess, serverPort);
    await calsync.emulatorCall("POST", "/_emulator/clients", {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [`${base}/api/calendar/google/callback/`],
    });
    await calsync.emulatorCall("PUT", "/_emulator/settings", { auto_approve: true });
    await calsync.startServer();
    return calsync;
  }

  /** The environment of `calsync serve` and the one-shot commands. */
  env(): NodeJS.ProcessEnv {
    return {
      ...baseEnv(this.dataDir),
      CALSYNC_LISTEN: `127.0.0.1:${this.port}`,
      CALSYNC_PUBLIC_URL: this.base,
      CALSYNC_GOOGLE_CLIENT_ID: CLIENT_ID,
      CALSYNC_GOOGLE_CLIENT_SECRET: CLIENT_SECRET,
      CALSYNC_GOOGLE_AUTH_URL: `${this.emulator}/o/oauth2/v2/auth`,
      CALSYNC_GOOGLE_TOKEN_URL: `${this.emulator}/token`,
      CALSYNC_GOOGLE_API_BASE: this.emulator,
      CALSYNC_GOOGLE_REVOKE_URL: `${this.emulator}/revoke`,
      CALSYNC_SYNC_INTERVAL: "1h",
    };
  }

  private async startServer(): Promise<void> {
    this.server = await start(["serve"], this.env(), `${this.base}/healthz`);
  }

  /** Stops `calsync serve` (SIGTERM) and starts it again on the same port and data. */
  async restartServer(downMs = 0): Promise<void> {
    await stop(this.server);
    if (downMs) await sleep(downMs);
    await this.startServer();
  }

  log(): string {
    return this.server?.log.join("") ?? "";
  }

  async addUser(name: string): Promise<void> {
    await run(["user", "add", name, "--password-stdin"], this.env(), `${PASSWORD}\n`);
  }

  async token(name: string): Promise<string> {
    return (await run(["token", "create", name], this.env())).trim();
  }

  /** Logs in through the form, as a browser does. */
  async login(name: string): Promise<Session> {
    const response = await fetch(`${this.base}/login`, {
      method: "POST",
      headers: { Origin: this.base, "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ username: name, password: PASSWORD }).toString(),
      redirect: "manual",
    });
    if (response.status !== 303) throw new Error(`login failed: ${response.status} ${await response.text()}`);
    const cookies = response.headers.getSetCookie().map((c) => c.split(";")[0] ?? "");
    const csrf = cookies.find((c) => c.startsWith("calsync_csrf="))?.slice("calsync_csrf=".length);
    if (!csrf) throw new Error(`no calsync_csrf cookie in ${cookies.join(", ")}`);
    return { cookie: cookies.join("; "), csrf };
  }

  /** A `fetch` that behaves like a same-origin page: sends the cookies, and `Origin` on writes. */
  browserFetch(session: Session): typeof fetch {
    return (input, init = {}) => {
      const headers = new Headers(init.headers);
      headers.set("Cookie", session.cookie);
      const method = (init.method ?? "GET").toUpperCase();
      if (method !== "GET" && method !== "HEAD") headers.set("Origin", this.base);
      return fetch(input, { ...init, headers });
    };
  }

  async emulatorCall(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await fetch(`${this.emulator}${path}`, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`emulator ${method} ${path}: ${response.status} ${text}`);
    return text ? (JSON.parse(text) as unknown) : undefined;
  }

  async stop(): Promise<void> {
    await stop(this.server);
    await stop(this.emulatorProcess);
    await rm(this.dataDir, { recursive: true, force: true });
  }
}

function baseEnv(dataDir: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? tmpdir(),
    CALSYNC_DATA_DIR: dataDir,
    RUST_LOG: process.env.CALSYNC_TEST_LOG ?? "info",
  };
}
