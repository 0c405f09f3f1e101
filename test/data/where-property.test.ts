/**
 * §2.2 / §2.3 property test: random `where` objects give exactly the rows an in-memory evaluator with SQL's
 * three-valued logic picks, and random invalid input is always 200 or 400, never 500.
 */
import { boolean, em, entity, number, text } from "citadel";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.js";
import { evalWhere, type Where } from "../helpers/where-reference.js";
import { expectNoLeak, q } from "./fixtures.js";

/** `WHERE_PROPERTY_SEED` replays a run, `WHERE_PROPERTY_RUNS` sets every property's runs (longer runs). */
const replay = {
  ...(process.env.WHERE_PROPERTY_SEED ? { seed: Number(process.env.WHERE_PROPERTY_SEED) } : {}),
};
const runs = (n: number) => Number(process.env.WHERE_PROPERTY_RUNS ?? n);

const config = { data: em({ items: entity("items", { n: number(), s: text(), b: boolean() }) }).toJSON() };

type Row = { id: number; n: number | null; s: string | null; b: boolean | null };
type Json = unknown;

const STRINGS = ["a", "b", "A", "B", "ab", "aB", "ba", "ab%", "a_b", "a?b", "zz"];
const nVal = fc.oneof(fc.integer({ min: -4, max: 4 }), fc.constantFrom(-0.5, 1.5));
const sVal = fc.constantFrom(...STRINGS);
const bVal = fc.boolean();
const pattern = fc
  .array(fc.constantFrom("a", "b", "A", "B", "*", "*", "%", "_", "?"), { maxLength: 4 })
  .map((parts) => parts.join(""));
const rowArb = fc.record({
  n: fc.option(fc.integer({ min: -3, max: 3 }), { freq: 4 }),
  s: fc.option(sVal, { freq: 4 }),
  b: fc.option(fc.boolean(), { freq: 4 }),
});

// ---------- where generator ----------
type Entry = [string, Json];
const ops = (field: string, val: fc.Arbitrary<Json>, ordered: boolean, text: boolean): fc.Arbitrary<Entry> => {
  const list = fc.array(val, { maxLength: 3 });
  const choices: fc.Arbitrary<Entry>[] = [
    val.map((v) => ["$eq", v]),
    val.map((v) => ["$ne", v]),
    list.map((l) => ["$in", l]),
    list.map((l) => ["$nin", l]),
    list.map((l) => ["$notin", l]),
    fc.boolean().map((v) => ["$isnull", v]),
  ];
  if (ordered) for (const o of ["$gt", "$gte", "$lt", "$lte"]) choices.push(val.map((v) => [o, v]));
  if (ordered) choices.push(fc.tuple(val, val).map((p) => ["$between", p]));
  if (text)
    choices.push(
      pattern.map((p) => ["$like", p]),
      pattern.map((p) => ["$ilike", p]),
    );
  const opObject = fc
    .array(fc.oneof(...choices), { minLength: 1, maxLength: 2 })
    .map((es) => Object.fromEntries(es) as Json);
  return fc
    .oneof(
      { arbitrary: opObject, weight: 8 },
      { arbitrary: val, weight: 1 },
      { arbitrary: fc.constant(null), weight: 1 },
      { arbitrary: fc.array(val, { minLength: 1, maxLength: 3 }), weight: 1 },
    )
    .map((v) => [field, v] as Entry);
};
const fieldEntry = fc.oneof(ops("n", nVal, true, false), ops("s", sVal, true, true), ops("b", bVal, false, false));

const condition = (depth: number): fc.Arbitrary<Json> => {
  const entry: fc.Arbitrary<Entry> =
    depth === 0
      ? fieldEntry
      : fc.oneof(
          { arbitrary: fieldEntry, weight: 3 },
          {
            arbitrary: fc.tuple(
              fc.constantFrom("$and", "$or", "$not"),
              fc.oneof(
                fc.array(condition(depth - 1), { minLength: 1, maxLength: 2 }),
                fc.array(fieldEntry, { minLength: 1, maxLength: 2 }).map((es) => Object.fromEntries(es) as Json),
              ),
            ) as fc.Arbitrary<Entry>,
            weight: 1,
          },
        );
  return fc.array(entry, { minLength: 1, maxLength: depth === 3 ? 3 : 2 }).map((es) => Object.fromEntries(es));
};

// ---------- invalid input generator ----------
const junkKey = fc.constantFrom("n", "s", "b", "x", "id", "$and", "$or", "$not", "$foo", "$in", "$eq", "");
const junkOp = fc.constantFrom("$eq", "$gt", "$like", "$ilike", "$in", "$nin", "$between", "$isnull", "$bogus", "n");
const junk: fc.Arbitrary<Json> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.dictionary(junkKey, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
  fc.dictionary(junkKey, fc.dictionary(junkOp, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 2 }), { maxKeys: 3 }),
);

describe("where matches SQL three-valued logic (property)", () => {
  let server: TestServer;
  let rows: Row[];

  beforeAll(async () => {
    server = await startServer(config);
    const input = fc.sample(fc.array(rowArb, { minLength: 60, maxLength: 60 }), { numRuns: 1, seed: 20240601 })[0]!;
    input.push({ n: null, s: null, b: null }, { n: 0, s: "ab%", b: false }, { n: 1, s: "a_b", b: true });
    const res = await server.request("POST", "/api/data/items", input);
    expect(res.status, res.text).toBe(201);
    rows = res.body.data.map((r: Row) => ({ id: r.id, n: r.n, s: r.s, b: r.b }));
    expect(rows.map(({ id, ...rest }) => rest)).toEqual(input);
  });
  afterAll(async () => {
    await server?.close();
  });

  it("random valid where objects return exactly the reference rows (2.2)", async () => {
    await fc.assert(
      fc.asyncProperty(condition(3), async (where) => {
        const expected = rows
          .filter((r) => evalWhere(where as Where, (k) => r[k as keyof Row] ?? null) === true)
          .map((r) => r.id);
        const body = await server.request("POST", "/api/data/items/query", { where, limit: 1000 });
        expect(body.status, `${JSON.stringify(where)} -> ${body.text}`).toBe(200);
        expect(body.body.data.map((r: Row) => r.id)).toEqual(expected);
        expect(body.body.meta.count).toBe(expected.length);
        const path = `/api/data/items?where=${q(where)}&limit=1000`;
        if (path.length < 6000) {
          const get = await server.request("GET", path);
          expect(get.status, get.text).toBe(200);
          expect(get.body.data.map((r: Row) => r.id)).toEqual(expected);
        }
      }),
      {
        numRuns: runs(150),
        ...replay,
        examples: [
          [{ $not: { n: { $in: [] } } }],
          [{ $not: { s: { $nin: [] } } }],
          [{ $not: [{ b: { $ne: true } }] }],
          [{ $or: [{ n: { $nin: [0] } }, { s: { $like: "a_*" } }] }],
          [{ s: { $ilike: "AB%" } }],
          [{ s: { $like: "a?b" } }],
        ],
      },
    );
  });

  it("random invalid where input is 200 or 400, never 500 or a leak (2.3)", async () => {
    await fc.assert(
      fc.asyncProperty(junk, async (where) => {
        const res = await server.request("GET", `/api/data/items?where=${q(where)}&limit=1000`);
        expect([200, 400], `${JSON.stringify(where)} -> ${res.text}`).toContain(res.status);
        if (res.status === 400) expect(res.body?.error?.code).toBe("bad_request");
        expectNoLeak(res);
      }),
      { numRuns: runs(100), ...replay },
    );
  });

  it("random strings as the where param are 200 or 400, never 500 (2.3)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 40 }), async (raw) => {
        const res = await server.request("GET", `/api/data/items?where=${encodeURIComponent(raw)}`);
        expect([200, 400], `${raw} -> ${res.text}`).toContain(res.status);
        expectNoLeak(res);
      }),
      { numRuns: runs(60), ...replay },
    );
  });
});
