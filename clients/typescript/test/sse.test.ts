/**
 * The fetch-based event-stream reader on its own, against a local HTTP server
 * that misbehaves on purpose: split chunks, CRLF, comments, `retry`, `id`,
 * dropped connections, error statuses.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { after, before, describe, it } from "node:test";

import { CalsyncError, SseParser, openFetchEventStream, type SseMessage } from "@calsync/client";

import { eventually } from "./harness.js";

describe("SseParser", () => {
  it("parses events across arbitrary chunk boundaries and line ends", () => {
    const stream =
      "\uFEFF: keep-alive comment\r\nevent: ready\r\ndata: {}\r\n\r\n" +
      "event: change\ndata: {\"kind\":\"events\",\ndata: \"connection_ids\":[1]}\nid: 7\n\n" +
      "data:no space\rretry: 250\r\r" +
      "event: ignored-without-data\n\n" +
      "data\n\n";
    const expected: SseMessage[] = [
      { event: "ready", data: "{}", lastEventId: "" },
      { event: "change", data: '{"kind":"events",\n"connection_ids":[1]}', lastEventId: "7" },
      { event: "message", data: "no space", lastEventId: "7" },
      { event: "message", data: "", lastEventId: "7" },
    ];
    // Whole, one character at a time, and in uneven pieces: the same events.
    for (const size of [stream.length, 1, 2, 3, 7]) {
      const parser = new SseParser();
      const got: SseMessage[] = [];
      for (let at = 0; at < stream.length; at += size) got.push(...parser.feed(stream.slice(at, at + size)));
      assert.deepEqual(got, expected, `chunks of ${size}`);
      assert.equal(parser.retry, 250);
    }
  });

  it("waits for the LF after a CR at a chunk's end", () => {
    const parser = new SseParser();
    assert.deepEqual(parser.feed("data: a\r"), []);
    assert.deepEqual(parser.feed("\n\r"), []);
    assert.deepEqual(parser.feed("\n"), [{ event: "message", data: "a", lastEventId: "" }]);
  });
});

describe("openFetchEventStream", () => {
  let server: Server;
  let base: string;
  let handler: (request: IncomingMessage, response: ServerResponse) => void = () => {};
  const requests: IncomingMessage[] = [];

  before(async () => {
    server = createServer((request, response) => {
      requests.push(request);
      handler(request, response);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const streamHead = { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" };

  it("reconnects after each drop with Last-Event-ID, and stops on close()", async () => {
    requests.length = 0;
    let served = 0;
    handler = (_request, response) => {
      served += 1;
      response.writeHead(200, streamHead);
      // Each connection: one event (in two writes), then the server hangs up.
      response.write(`retry: 30\nid: ${served}\nevent: tick\nda`);
      setTimeout(() => response.end(`ta: ${served}\n\n`), 5);
    };
    const messages: SseMessage[] = [];
    const errors: [CalsyncError, boolean][] = [];
    let opened = 0;
    const stream = openFetchEventStream({
      url: `${base}/stream`,
      fetch,
      headers: () => ({ Authorization: "Bearer cst_test" }),
      onOpen: () => opened++,
      onMessage: (message) => messages.push(message),
      onError: (error, willRetry) => errors.push([error, willRetry]),
      initialDelayMs: 10,
      maxDelayMs: 50,
    });
    await eventually("three connections", () => messages.length >= 3);
    stream.close();
    assert.equal(stream.closed, true);
    const seen = requests.length;
    assert.deepEqual(
      messages.slice(0, 3).map((m) => [m.event, m.data]),
      [
        ["tick", "1"],
        ["tick", "2"],
        ["tick", "3"],
      ],
    );
    assert.ok(opened >= 3);
    assert.ok(errors.every(([error, willRetry]) => error.code === "stream_ended" && willRetry));
    const first = requests[0] as IncomingMessage;
    assert.equal(first.headers.authorization, "Bearer cst_test");
    assert.equal(first.headers.accept, "text/event-stream");
    assert.equal(first.headers["last-event-id"], undefined);
    assert.equal((requests[1] as IncomingMessage).headers["last-event-id"], "1");
    assert.equal((requests[2] as IncomingMessage).headers["last-event-id"], "2");
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(requests.length, seen, "nothing after close()");
  });

  it("backs off while the server fails, then recovers", async () => {
    requests.length = 0;
    const times: number[] = [];
    handler = (_request, response) => {
      times.push(Date.now());
      if (times.length <= 4) {
        response.writeHead(503, { "Content-Type": "application/json" });
        response.end(JSON.stringify({ error: { code: "unavailable", message: "the database is unavailable" } }));
        return;
      }
      response.writeHead(200, streamHead);
      response.write("event: ready\ndata: {}\n\n");
    };
    const errors: CalsyncError[] = [];
    const messages: SseMessage[] = [];
    const stream = openFetchEventStream({
      url: `${base}/stream`,
      fetch,
      onMessage: (message) => messages.push(message),
      onError: (error, willRetry) => {
        assert.equal(willRetry, true);
        errors.push(error);
      },
      initialDelayMs: 20,
      maxDelayMs: 1_000,
    });
    try {
      await eventually("recovery", () => messages.length === 1);
    } finally {
      stream.close();
    }
    assert.equal(errors.length, 4);
    assert.ok(errors.every((e) => e.status === 503 && e.code === "unavailable"));
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    // 20, 40, 80, 160 ms (less up to 20 % jitter): each wait at least ~1.6x the one before.
    assert.ok(gaps[3]! > gaps[0]! * 3, `waits grow: ${gaps.join(", ")}`);
    assert.ok(gaps[0]! >= 15, `the first wait is the initial delay: ${gaps.join(", ")}`);
  });

  it("gives up on a 401 and on a 404, and retries on a non-stream answer", async () => {
    for (const status of [401, 404]) {
      handler = (_request, response) => {
        response.writeHead(status, { "Content-Type": "application/json" });
        response.end(JSON.stringify({ error: { code: status === 401 ? "unauthenticated" : "not_found", message: "no" } }));
      };
      requests.length = 0;
      const errors: [CalsyncError, boolean][] = [];
      const stream = openFetchEventStream({
        url: `${base}/stream`,
        fetch,
        onMessage: () => assert.fail("no messages"),
        onError: (error, willRetry) => errors.push([error, willRetry]),
        initialDelayMs: 10,
      });
      await eventually("the error", () => errors.length === 1);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(requests.length, 1, "no retry");
      assert.equal(stream.closed, true);
      assert.equal(errors[0]?.[0].status, status);
      assert.equal(errors[0]?.[1], false);
    }

    let served = 0;
    handler = (_request, response) => {
      served += 1;
      if (served === 1) {
        response.writeHead(200, { "Content-Type": "text/html" });
        response.end("<html>a captive portal</html>");
      } else {
        response.writeHead(200, streamHead);
        response.write("event: ready\ndata: {}\n\n");
      }
    };
    const errors: CalsyncError[] = [];
    const messages: SseMessage[] = [];
    const stream = openFetchEventStream({
      url: `${base}/stream`,
      fetch,
      onMessage: (message) => messages.push(message),
      onError: (error) => errors.push(error),
      initialDelayMs: 10,
    });
    try {
      await eventually("the stream after a wrong answer", () => messages.length === 1);
    } finally {
      stream.close();
    }
    assert.equal(errors[0]?.code, "invalid_response");
  });

  it("close() during a connection aborts it at once", async () => {
    let open: ServerResponse | undefined;
    handler = (_request, response) => {
      open = response;
      response.writeHead(200, streamHead);
      response.write(": hello\n\n");
    };
    const errors: CalsyncError[] = [];
    const stream = openFetchEventStream({
      url: `${base}/stream`,
      fetch,
      onMessage: () => {},
      onError: (error) => errors.push(error),
    });
    await eventually("the connection", () => open !== undefined);
    await new Promise((resolve) => setTimeout(resolve, 20));
    stream.close();
    await eventually("the server to see the hang-up", () => open?.destroyed || open?.writableEnded || open?.closed);
    assert.deepEqual(errors, [], "closing is not an error");
  });
});
