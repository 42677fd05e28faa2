/**
 * Just enough WebDriver (chromedriver's HTTP API, over fetch) to drive a
 * headless Debian Chromium: open pages, run scripts, read the URL.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { eventually, freePort } from "./harness.js";

export const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
export const CHROMEDRIVER = process.env.CHROMEDRIVER_BIN ?? "/usr/bin/chromedriver";

export function browserAvailable(): boolean {
  return existsSync(CHROMIUM) && existsSync(CHROMEDRIVER);
}

export class Browser {
  private constructor(
    private readonly driver: ChildProcess,
    private readonly endpoint: string,
    private readonly session: string,
    private readonly profile: string,
  ) {}

  static async start(): Promise<Browser> {
    const port = await freePort();
    const driver = spawn(CHROMEDRIVER, [`--port=${port}`], { stdio: "ignore" });
    const endpoint = `http://127.0.0.1:${port}`;
    try {
      await eventually("chromedriver", async () => (await fetch(`${endpoint}/status`)).ok, 20_000);
      const profile = await mkdtemp(join(tmpdir(), "calsync-ts-chromium-"));
      const created = (await call(endpoint, "POST", "/session", {
        capabilities: {
          alwaysMatch: {
            browserName: "chrome",
            "goog:chromeOptions": {
              binary: CHROMIUM,
              args: [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                `--user-data-dir=${profile}`,
              ],
            },
          },
        },
      })) as { sessionId: string };
      const browser = new Browser(driver, endpoint, created.sessionId, profile);
      await browser.call("POST", "/timeouts", { script: 30_000, pageLoad: 30_000 });
      return browser;
    } catch (error) {
      driver.kill("SIGKILL");
      throw error;
    }
  }

  private call(method: string, path: string, body?: unknown): Promise<unknown> {
    return call(this.endpoint, method, `/session/${this.session}${path}`, body);
  }

  async goto(url: string): Promise<void> {
    await this.call("POST", "/url", { url });
  }

  async url(): Promise<string> {
    return (await this.call("GET", "/url")) as string;
  }

  /** Runs `script` (a function body) in the page; returns its result. */
  async run<T>(script: string, ...args: unknown[]): Promise<T> {
    return (await this.call("POST", "/execute/sync", { script, args })) as T;
  }

  /** Runs `script` (a function body; its last argument is the callback) and waits for the callback. */
  async runAsync<T>(script: string, ...args: unknown[]): Promise<T> {
    return (await this.call("POST", "/execute/async", { script, args })) as T;
  }

  async stop(): Promise<void> {
    try {
      await call(this.endpoint, "DELETE", `/session/${this.session}`);
    } finally {
      this.driver.kill("SIGTERM");
      await rm(this.profile, { recursive: true, force: true });
    }
  }
}

async function call(endpoint: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${endpoint}${path}`, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = (await response.json()) as { value: unknown };
  if (!response.ok) {
    const error = answer.value as { error?: string; message?: string };
    throw new Error(`webdriver ${method} ${path}: ${error.error ?? response.status}: ${error.message ?? ""}`);
  }
  return answer.value;
}
