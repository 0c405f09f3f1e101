/** Field encryption under workerd (10.1, 11.3): keys from the worker's bindings, ciphertext in the database. */
import { randomBytes } from "node:crypto";
import { type Client, createClient } from "@libsql/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Sqld, startSqld } from "../helpers/engines.js";
import { type Bundle, bundleWorker, startWorkerd, type Workerd } from "./workerd.js";

describe("an encrypted field on the edge adapter (10.1, 11.3)", () => {
  let sqld: Sqld;
  let bundle: Bundle;
  let worker: Workerd;
  let db: Client;
  const keys = `edge1:${randomBytes(32).toString("base64")}`;

  beforeAll(async () => {
    [sqld, bundle] = await Promise.all([startSqld(), bundleWorker("test/edge/encrypted-worker.ts")]);
    worker = await startWorkerd(bundle, { LIBSQL_URL: sqld.url, CITADEL_ENCRYPTION_KEYS: keys });
    db = createClient({ url: sqld.url });
  }, 60_000);
  afterAll(async () => {
    db?.close();
    await worker?.close();
    await sqld?.close();
    bundle?.remove();
  });

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${worker.url}${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  };

  it("the CITADEL_ENCRYPTION_KEYS binding encrypts: the database holds ciphertext, the API plaintext (10.1)", async () => {
    const created = await call("POST", "/api/data/notes", { title: "t", secret: "the launch code" });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.data.secret).toBe("the launch code");
    const stored = await db.execute({ sql: "SELECT secret FROM notes WHERE id = ?", args: [created.body.data.id] });
    expect(String(stored.rows[0]!.secret)).toMatch(/^enc:v1:edge1:/);
    expect(String(stored.rows[0]!.secret)).not.toContain("launch");
    const found = await call(
      "GET",
      `/api/data/notes?where=${encodeURIComponent(JSON.stringify({ secret: "the launch code" }))}`,
    );
    expect(found.body.data.map((n: { id: number }) => n.id)).toEqual([created.body.data.id]);
  });
});
