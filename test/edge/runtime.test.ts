/**
 * The edge runtime's ports under Node (11.1, 11.3): which connections open on the edge and how the others are
 * refused, and where a client address may come from on a runtime without sockets.
 */
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { edgeRuntime } from "../../adapters/edge/runtime.js";
import { createApp } from "../../src/index.js";

describe("edge connections (11.1, 11.3)", () => {
  const refused: [url: string, says: RegExp][] = [
    ["file:data.db", /SQLite file or :memory: needs a filesystem/],
    [":memory:", /SQLite file or :memory: needs a filesystem/],
    ["postgres://u:secret@db.example.com/app", /PostgreSQL's protocol needs TCP sockets/],
    ["wss://db.example.turso.io", /not WebSockets/],
  ];
  for (const [url, says] of refused)
    it(`"${url}" is a startup error naming what works on the edge`, async () => {
      const start = createApp({ connection: { url }, runtime: edgeRuntime() });
      await expect(start).rejects.toThrow(says);
      await expect(start).rejects.toThrow(/connection\.url: .*use a libSQL server over HTTP/);
      await expect(start).rejects.not.toThrow(/secret/);
    });
});

describe("client addresses on the edge (3.4): no socket, so only a header the deployment names", () => {
  const addressOf = async (runtime: ReturnType<typeof edgeRuntime>, headers: Record<string, string>) => {
    const app = new Hono().get("/", (c) => c.text(runtime.remoteAddress(c) ?? "(unknown)"));
    return (await app.request("/", { headers })).text();
  };
  const spoofed = { "cf-connecting-ip": "203.0.113.9", "x-forwarded-for": "198.51.100.1" };

  it("by default no header is believed: the address is unknown (trust_proxy decides about X-Forwarded-For)", async () => {
    expect(await addressOf(edgeRuntime(), spoofed)).toBe("(unknown)");
  });

  it("with clientAddressHeader: 'cf-connecting-ip' (Cloudflare sets it), that header is the address", async () => {
    const runtime = edgeRuntime({ clientAddressHeader: "CF-Connecting-IP" });
    expect(await addressOf(runtime, spoofed)).toBe("203.0.113.9");
    expect(await addressOf(runtime, {})).toBe("(unknown)");
  });
});
