/** §1.6: serve() listens on PORT (default 7654), returns a handle that closes, and seeds a new database once. */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { em, entity, type SeedContext, text } from "citadel";
import { DEFAULT_PORT, type ServeOptions, type ServerHandle, serve } from "citadel/adapter/node";
import { afterAll, describe, expect, it, vi } from "vitest";
import { testDatabase } from "./helpers/server.js";

const schema = em({ notes: entity("notes", { body: text().required() }) });
const dir = mkdtempSync(join(tmpdir(), "citadel-serve-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `serve()` on a database of the engine under test kept under `dir/name`: a second call reopens the same data. */
async function serveOn(name: string, options: Omit<ServeOptions, "connection">): Promise<ServerHandle> {
  const kept = join(dir, name);
  mkdirSync(kept, { recursive: true });
  const database = await testDatabase({ dir: kept });
  const handle = serve({ ...options, connection: database.connection });
  const closeServer = handle.close;
  handle.close = async () => {
    await closeServer();
    await database.close();
  };
  return handle;
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });

describe("serve (1.6)", () => {
  it("defaults to port 7654", () => {
    expect(DEFAULT_PORT).toBe(7654);
  });

  it("listens on PORT when no port is given, and close() frees it", async () => {
    const port = await freePort();
    process.env.PORT = String(port);
    try {
      const handle = serve({ connection: { url: ":memory:" }, config: { data: schema.toJSON() }, quiet: true });
      await handle.ready;
      expect(handle.port).toBe(port);
      expect((await fetch(`http://127.0.0.1:${port}/api/data/notes`)).status).toBe(200);
      await handle.close();
      await expect(fetch(`http://127.0.0.1:${port}/api/data/notes`)).rejects.toThrow();
    } finally {
      delete process.env.PORT;
    }
  });

  it("a request Node cannot parse is answered in the API's error shape, not an empty body (2.1)", async () => {
    const handle = serve({ connection: { url: ":memory:" }, config: { data: schema.toJSON() }, port: 0, quiet: true });
    await handle.ready;
    try {
      const where = encodeURIComponent(
        JSON.stringify({ body: { $in: Array.from({ length: 3000 }, (_, i) => `n${i}`) } }),
      );
      const long = await fetch(`http://127.0.0.1:${handle.port}/api/data/notes?where=${where}`);
      expect(long.status).toBe(431);
      expect(long.headers.get("content-type")).toBe("application/json");
      const body = (await long.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("bad_request");
      expect(body.error.message).toContain("POST /api/data/:entity/query");
      // the server still answers
      expect((await fetch(`http://127.0.0.1:${handle.port}/api/data/notes`)).status).toBe(200);
    } finally {
      await handle.close();
    }
  });

  it("a request Node cannot parse, pipelined behind a change-feed stream, closes the connection: nothing is written into the stream (2.1, 8.2)", async () => {
    const handle = serve({ connection: { url: ":memory:" }, config: { data: schema.toJSON() }, port: 0, quiet: true });
    await handle.ready;
    try {
      const socket = connect(handle.port, "127.0.0.1");
      let received = "";
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => {
        received += chunk;
      });
      const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
      await new Promise<void>((resolve) => socket.on("connect", () => resolve()));
      socket.write("GET /api/data/notes/changes HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
      await vi.waitFor(() => expect(received).toContain("text/event-stream"), { timeout: 15_000 });
      socket.write("NOT HTTP AT ALL\r\n\r\n");
      await closed;
      expect(received.match(/HTTP\/1\.1 /g)).toHaveLength(1);
      expect(received).not.toContain("bad_request");
    } finally {
      await handle.close();
    }
  });

  it("keeps an idle connection open 72 s, past a load balancer's idle timeout, and says so (1.6)", async () => {
    const handle = serve({ connection: { url: ":memory:" }, config: { data: schema.toJSON() }, port: 0, quiet: true });
    await handle.ready;
    try {
      const res = await fetch(`http://127.0.0.1:${handle.port}/api/data/notes`);
      expect(res.status).toBe(200);
      // the client closes its end before the server does (undici reads this hint)
      expect(res.headers.get("keep-alive")).toBe("timeout=72");
    } finally {
      await handle.close();
    }
  });

  it("close() ends a connection a client opened and sent nothing on, instead of waiting out its keep-alive (1.6)", async () => {
    const handle = serve({ connection: { url: ":memory:" }, config: { data: schema.toJSON() }, port: 0, quiet: true });
    await handle.ready;
    // browsers and undici open connections ahead of the requests they will carry
    // (one that keeps its own side open once the server ends its side, too)
    const idle = connect({ port: handle.port, host: "127.0.0.1", allowHalfOpen: true });
    await new Promise<void>((resolve) => idle.on("connect", () => resolve()));
    const ended = new Promise<void>((resolve) => idle.on("end", () => resolve()));
    idle.resume();
    // and one that answered a request, kept alive for the next
    expect((await fetch(`http://127.0.0.1:${handle.port}/api/data/notes`)).status).toBe(200);
    await handle.close();
    await ended;
  });

  it("runs options.seed once, on the new database only", async () => {
    let runs = 0;
    const seed = async (ctx: SeedContext) => {
      runs++;
      await ctx.app.module.data.create("notes", { body: "seeded" });
    };
    const start = async () => {
      const handle = await serveOn("seed", {
        config: { data: schema.toJSON() },
        options: { seed },
        port: 0,
        quiet: true,
      });
      await handle.ready;
      return handle;
    };
    const first = await start();
    await first.close();
    const second = await start();
    const notes = await (await fetch(`${second.url}/api/data/notes`)).json();
    await second.close();
    expect(runs).toBe(1);
    expect(notes.data.map((n: { body: string }) => n.body)).toEqual(["seeded"]);
  });

  it("a seed that throws fails startup and runs again at the next start (1.6)", async () => {
    const start = (seed: (ctx: SeedContext) => Promise<void>) =>
      serveOn("retry", { config: { data: schema.toJSON() }, options: { seed }, port: 0, quiet: true });
    const failing = await start(async () => {
      throw new Error("seed broke");
    });
    await expect(failing.ready).rejects.toThrow("seed broke");
    await failing.close();
    const working = await start(async (ctx) => {
      await ctx.app.module.data.create("notes", { body: "second try" });
    });
    await working.ready;
    const notes = await (await fetch(`${working.url}/api/data/notes`)).json();
    await working.close();
    expect(notes.data.map((n: { body: string }) => n.body)).toEqual(["second try"]);
  });

  it("a startup failure rejects ready with the config path", async () => {
    const handle = serve({
      connection: { url: ":memory:" },
      config: { data: { entities: { notes: { fields: { x: { type: "blob" } } } } } } as never,
      quiet: true,
    });
    await expect(handle.ready).rejects.toThrow("config.data.entities.notes.fields.x.type");
    await handle.close();
  });
});

describe("a port already in use (1.6)", () => {
  it("rejects ready naming the address, and the app it built is closed", async () => {
    const port = await freePort();
    const blocker = createServer().listen(port, "127.0.0.1");
    await new Promise((resolve) => blocker.once("listening", resolve));
    try {
      const handle = await serveOn("taken", {
        config: { data: schema.toJSON() },
        port,
        hostname: "127.0.0.1",
        quiet: true,
      });
      await expect(handle.ready).rejects.toThrow(`EADDRINUSE: address already in use 127.0.0.1:${port}`);
      await expect(handle.app!.db.selectFrom("notes").selectAll().execute()).rejects.toThrow();
      await handle.close();
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
