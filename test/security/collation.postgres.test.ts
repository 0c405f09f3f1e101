/**
 * Text order on PostgreSQL whose default collation is not C (11.2). Real PostgreSQL servers are usually initialised
 * with a language's collation (en_US.UTF-8); the test cluster uses C.UTF-8, which happens to order as SQLite does.
 * Citadel's order must not depend on it: text sorts and compares by code point, as engine-parity.test.ts expects.
 */
import { em, entity, text } from "citadel";
import { serve } from "citadel/adapter/node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { dropDatabase, withDatabase } from "../helpers/engines.js";

// biome-ignore lint/suspicious/noExplicitAny: rows are arbitrary JSON
type Row = Record<string, any>;

const schema = em({ items: entity("items", { grp: text(), name: text() }) });
const q = (value: unknown) => encodeURIComponent(JSON.stringify(value));
/** Code point order, which is SQLite's BINARY order of UTF-8 text. */
const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));

describe("PostgreSQL whose default collation is not C (11.2)", () => {
  let s: ReturnType<typeof serve> | undefined;
  let url = "";
  const words = ["b", "B", "a", "A", "é", "e", "Z", "_x", "ab", "a b", "10", "9"];
  const expected = [...words].sort(byBytes);
  beforeAll(async () => {
    const { baseUrl, prefix } = inject("postgres");
    const name = `${prefix}_collation_${process.pid}`;
    const admin = new pg.Client({ connectionString: withDatabase(baseUrl, "postgres") });
    await admin.connect();
    try {
      await admin.query(
        `create database ${name} template template0 encoding 'UTF8' locale_provider icu icu_locale 'en-US' locale 'C.UTF-8'`,
      );
    } finally {
      await admin.end();
    }
    url = withDatabase(baseUrl, name);
    s = serve({ connection: { url }, config: { data: schema.toJSON() }, port: 0, hostname: "127.0.0.1", quiet: true });
    await s.ready;
    const res = await fetch(`${s.url}/api/data/items`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(words.map((name) => ({ grp: "icu", name }))),
    });
    expect(res.status).toBe(201);
  });
  afterAll(async () => {
    await s?.close();
    if (url) await dropDatabase(url);
  });
  const get = async (where: Row, sort = "name") => {
    const res = await fetch(`${s!.url}/api/data/items?where=${q({ grp: "icu", ...where })}&sort=${sort}&limit=100`);
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(200);
    return body.data.map((r: Row) => r.name);
  };

  it("sorts text by code point", async () => {
    expect(await get({})).toEqual(expected);
    expect(await get({}, "-name")).toEqual([...expected].reverse());
  });

  it("compares text by code point", async () => {
    expect(await get({ name: { $gt: "a" } })).toEqual(expected.filter((w) => byBytes(w, "a") > 0));
    expect(await get({ name: { $lt: "B" } })).toEqual(expected.filter((w) => byBytes(w, "B") < 0));
  });
});
