/**
 * Every request is bounded in the work it can cause (§2.3): sort keys, select names, pattern lengths, `with`
 * depth and one row budget over all `with` levels. Each bound is tried just under (it works) and just over
 * (400 naming the bound), and the anonymous fan-out requests of the load and fuzz run answer 400, never 500.
 */
import type { CreateAppInput } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANON, type Booted, boot, q } from "../guard/helpers.js";
import type { TestResponse } from "../helpers/server.js";
import { BOOT, P, securityApp } from "./fixture.js";

let b: Booted<void>;
beforeAll(async () => {
  b = await boot(securityApp, BOOT);
});
afterAll(() => b.server.close());

// biome-ignore lint/suspicious/noExplicitAny: arbitrary JSON rows
type Row = Record<string, any>;

/** A 400 `bad_request` whose message names the bound. */
function expectRefused(res: TestResponse, bound: string | RegExp) {
  expect(res.status, res.text).toBe(400);
  expect(res.body?.error?.code, res.text).toBe("bad_request");
  expect(res.body.error.message).toMatch(bound);
}

const list = (who: string, body: Record<string, unknown>) => b.as(who, "POST", "/api/data/projects/query", body);

/** What anonymous may read of projects: every non-hidden field but the omitted `budget`. */
const ANON_PROJECT_FIELDS = ["id", "name", "public", "meta", "owner_id", "created_at", "updated_at"];

describe("sort: at most 8 keys (§2.3)", () => {
  it("8 sort keys work, in the query string and in a body; a field named again is dropped", async () => {
    const keys = [...ANON_PROJECT_FIELDS, "-name"];
    expect(keys).toHaveLength(8);
    const get = await b.as(ANON, "GET", `/api/data/projects?sort=${keys.join(",")}`);
    expect(get.status, get.text).toBe(200);
    expect(get.body.data.map((r: Row) => r.id)).toEqual([P.alicePublic, P.bobPublic]);
    const post = await list(ANON, { sort: keys.map((k) => ({ by: k.replace("-", ""), dir: "desc" })) });
    expect(post.status, post.text).toBe(200);
    expect(post.body.data.map((r: Row) => r.id)).toEqual([P.bobPublic, P.alicePublic]);
  });

  it("9 sort keys are 400 naming the bound, as a list, an array of names or an array of { by, dir }", async () => {
    const keys = [...ANON_PROJECT_FIELDS, "-name", "id"];
    expectRefused(await b.as(ANON, "GET", `/api/data/projects?sort=${keys.join(",")}`), /at most 8 sort keys/);
    expectRefused(await list(ANON, { sort: keys }), /at most 8 sort keys/);
    expectRefused(await list(ANON, { sort: keys.map((by) => ({ by })) }), /at most 8 sort keys/);
    const nested = await list(ANON, { with: { tasks: { sort: keys.join(",") } } });
    expectRefused(nested, /^with\.tasks\.sort: at most 8 sort keys/);
  });

  it("thousands of sort keys are 400, not a 500 (too many terms in ORDER BY) or a stalled server", async () => {
    const get = await b.as(ANON, "GET", `/api/data/projects?sort=${Array(3000).fill("id").join(",")}`);
    expectRefused(get, /at most 8 sort keys/);
    for (const sort of [
      Array(40_000).fill("name").join(","),
      Array(40_000).fill("-id"),
      Array(40_000).fill({ by: "id" }),
    ])
      expectRefused(await list(ANON, { sort }), /at most 8 sort keys/);
  });
});

describe("select: names deduplicated and bounded by the entity's fields (§2.3)", () => {
  it("as many names as the entity has fields work, and a name given twice comes back once", async () => {
    // projects has 8 fields a caller could name (the hidden `secret` never counts)
    const names = [...ANON_PROJECT_FIELDS, "name"];
    const res = await b.as(ANON, "GET", `/api/data/projects?select=${names.join(",")}`);
    expect(res.status, res.text).toBe(200);
    for (const row of res.body.data) expect(Object.keys(row).sort()).toEqual([...ANON_PROJECT_FIELDS].sort());
    const repeated = await b.as(ANON, "GET", "/api/data/projects?select=id&select=name&select=id");
    expect(repeated.status, repeated.text).toBe(200);
    expect(Object.keys(repeated.body.data[0])).toEqual(["id", "name"]);
  });

  it("more names than the entity has fields are 400 naming the bound, even all-valid duplicates", async () => {
    const names = [...ANON_PROJECT_FIELDS, "name", "id"];
    expectRefused(await b.as(ANON, "GET", `/api/data/projects?select=${names.join(",")}`), /at most 8 names/);
    expectRefused(await list(ANON, { select: names }), /^select: at most 8 names/);
    // tasks: id, title, done, project_id, owner_id, created_at, updated_at
    expectRefused(
      await list(ANON, { with: { tasks: { select: Array(8).fill("id") } } }),
      /^with\.tasks\.select: at most 7/,
    );
  });

  it("300,000 select names in one body are 400 at once", async () => {
    // 0.9 MB each, under max_body_bytes
    expectRefused(await list(ANON, { select: Array(300_000).fill("id").join(",") }), /at most 8 names/);
    expectRefused(await list(ANON, { select: Array(180_000).fill("id") }), /at most 8 names/);
  });
});

describe("$like and $ilike: patterns of at most 1,000 characters (§2.3)", () => {
  for (const op of ["$like", "$ilike"])
    it(`${op}: 1,000 characters work, 1,001 and 50,001 are 400 naming the bound`, async () => {
      const under = await list(ANON, { where: { name: { [op]: `*${"x".repeat(998)}*` } } });
      expect(under.status, under.text).toBe(200);
      expect(under.body.data).toEqual([]);
      const star = await list(ANON, { where: { name: { [op]: "*".repeat(1000) } } });
      expect(star.status, star.text).toBe(200);
      expect(star.body.data.length).toBe(2);
      for (const length of [1001, 50_001]) {
        const over = await list(ANON, { where: { name: { [op]: "*".repeat(length) } } });
        expectRefused(over, new RegExp(`^where\\.name\\.\\${op}: at most 1000 characters`));
      }
      const count = await b.as(ANON, "POST", "/api/data/projects/fn/count", { name: { [op]: "x".repeat(1001) } });
      expectRefused(count, /at most 1000 characters/);
      const nested = await list(ANON, { with: { tasks: { where: { title: { [op]: "A".repeat(50_001) } } } } });
      expectRefused(nested, /^with\.tasks\.where\.title\.\$i?like: at most 1000 characters/);
    });
});

describe("with: at most 3 levels (§2.3)", () => {
  it("3 levels work; a 4th is 400 naming the bound", async () => {
    const three = { projects: { with: { tasks: { with: { project: {} } } } } };
    const ok = await b.as(ANON, "GET", `/api/data/tags?with=${q(three)}`);
    expect(ok.status, ok.text).toBe(200);
    const red = ok.body.data.find((t: Row) => t.id === 1);
    expect(red.projects[0].tasks[0].project).toMatchObject({ id: P.alicePublic });
    const four = { projects: { with: { tasks: { with: { project: { with: { tasks: {} } } } } } } };
    expectRefused(await b.as(ANON, "GET", `/api/data/tags?with=${q(four)}`), /nested deeper than 3 levels/);
  });
});

describe("with: one row budget per request over all levels (§2.3)", () => {
  it("limit × per-parent limits up to 10,000 rows work (the default max_rows_per_request)", async () => {
    // 100 projects + 100 × 99 tasks = 10,000
    const res = await list(ANON, { limit: 100, with: { tasks: { limit: 99 } } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data.map((r: Row) => r.id)).toEqual([P.alicePublic, P.bobPublic]);
    // a to-one relation brings one row per parent: 1,000 tasks + 1,000 projects + 1,000 × 8 tasks = 10,000
    const toOne = await b.as("alice", "POST", "/api/data/tasks/query", {
      limit: 1000,
      with: { project: { with: { tasks: { limit: 8 } } } },
    });
    expect(toOne.status, toOne.text).toBe(200);
  });

  it("one row more is 400 naming max_rows_per_request and the computed figure", async () => {
    const res = await list(ANON, { limit: 100, with: { tasks: { limit: 100 } } });
    expectRefused(
      res,
      /^with: this request may read up to 10,100 rows .*at most 10,000 per request \(max_rows_per_request\)/,
    );
    expect(res.body.error).toMatchObject({ rows: 10_100, max: 10_000 });
    const toOne = await b.as("alice", "POST", "/api/data/tasks/query", {
      limit: 1000,
      with: { project: { with: { tasks: { limit: 9 } } } },
    });
    expectRefused(toOne, /up to 11,000 rows.*max_rows_per_request/);
  });

  it("levels add up: the budget counts every relation at every level", async () => {
    // 10 tags + 10 × 10 projects (+ 100 × 10 tasks + 100 × 1 owner, each) …
    const wide = { projects: { limit: 10, with: { tasks: { limit: 44 }, tags: { limit: 44 }, owner: {} } } };
    const ok = await b.as("alice", "GET", `/api/data/tags?limit=10&with=${q(wide)}`);
    expect(ok.status, ok.text).toBe(200); // 10 + 100 + 4,400 + 4,400 + 100 = 9,010
    const over = { projects: { limit: 10, with: { tasks: { limit: 50 }, tags: { limit: 49 }, owner: {} } } };
    expectRefused(await b.as("alice", "GET", `/api/data/tags?limit=10&with=${q(over)}`), /up to 10,110 rows/);
  });

  it("read-one and reference routes are bounded the same way", async () => {
    const over = q({ tasks: { limit: 1000, with: { project: { with: { tasks: { limit: 1000 } } } } } });
    expectRefused(await b.as(ANON, "GET", `/api/data/projects/${P.alicePublic}?with=${over}`), /max_rows_per_request/);
    const ref = await b.as(ANON, "GET", `/api/data/tags/1/projects?limit=1000&with=${q({ tasks: { limit: 10 } })}`);
    expectRefused(ref, /up to 11,000 rows.*max_rows_per_request/);
  });

  it("the anonymous fan-out requests of the load and fuzz run are 400, never 500", async () => {
    const deep = { tasks: { limit: 1000, with: { project: { with: { tasks: { limit: 1000 } } } } } };
    for (const [method, path, body] of [
      ["GET", `/api/data/projects?limit=1000&with=${q(deep)}`, undefined],
      ["POST", "/api/data/projects/query", { limit: 1000, with: deep }],
      [
        "POST",
        "/api/data/tags/query",
        { limit: 1000, with: { projects: { limit: 1000, with: { tasks: { limit: 1000, with: { project: {} } } } } } },
      ],
      ["GET", `/api/data/tasks?limit=1000&with=${q({ project: { with: { tasks: { limit: 1000 } } } })}`, undefined],
    ] as const) {
      const res = await b.as(ANON, method, path, body);
      expectRefused(res, /max_rows_per_request/);
    }
  });
});

describe("config.data.max_rows_per_request (§2.3)", () => {
  let small: Booted<void>;
  const config = securityApp.config!;
  const app: CreateAppInput = { config: { ...config, data: { ...config.data, max_rows_per_request: 50 } } };
  beforeAll(async () => {
    small = await boot(app, BOOT);
  });
  afterAll(() => small.server.close());

  it("a configured budget is the bound: just under works, just over is 400; a plain page counts too", async () => {
    const under = await small.as(ANON, "POST", "/api/data/projects/query", {
      limit: 10,
      with: { tasks: { limit: 4 } },
    });
    expect(under.status, under.text).toBe(200);
    const over = await small.as(ANON, "POST", "/api/data/projects/query", { limit: 10, with: { tasks: { limit: 5 } } });
    expectRefused(over, /up to 60 rows.*at most 50 per request \(max_rows_per_request\)/);
    expect((await small.as(ANON, "GET", "/api/data/projects?limit=50")).status).toBe(200);
    expectRefused(await small.as(ANON, "GET", "/api/data/projects?limit=51"), /^limit: .*max_rows_per_request/);
  });

  it("more than 20,000 is a startup error: a with level binds a key per parent row, under SQLite's 32,766", async () => {
    const { createApp } = await import("citadel");
    await expect(createApp({ config: { data: { max_rows_per_request: 20_001 } } })).rejects.toThrow(
      /max_rows_per_request/,
    );
  });
});
