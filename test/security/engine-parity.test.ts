/**
 * Engine parity (§2, §2.3, §4, §11.2): the same request answers the same on SQLite, a libSQL server and
 * PostgreSQL — the same status, rows, order, counts and error bodies — never a 500, and never the engine's own
 * words (SQL, table names, driver messages). Every expectation is computed from the contract (SQLite's
 * semantics where the contract inherits them: text compared by code point / UTF-8 bytes, NULLs first
 * ascending), never read from one engine's output.
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { boolean, date, datetime, em, entity, index, json, number, relation, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Booted, boot } from "../guard/helpers.js";
import { startServer, type TestResponse, type TestServer } from "../helpers/server.js";

// biome-ignore lint/suspicious/noExplicitAny: rows are arbitrary JSON
type Row = Record<string, any>;

const schema = em(
  {
    items: entity("items", {
      grp: text(),
      name: text(),
      label: text(),
      score: number(),
      qty: number({ integer: true }),
      flag: boolean(),
      day: date(),
      at: datetime(),
      starts: datetime().default("2026-01-01T10:00:00+02:00"),
      data: json(),
      code: text().unique(),
    }),
    pairs: entity("pairs", { a: text().required(), b: text().required() }),
    notes: entity("notes", { body: text(), rank: number({ integer: true }), grp: text() }),
    labels: entity("labels", { name: text() }),
    users: entity("users", {}),
  },
  ({ items, pairs, notes, labels }) => [
    relation(notes, "item").manyToOne(items),
    relation(items, "labels").manyToMany(labels),
    index(pairs).on(["a", "b"], true),
  ],
);

const q = (value: unknown) => encodeURIComponent(JSON.stringify(value));
/** Code point order, which is SQLite's BINARY order of UTF-8 text. */
const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));

/** Never a 500, and never the engine's words in a response (§2.1, §2.3). */
function expectNoLeak(res: TestResponse) {
  expect(res.status, res.text).not.toBe(500);
  const lower = res.text.toLowerCase();
  for (const word of [
    "select ",
    "insert into",
    "sqlite",
    "postgres",
    "syntax error",
    "operator does not exist",
    "violates",
    "constraint",
    'relation "',
    "duplicate key",
    "/src/",
    "sqlstate",
    "btree",
    "index row",
  ])
    expect(lower, res.text).not.toContain(word);
}

/**
 * `n` random lowercase letters, for values an engine cannot compress, which a 201 echoes back. There is no "t"
 * among them: each word expectNoLeak looks for has a "t" or a character that is not a letter, so an echoed
 * value cannot spell one by chance (with all 26 letters, 2,000 of them hold "btree" about once in 6,000 runs).
 */
const randomLetters = (n: number) =>
  Array.from({ length: n }, () => "abcdefghijklmnopqrsuvwxyz"[Math.floor(Math.random() * 25)]).join("");

let server: TestServer;
const req = async (method: string, path: string, body?: unknown) => {
  const res = await server.request(method, path, body);
  expectNoLeak(res);
  return res;
};
const create = async (entityName: string, body: unknown) => {
  const res = await req("POST", `/api/data/${entityName}`, body);
  expect(res.status, res.text).toBe(201);
  return res.body.data;
};
/** A list of items in group `grp` with extra query parameters; asserts 200. */
const list = async (grp: string, params = "", where: Row = {}) => {
  const limit = params.includes("limit=") ? "" : "&limit=1000";
  const res = await req("GET", `/api/data/items?where=${q({ grp, ...where })}${limit}${params}`);
  expect(res.status, res.text).toBe(200);
  return res.body;
};
const names = (body: { data: Row[] }) => body.data.map((r) => r.name);
const listOf = (grp: string, params: string) => list(grp, params);
/** The same list through POST /query (a where too long for a URL). */
const query = async (body: Row) => {
  const res = await req("POST", "/api/data/items/query", body);
  expect(res.status, res.text).toBe(200);
  return res.body;
};

beforeAll(async () => {
  server = await startServer({ data: schema.toJSON() });
});
afterAll(() => server?.close());

describe("text order is code point order on every engine (2.2, 11.2)", () => {
  const words = [
    "b",
    "B",
    "a",
    "A",
    "é",
    "e",
    "E",
    "Z",
    "_x",
    " space",
    "10",
    "9",
    "ä",
    "ß",
    "ss",
    "😀",
    "\uFF01",
    "a b",
    "ab",
    "a-b",
    "Ab",
    "résumé",
    "resume",
    "Resume",
  ];
  const expected = [...words].sort(byBytes);
  beforeAll(async () => {
    await create(
      "items",
      words.map((name) => ({ grp: "order", name })),
    );
  });

  it("sort asc and desc, whole and by pages", async () => {
    expect(names(await list("order", "&sort=name"))).toEqual(expected);
    expect(names(await list("order", "&sort=-name"))).toEqual([...expected].reverse());
    const pages: string[] = [];
    for (let offset = 0; offset < words.length; offset += 5)
      pages.push(...names(await list("order", `&sort=name&limit=5&offset=${offset}`)));
    expect(pages).toEqual(expected);
  });

  it("$gt, $lt and $between compare by code point", async () => {
    for (const pivot of ["a", "B", "e", "resume", "ss", "Z"]) {
      const gt = names(await list("order", "&sort=name", { name: { $gt: pivot } }));
      expect(gt, `$gt ${pivot}`).toEqual(expected.filter((w) => byBytes(w, pivot) > 0));
      const lte = names(await list("order", "&sort=name", { name: { $lte: pivot } }));
      expect(lte, `$lte ${pivot}`).toEqual(expected.filter((w) => byBytes(w, pivot) <= 0));
    }
    const between = names(await list("order", "&sort=name", { name: { $between: ["A", "a"] } }));
    expect(between).toEqual(expected.filter((w) => byBytes(w, "A") >= 0 && byBytes(w, "a") <= 0));
  });
});

describe("NULLs sort first ascending, last descending (2.2, 11.2)", () => {
  let rows: Row[];
  beforeAll(async () => {
    rows = await create("items", [
      { grp: "nulls", name: "n1", label: "m", flag: true, score: 2.5 },
      { grp: "nulls", name: "n2", label: null, flag: null, score: null },
      { grp: "nulls", name: "n3", label: "a", flag: false, score: -1 },
      { grp: "nulls", name: "n4", label: null, flag: true, score: 0 },
      { grp: "nulls", name: "n5", label: "Z", flag: null, score: 1e-7 },
    ]);
  });

  it("a text field", async () => {
    expect(names(await list("nulls", "&sort=label"))).toEqual(["n2", "n4", "n5", "n3", "n1"]);
    expect(names(await list("nulls", "&sort=-label"))).toEqual(["n1", "n3", "n5", "n2", "n4"]);
    expect(names(await list("nulls", "&sort=label&limit=2&offset=1"))).toEqual(["n4", "n5"]);
    expect(names(await list("nulls", "&sort=-label&limit=2&offset=3"))).toEqual(["n2", "n4"]);
  });

  it("a boolean field (NULL, false, true)", async () => {
    expect(names(await list("nulls", "&sort=flag"))).toEqual(["n2", "n5", "n3", "n1", "n4"]);
    expect(names(await list("nulls", "&sort=-flag,-name"))).toEqual(["n4", "n1", "n3", "n5", "n2"]);
  });

  it("a number field", async () => {
    expect(names(await list("nulls", "&sort=score"))).toEqual(["n2", "n3", "n4", "n5", "n1"]);
    expect(names(await list("nulls", "&sort=-score"))).toEqual(["n1", "n5", "n4", "n3", "n2"]);
  });

  it("booleans in where and select", async () => {
    expect(names(await list("nulls", "&sort=name", { flag: true }))).toEqual(["n1", "n4"]);
    expect(names(await list("nulls", "&sort=name", { flag: false }))).toEqual(["n3"]);
    expect(names(await list("nulls", "&sort=name", { flag: { $ne: true } }))).toEqual(["n3"]);
    expect(names(await list("nulls", "&sort=name", { flag: { $in: [true, false] } }))).toEqual(["n1", "n3", "n4"]);
    expect(names(await list("nulls", "&sort=name", { flag: { $nin: [true] } }))).toEqual(["n3"]);
    expect(names(await list("nulls", "&sort=name", { flag: { $isnull: true } }))).toEqual(["n2", "n5"]);
    expect(names(await list("nulls", "&sort=name", { $not: { flag: true } }))).toEqual(["n3"]);
    const selected = await list("nulls", "&sort=name&select=flag,name");
    expect(selected.data).toEqual([
      { name: "n1", flag: true },
      { name: "n2", flag: null },
      { name: "n3", flag: false },
      { name: "n4", flag: true },
      { name: "n5", flag: null },
    ]);
    expect(rows.map((r) => r.flag)).toEqual([true, null, false, true, null]);
  });

  it("in a with expansion: per-parent sort with NULLs, limit and a where", async () => {
    const [p1, p2] = await create("items", [
      { grp: "with", name: "p1" },
      { grp: "with", name: "p2" },
    ]);
    await create("notes", [
      { item_id: p1.id, body: "b", rank: 2 },
      { item_id: p1.id, body: null, rank: null },
      { item_id: p1.id, body: "B", rank: 1 },
      { item_id: p1.id, body: "a", rank: null },
      { item_id: p2.id, body: null, rank: 3 },
      { item_id: p2.id, body: "é", rank: 3 },
      { item_id: p2.id, body: "e", rank: 3 },
    ]);
    const w = (opts: Row) => q({ notes: opts });
    const notesOf = (body: { data: Row[] }) => body.data.map((r) => r.notes.map((n: Row) => n.body));
    const list = (grp: string, params: string) => listOf(grp, `&limit=10${params}`);
    expect(notesOf(await list("with", `&sort=name&with=${w({ sort: "body" })}`))).toEqual([
      [null, "B", "a", "b"],
      [null, "e", "é"],
    ]);
    expect(notesOf(await list("with", `&sort=name&with=${w({ sort: "-body", limit: 2 })}`))).toEqual([
      ["b", "a"],
      ["é", "e"],
    ]);
    expect(notesOf(await list("with", `&sort=name&with=${w({ sort: "rank,-body", limit: 3 })}`))).toEqual([
      ["a", null, "B"],
      ["é", "e", null],
    ]);
    expect(
      notesOf(await list("with", `&sort=name&with=${w({ sort: "-rank", where: { body: { $gt: "a" } } })}`)),
    ).toEqual([["b"], ["é", "e"]]);
  });
});

describe("$like and $ilike: only * is a wildcard (2.2, 11.2)", () => {
  const words = ["a_c", "abc", "a%c", "a\\c", "a*c", "a?c", "a[b]c", "A_C", "ABC", "ac", "a\\\\c", "Ä_c", "ä_c"];
  beforeAll(async () => {
    await create(
      "items",
      words.map((name) => ({ grp: "like", name })),
    );
  });
  const like = async (op: "$like" | "$ilike", pattern: string) =>
    names(await list("like", "&sort=name", { name: { [op]: pattern } }));
  const matching = (pattern: string, fold: boolean) => {
    const f = (s: string) => (fold ? s.replace(/[A-Z]/g, (c) => c.toLowerCase()) : s);
    const re = new RegExp(
      `^${f(pattern)
        .split("*")
        .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
        .join(".*")}$`,
      "s",
    );
    return words.filter((w) => re.test(f(w))).sort(byBytes);
  };

  for (const pattern of [
    "a_c",
    "a%c",
    "a\\c",
    "a*c",
    "a?c",
    "a[b]c",
    "a\\\\c",
    "*_*",
    "*%*",
    "*\\*",
    "ä_c",
    "*[*",
    "**",
  ])
    it(`pattern ${JSON.stringify(pattern)}`, async () => {
      expect(await like("$like", pattern), "$like").toEqual(matching(pattern, false));
      expect(await like("$ilike", pattern), "$ilike").toEqual(matching(pattern, true));
      expect(names(await list("like", "&sort=name", { $not: { name: { $like: pattern } } })), "$not $like").toEqual(
        words.filter((w) => !matching(pattern, false).includes(w)).sort(byBytes),
      );
    });
});

describe("values round trip unchanged (2.4, 11.2)", () => {
  it("JSON: unicode, nesting, numbers, escapes", async () => {
    const values = [
      { s: "é😀\u2028\u2029\t\"'\\", n: [1, -0.5, 1e-7, 1.7976931348623157e308, 5e-324, 9007199254740991] },
      { deep: { a: { b: { c: { d: [[[{ e: null }]]] } } } }, empty: {}, list: [] },
      [1, "two", { three: 3 }, [false, true, null]],
      "just a string",
      42,
      true,
      { "key with spaces": 1, ключ: "значение", "": "empty key" },
    ];
    for (const data of values) {
      const row = await create("items", { grp: "json", data });
      expect(row.data).toEqual(data);
      const back = await req("GET", `/api/data/items/${row.id}`);
      expect(back.body.data.data).toEqual(data);
    }
    expect((await list("json", "", { data: { $isnull: false } })).data).toHaveLength(values.length);
  });

  it("numbers: fractions, tiny and huge doubles compare and sort as numbers", async () => {
    const scores = [0.1 + 0.2, 0.3, 1e-300, 5e-324, -0.5, 1.7976931348623157e308, -1e308, 2 ** 60, 100, 9.5];
    const rows = await create(
      "items",
      scores.map((score, i) => ({ grp: "num", name: `s${i}`, score })),
    );
    expect(rows.map((r: Row) => r.score)).toEqual(scores);
    const order = scores
      .map((s, i) => ({ s, name: `s${i}` }))
      .sort((a, b) => a.s - b.s || a.name.localeCompare(b.name))
      .map((x) => x.name);
    expect(names(await list("num", "&sort=score"))).toEqual(order);
    expect(names(await list("num", "&sort=name", { score: 0.1 + 0.2 }))).toEqual(["s0"]);
    expect(names(await list("num", "&sort=name", { score: { $gt: 0.3 } }))).toEqual(
      scores
        .map((s, i) => [s, `s${i}`] as const)
        .filter(([s]) => s > 0.3)
        .map(([, n]) => n)
        .sort(),
    );
  });

  it("dates and datetimes compare as the text they are", async () => {
    const days = ["2024-01-31", "2023-12-01", "2024-02-29", "1999-07-04"];
    await create(
      "items",
      days.map((day, i) => ({ grp: "dates", name: `d${i}`, day })),
    );
    expect(names(await list("dates", "&sort=day"))).toEqual(["d3", "d1", "d0", "d2"]);
    expect(names(await list("dates", "&sort=name", { day: { $gte: "2024-01-01" } }))).toEqual(["d0", "d2"]);
    expect(names(await list("dates", "&sort=name", { day: { $between: ["2000-01-01", "2024-01-31"] } }))).toEqual([
      "d0",
      "d1",
    ]);
  });

  it("a date-time in a where is compared as the column holds it: in UTC, as written (2.3)", async () => {
    await create("items", [
      { grp: "times", name: "utc", at: "2026-01-01T00:00:00Z" },
      // 2025-12-31T20:00:00.000Z
      { grp: "times", name: "tokyo", at: "2026-01-01T05:00:00+09:00" },
    ]);
    // the exact text written finds its row, though the column holds 2026-01-01T00:00:00.000Z
    expect(names(await list("times", "", { at: "2026-01-01T00:00:00Z" }))).toEqual(["utc"]);
    expect(names(await list("times", "", { at: { $in: ["2026-01-01T09:00:00+09:00"] } }))).toEqual(["utc"]);
    // an offset is a time, not text: 03:00+09:00 is 18:00 UTC the day before, earlier than both rows
    expect(names(await list("times", "&sort=name", { at: { $gt: "2026-01-01T03:00:00+09:00" } }))).toEqual([
      "tokyo",
      "utc",
    ]);
    expect(names(await list("times", "&sort=name", { at: { $gte: "2026-01-01" } }))).toEqual(["utc"]);
    const updated = await req("PATCH", "/api/data/items", {
      update: { label: "new year" },
      where: { grp: "times", at: "2026-01-01T00:00:00Z" },
    });
    expect(updated.status, updated.text).toBe(200);
    expect(updated.body.data.map((r: Row) => r.name)).toEqual(["utc"]);
  });

  it("a date-time default is stored as a write stores it, so a where finds defaulted rows (1.4, 2.3)", async () => {
    await create("items", [
      { grp: "defaulted", name: "default" },
      { grp: "defaulted", name: "written", starts: "2026-01-01T10:00:00+02:00" },
    ]);
    const found = await list("defaulted", "&sort=name", { starts: "2026-01-01T10:00:00+02:00" });
    expect(names(found)).toEqual(["default", "written"]);
    expect(found.data.map((r: Row) => r.starts)).toEqual(["2026-01-01T08:00:00.000Z", "2026-01-01T08:00:00.000Z"]);
    expect(names(await list("defaulted", "&sort=name", { starts: { $lt: "2026-01-01T09:00:00Z" } }))).toEqual([
      "default",
      "written",
    ]);
  });

  it("a date-time without an offset is UTC whatever the server's time zone; years past 9999 are refused (2.3, 11.4)", async () => {
    const zone = process.env.TZ;
    process.env.TZ = "Asia/Tokyo";
    try {
      const row = await create("items", { grp: "zoned", name: "noon", at: "2026-01-01T12:00" });
      expect(row.at).toBe("2026-01-01T12:00:00.000Z");
      expect(names(await list("zoned", "", { at: { $gte: "2026-01-01 12:00" } }))).toEqual(["noon"]);
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
    // it would be stored as +010000-01-01T04:00:00.000Z, which sorts before every four-digit year
    const late = await req("POST", "/api/data/items", { grp: "zoned", at: "9999-12-31T23:00:00-05:00" });
    expect(late.status, late.text).toBe(400);
    const where = await req("GET", `/api/data/items?where=${q({ at: { $lt: "9999-12-31T23:00:00-05:00" } })}`);
    expect(where.status, where.text).toBe(400);
  });

  it("a where's date that is none is 400 naming it, as a write's is (2.3)", async () => {
    const cases: [Row, string][] = [
      [{ created_at: { $gt: "not a date" } }, "created_at"],
      [{ at: "2026-13-01T00:00:00Z" }, "at"],
      [{ day: "2026-02-30" }, "day"],
      [{ day: "2026-01-01T00:00:00Z" }, "day"],
      [{ day: { $between: ["2026-01-01", "soon"] } }, "day"],
    ];
    for (const [where, field] of cases) {
      const res = await req("GET", `/api/data/items?where=${q(where)}`);
      expect(res.status, `${JSON.stringify(where)}: ${res.text}`).toBe(400);
      expect(res.body.error.message).toContain(`"${field}"`);
    }
    const write = await req("POST", "/api/data/items", { grp: "bad", day: "2026-02-30" });
    expect(write.status, write.text).toBe(400);
    expect(write.body.error.fields.day).toBeDefined();
  });

  it("a json value holding a number JSON cannot write (1e309) is 400, not stored as null (2.4)", async () => {
    const res = await server.request("POST", "/api/data/items", '{"grp":"inf","data":{"a":[1, 1e309]}}');
    expect(res.status, res.text).toBe(400);
    expect(res.body.error.fields.data).toEqual(["must hold finite numbers only"]);
    expect((await list("inf")).data).toEqual([]);
  });

  it("a long text (200,000 characters, astral ones included) round trips and matches", async () => {
    const long = "é😀x".repeat(50_000);
    const row = await create("items", { grp: "long", name: long });
    expect(row.name).toBe(long);
    expect(names(await query({ where: { grp: "long", name: long } }))).toEqual([long]);
    expect((await query({ where: { grp: "long", name: { $like: `*${"é😀x".repeat(200)}*` } } })).data).toHaveLength(1);
  });

  it("a unique text field takes up to 2,000 bytes on every engine, and refuses more by name (PostgreSQL indexes 2,704)", async () => {
    // random, so an engine cannot compress it into an index entry
    const value = randomLetters(2000);
    const res = await req("POST", "/api/data/items", { grp: "longcode", code: value });
    expect(res.status, res.text).toBe(201);
    const again = await req("POST", "/api/data/items", { grp: "longcode", code: value });
    expect(again.status, again.text).toBe(409);
    for (const code of [randomLetters(4000), `${randomLetters(1999)}é`]) {
      const long = await req("POST", "/api/data/items", { grp: "longcode", code });
      expect(long.status, long.text).toBe(400);
      expect(long.body.error.fields.code[0]).toBe("must be at most 2000 bytes of UTF-8 (the field is indexed)");
    }
  });
});

describe("limits, offsets and counts (2.1, 2.3, 11.2)", () => {
  beforeAll(async () => {
    await create(
      "items",
      Array.from({ length: 7 }, (_, i) => ({ grp: "page", name: `p${i}`, qty: i % 3 })),
    );
  });

  it("limit 0, a huge offset, count=false", async () => {
    const res = await req("GET", `/api/data/items?where=${q({ grp: "page" })}&limit=0`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toEqual([]);
    expect(res.body.meta).toMatchObject({ items: 0, count: 7, limit: 0, offset: 0 });
    for (const offset of [7, 1000, 2 ** 31, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER]) {
      const far = await req("GET", `/api/data/items?where=${q({ grp: "page" })}&offset=${offset}`);
      expect(far.status, far.text).toBe(200);
      expect(far.body.data).toEqual([]);
      expect(far.body.meta).toMatchObject({ items: 0, count: 7, offset });
    }
    const nocount = await req("GET", `/api/data/items?where=${q({ grp: "page" })}&offset=5&count=false&sort=-name`);
    expect(nocount.body.data.map((r: Row) => r.name)).toEqual(["p1", "p0"]);
    expect(nocount.body.meta).toEqual({ items: 2, limit: expect.any(Number), offset: 5 });
  });

  it("count and exists endpoints, canonical and bknd", async () => {
    const w = { grp: "page", qty: { $gte: 1 } };
    const count = await req("GET", `/api/data/items/count?where=${q(w)}`);
    expect(count.body).toEqual({ data: { count: 4 } });
    expect((await req("POST", "/api/data/entity/items/fn/count", w)).body).toMatchObject({ entity: "items", count: 4 });
    expect((await req("POST", "/api/data/entity/items/fn/exists", w)).body).toMatchObject({
      entity: "items",
      exists: true,
    });
    expect(
      (await req("POST", "/api/data/entity/items/fn/exists", { grp: "page", qty: { $gt: 2 } })).body,
    ).toMatchObject({ entity: "items", exists: false });
  });

  it("select of every field, by query string and by query body", async () => {
    const fields = [
      "id",
      "grp",
      "name",
      "label",
      "score",
      "qty",
      "flag",
      "day",
      "at",
      "data",
      "code",
      "created_at",
      "updated_at",
    ];
    const res = await req(
      "GET",
      `/api/data/items?where=${q({ grp: "page" })}&sort=name&limit=1&select=${fields.join(",")}`,
    );
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.body.data[0]).sort()).toEqual([...fields].sort());
    const body = await req("POST", "/api/data/items/query", {
      where: { grp: "page" },
      select: fields,
      sort: [{ by: "qty", dir: "desc" }, { by: "name" }],
      limit: 3,
    });
    expect(body.status, body.text).toBe(200);
    expect(body.body.data.map((r: Row) => r.name)).toEqual(["p2", "p5", "p1"]);
  });
});

describe("relational where in lists and in writes to many rows (4.13, 11.2)", () => {
  beforeAll(async () => {
    const [r1, r2] = await create("items", [
      { grp: "rel", name: "r1" },
      { grp: "rel", name: "r2" },
      { grp: "rel", name: "r3" },
    ]);
    await create("notes", [
      { item_id: r1.id, body: "x", rank: 1 },
      { item_id: r1.id, body: "y", rank: 5 },
      { item_id: r2.id, body: "x", rank: 1 },
    ]);
  });

  it("$some, $none, $every (vacuous for a row without notes)", async () => {
    const n = async (where: Row) => names(await list("rel", "&sort=name", where));
    expect(await n({ notes: { $some: { rank: { $gt: 2 } } } })).toEqual(["r1"]);
    expect(await n({ notes: { $none: { body: "x" } } })).toEqual(["r3"]);
    expect(await n({ notes: { $every: { body: "x" } } })).toEqual(["r2", "r3"]);
    expect(await n({ notes: { $every: { rank: { $lt: 10 } } } })).toEqual(["r1", "r2", "r3"]);
  });

  it("update many and delete many with a relational where", async () => {
    const up = await req("PATCH", "/api/data/items", {
      update: { label: "touched" },
      where: { grp: "rel", notes: { $some: { body: "x" } } },
    });
    expect(up.status, up.text).toBe(200);
    expect(names(await list("rel", "&sort=name", { label: "touched" }))).toEqual(["r1", "r2"]);
    const del = await req("DELETE", "/api/data/items", { grp: "rel", notes: { $none: {} } });
    expect(del.status, del.text).toBe(200);
    expect(names(await list("rel", "&sort=name"))).toEqual(["r1", "r2"]);
  });

  // notes.body is text, items.id an integer: SQLite would compare them by its affinity rules, PostgreSQL not at
  // all; the where is refused on every engine with a 400 that names both sides
  for (const where of [
    { $exists: { entity: "notes", where: { body: "@row.id" } } },
    { $exists: { entity: "notes", where: { body: "@row.flag" } } },
    { $exists: { entity: "notes", where: { rank: "@row.name" } } },
    { notes: { $some: { body: { $gt: "@row.qty" } } } },
  ])
    it(`@row of another type, ${JSON.stringify(where)}: 400 on every engine, never a 500`, async () => {
      const res = await req("GET", `/api/data/items?where=${q({ grp: "rel", ...where })}`);
      expect(res.status, res.text).toBe(400);
      expect(res.body.error.message).toMatch(/cannot be compared$/);
    });
});

describe("with on many-to-many, reference routes, deleting a referenced row (2, 1.3, 11.2)", () => {
  let item: Row;
  let other: Row;
  beforeAll(async () => {
    [item, other] = await create("items", [
      { grp: "m2m", name: "i1" },
      { grp: "m2m", name: "i2" },
    ]);
    const labels = await create("labels", [{ name: "b" }, { name: null }, { name: "B" }, { name: "a" }, { name: "é" }]);
    const table = (await server.app.db.introspection.getTables()).find((t) => t.name === "items_labels");
    const cols = table?.columns.map((c) => c.name) ?? [];
    const self = cols.find((c) => c.startsWith("item"));
    const target = cols.find((c) => c.startsWith("label"));
    if (!self || !target) throw new Error(`unexpected junction columns: ${cols.join(",")}`);
    await server.app.db
      .insertInto("items_labels")
      .values([
        ...labels.map((l: Row) => ({ [self]: item.id, [target]: l.id })),
        { [self]: other.id, [target]: labels[0].id },
      ])
      .execute();
  });

  it("with labels sorted (NULL first ascending, last descending), limited per parent", async () => {
    const labelsOf = (body: { data: Row[] }) => body.data.map((r) => r.labels.map((l: Row) => l.name));
    expect(labelsOf(await list("m2m", `&limit=10&sort=name&with=${q({ labels: { sort: "name" } })}`))).toEqual([
      [null, "B", "a", "b", "é"],
      ["b"],
    ]);
    expect(
      labelsOf(await list("m2m", `&limit=10&sort=name&with=${q({ labels: { sort: "-name", limit: 3 } })}`)),
    ).toEqual([["é", "b", "a"], ["b"]]);
    expect(
      labelsOf(
        await list(
          "m2m",
          `&limit=10&sort=-name&with=${q({ labels: { sort: "name", where: { name: { $gte: "a" } } } })}`,
        ),
      ),
    ).toEqual([["b"], ["a", "b", "é"]]);
  });

  it("the reference route lists the related rows in the order asked", async () => {
    const res = await req("GET", `/api/data/items/${item.id}/labels?sort=-name`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.data.map((l: Row) => l.name)).toEqual(["é", "b", "a", "B", null]);
  });

  it("deleting a referenced row sets the reference to NULL (on_delete set null)", async () => {
    const [gone] = await create("items", [{ grp: "m2m-del", name: "gone" }]);
    const note = await create("notes", { body: "orphaned", item_id: gone.id });
    const del = await req("DELETE", `/api/data/items/${gone.id}`);
    expect(del.status, del.text).toBe(200);
    expect((await req("GET", `/api/data/notes/${note.id}`)).body.data.item_id).toBeNull();
  });
});

describe("conflicts and references answer the same body everywhere (2.4, 4.17, 11.2)", () => {
  it("a unique value taken: 409 naming the field", async () => {
    await create("items", { grp: "uniq", code: "taken" });
    const res = await req("POST", "/api/data/items", { grp: "uniq", code: "taken" });
    expect(res.status).toBe(409);
    expect(res.body).toEqual({ error: { code: "conflict", message: "a row with the same code already exists" } });
    const other = await create("items", { grp: "uniq", code: "free" });
    const patch = await req("PATCH", `/api/data/items/${other.id}`, { code: "taken" });
    expect(patch.body).toEqual(res.body);
  });

  it("a composite unique index: 409 naming both fields in index order", async () => {
    await create("pairs", { a: "x", b: "y" });
    await create("pairs", { a: "y", b: "x" });
    const res = await req("POST", "/api/data/pairs", { b: "y", a: "x" });
    expect(res.status).toBe(409);
    expect(res.body).toEqual({ error: { code: "conflict", message: "a row with the same a, b already exists" } });
  });

  it("a reference to a missing row: 409, the same body on create and update", async () => {
    const res = await req("POST", "/api/data/notes", { body: "orphan", item_id: 987654321 });
    expect(res.status, res.text).toBe(409);
    expect(res.body.error.code).toBe("conflict");
    const note = await create("notes", { body: "fine" });
    const patch = await req("PATCH", `/api/data/notes/${note.id}`, { item_id: 987654321 });
    expect({ status: patch.status, body: patch.body }).toEqual({ status: 409, body: res.body });
  });

  it("a bulk create of 1,000 rows with a collision in the middle writes nothing", async () => {
    await create("items", { grp: "bulk0", code: "bulk-taken" });
    const rows = Array.from({ length: 1000 }, (_, i) => ({
      grp: "bulk",
      code: i === 617 ? "bulk-taken" : `bulk-${i}`,
    }));
    const res = await req("POST", "/api/data/items", rows);
    expect(res.status, res.text).toBe(409);
    expect(res.body).toEqual({ error: { code: "conflict", message: "a row with the same code already exists" } });
    expect((await list("bulk", "&limit=1")).meta.count).toBe(0);
    // a collision inside the batch itself
    const twice = Array.from({ length: 1000 }, (_, i) => ({ grp: "bulk", code: i === 999 ? "bulk-3" : `bulk-${i}` }));
    const res2 = await req("POST", "/api/data/items", twice);
    expect(res2.status, res2.text).toBe(409);
    expect((await list("bulk", "&limit=1")).meta.count).toBe(0);
    // and without one, all of them, ids ascending in input order
    const ok = await req(
      "POST",
      "/api/data/items",
      rows.map((r, i) => ({ ...r, code: `ok-${i}` })),
    );
    expect(ok.status).toBe(201);
    const created = ok.body.data.map((r: Row) => r.id);
    expect(created).toEqual([...created].sort((a, b) => a - b));
    expect(ok.body.data.map((r: Row) => r.code)).toEqual(rows.map((_, i) => `ok-${i}`));
  });
});

describe("concurrency: many writes of one row or one value (11.2)", () => {
  it("parallel creates of one unique value: exactly one 201, the rest 409", async () => {
    const answers = await Promise.all(
      Array.from({ length: 16 }, () => server.request("POST", "/api/data/items", { grp: "race", code: "race-1" })),
    );
    for (const a of answers) expectNoLeak(a);
    expect(answers.map((a) => a.status).sort()).toEqual([201, ...Array(15).fill(409)]);
  });

  it("parallel updates of one row: each 200, the row ends as one of them wrote it", async () => {
    const row = await create("items", { grp: "race", name: "start", qty: 0 });
    const answers = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        server.request("PATCH", `/api/data/items/${row.id}`, { name: `w${i}`, qty: i }),
      ),
    );
    for (const a of answers) expectNoLeak(a);
    expect(answers.map((a) => a.status)).toEqual(Array(16).fill(200));
    const final = (await req("GET", `/api/data/items/${row.id}`)).body.data;
    expect(final.name).toBe(`w${final.qty}`);
  });
});

describe("guarded writes and auth on every engine (3, 4.6, 4.17, 11.2)", () => {
  const guarded = em(
    {
      posts: entity("posts", {
        title: text(),
        views: number({ integer: true }),
        rating: number(),
        slug: text().unique(),
        published: boolean().default(false),
      }),
      users: entity("users", {}),
    },
    ({ posts, users }) => [relation(posts, "author").manyToOne(users)],
  );
  const small = { condition: { entity: "posts" }, effect: "filter" as const, filter: { views: { $lt: 100 } } };
  const drafts = { condition: { entity: "posts" }, effect: "filter" as const, filter: { published: false } };
  // a relational policy filter (§4.13): the author is the caller, followed through the relation
  const authored = {
    condition: { entity: "posts" },
    effect: "filter" as const,
    filter: { author: { id: "@user.id" } },
  };
  let b: Booted<void>;
  beforeAll(async () => {
    b = await boot(
      {
        config: {
          data: guarded.toJSON(),
          auth: {
            enabled: true,
            allow_register: true,
            default_role_register: "writer",
            roles: {
              writer: {
                permissions: [
                  "data.entity.read",
                  { permission: "data.entity.create", policies: [small] },
                  { permission: "data.entity.update", policies: [small] },
                ],
              },
              editor: {
                permissions: [
                  "data.entity.read",
                  { permission: "data.entity.create", policies: [drafts] },
                  { permission: "data.entity.update", policies: [drafts] },
                ],
              },
              member: {
                permissions: [
                  "data.entity.read",
                  { permission: "data.entity.create", policies: [authored] },
                  { permission: "data.entity.update", policies: [authored] },
                ],
              },
              admin: { implicit_allow: true },
            },
          },
        },
      },
      { users: { wendy: "writer", ed: "editor", mia: "member", root: "admin" } },
    );
  });
  afterAll(() => b?.server.close());
  const as = async (who: string, method: string, path: string, body?: unknown) => {
    const res = await b.as(who, method, path, body);
    expectNoLeak(res);
    return res;
  };

  it("a create inside a numeric filter whose unique value is taken: 409, as without the collision 201", async () => {
    expect((await as("root", "POST", "/api/data/posts", { slug: "taken", views: 1 })).status).toBe(201);
    // views 20 < 100: the write check passes, so the collision is the answer (§4.17)
    const res = await as("wendy", "POST", "/api/data/posts", { slug: "taken", views: 20 });
    expect({ status: res.status, body: res.body }).toEqual({
      status: 409,
      body: { error: { code: "conflict", message: "a row with the same slug already exists" } },
    });
    // views 200 is outside the filter: 403 whether or not the value is taken
    expect((await as("wendy", "POST", "/api/data/posts", { slug: "taken", views: 200 })).status).toBe(403);
    expect((await as("wendy", "POST", "/api/data/posts", { slug: "free-1", views: 200 })).status).toBe(403);
    expect((await as("wendy", "POST", "/api/data/posts", { slug: "free-2", views: 20 })).status).toBe(201);
  });

  it("an update inside a numeric filter whose unique value is taken: 409", async () => {
    const mine = await as("wendy", "POST", "/api/data/posts", { slug: "mine", views: 9 });
    expect(mine.status).toBe(201);
    const res = await as("wendy", "PATCH", `/api/data/posts/${mine.body.data.id}`, { slug: "taken", views: 30 });
    expect({ status: res.status, body: res.body }).toEqual({
      status: 409,
      body: { error: { code: "conflict", message: "a row with the same slug already exists" } },
    });
  });

  it("a create inside a boolean filter whose unique value is taken: 409", async () => {
    const res = await as("ed", "POST", "/api/data/posts", { slug: "taken", published: false });
    expect(res.status, res.text).toBe(409);
    const bad = await as("ed", "POST", "/api/data/posts", { slug: "taken", published: true });
    expect(bad.status, bad.text).toBe(403);
  });

  it("a create inside a relational filter whose unique value is taken: 409, never a 500", async () => {
    const mia = b.ids.mia;
    expect((await as("mia", "POST", "/api/data/posts", { slug: "mia-1", author_id: mia })).status).toBe(201);
    const res = await as("mia", "POST", "/api/data/posts", { slug: "taken", author_id: mia });
    expect({ status: res.status, body: res.body }).toEqual({
      status: 409,
      body: { error: { code: "conflict", message: "a row with the same slug already exists" } },
    });
    const other = await as("mia", "POST", "/api/data/posts", { slug: "taken", author_id: b.ids.root });
    expect(other.status, other.text).toBe(403);
  });

  it("an update inside a relational filter whose unique value is taken: 409, never a 500", async () => {
    const mine = await as("mia", "POST", "/api/data/posts", { slug: "mia-2", author_id: b.ids.mia });
    expect(mine.status).toBe(201);
    const res = await as("mia", "PATCH", `/api/data/posts/${mine.body.data.id}`, { slug: "taken" });
    expect({ status: res.status, body: res.body }).toEqual({
      status: 409,
      body: { error: { code: "conflict", message: "a row with the same slug already exists" } },
    });
  });

  it("register, login, me, change password, logout", async () => {
    const email = "Parity.User@Example.com";
    const reg = await as("anon", "POST", "/api/auth/password/register", { email, password: "long-enough-1" });
    expect(reg.status, reg.text).toBe(201);
    const dup = await as("anon", "POST", "/api/auth/password/register", { email, password: "long-enough-2" });
    expect(dup.status, dup.text).toBe(409);
    const login = await as("anon", "POST", "/api/auth/password/login", { email, password: "long-enough-1" });
    expect(login.status, login.text).toBe(200);
    const token = login.body.token as string;
    expect((await as(token, "GET", "/api/auth/me")).body.user.email).toBe(reg.body.user.email);
    const change = await as(token, "POST", "/api/auth/password/change", {
      password: "long-enough-1",
      new_password: "long-enough-3",
    });
    expect(change.status, change.text).toBe(200);
    expect((await as(token, "GET", "/api/auth/me")).status).toBe(401);
    const again = await as("anon", "POST", "/api/auth/password/login", { email, password: "long-enough-3" });
    expect(again.status).toBe(200);
    const out = await as(again.body.token, "POST", "/api/auth/logout");
    expect(out.status).toBeLessThan(300);
    expect((await as(again.body.token, "GET", "/api/auth/me")).status).toBe(401);
    const wrong = await as("anon", "POST", "/api/auth/password/login", { email, password: "long-enough-1" });
    expect(wrong.status).toBe(401);
  });

  it("a very long email is refused or taken, never a 500", async () => {
    const local = randomLetters(3000);
    const res = await as("anon", "POST", "/api/auth/password/register", {
      email: `${local}@example.com`,
      password: "long-enough-1",
    });
    expect([201, 400], res.text).toContain(res.status);
  });
});

describe("long names mean the same on every engine (1.3, 11.2)", () => {
  // PostgreSQL cuts identifiers at 63 bytes; SQLite keeps them whole. A name the config accepts must work.
  const long = `field_${"x".repeat(70)}`;
  const wide = em({ wide: entity("wide", { [long]: text(), short: text() }) });

  it("a field name over 63 characters is a startup error on every engine (PostgreSQL would cut it short)", async () => {
    await expect(startServer({ data: wide.toJSON() })).rejects.toThrow(
      `config.data.entities.wide.fields.${long}: "${long}" is ${long.length} characters long; field names are at most 63`,
    );
  });

  it("a field name of 63 characters is written, read, filtered and sorted by that name, also after a restart", async () => {
    const name = long.slice(0, 63);
    const fits = em({ wide: entity("wide", { [name]: text(), short: text() }) });
    const dir = mkdtempSync(join(tmpdir(), "citadel-parity-"));
    try {
      for (const round of [1, 2]) {
        const s = await startServer({ data: fits.toJSON() }, { dir });
        try {
          const res = await s.request("POST", "/api/data/wide", { [name]: `v${round}`, short: "s" });
          expectNoLeak(res);
          expect(res.status, res.text).toBe(201);
          expect(res.body.data[name]).toBe(`v${round}`);
          const read = await s.request("GET", `/api/data/wide?sort=-${name}&where=${q({ [name]: { $like: "v*" } })}`);
          expectNoLeak(read);
          expect(read.body.data.map((r: Row) => r[name])).toEqual(round === 1 ? ["v1"] : ["v2", "v1"]);
        } finally {
          await s.close();
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
