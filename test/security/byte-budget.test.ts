/**
 * One byte budget per request over the page and every `with` level (§2.3, `config.data.max_response_bytes`):
 * rows stored within the body limit but too large together are refused with 400 naming the budget before they
 * are read, never a 500 or an answer of hundreds of megabytes. A small budget here keeps the rows small.
 */
import type { CreateAppInput } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANON, type Booted, boot, q } from "../guard/helpers.js";
import type { TestResponse } from "../helpers/server.js";
import { BOOT, P, securityApp } from "./fixture.js";

const BUDGET = 16_384;
/** A title of 4,000 bytes: four of them are over the budget, three fit. */
const BIG = "x".repeat(4000);
/** Alice's done tasks with big titles on her public project, after the fixture's four (ids 5..12). */
const BIG_TASKS = 8;

const config = securityApp.config!;
const app: CreateAppInput = { config: { ...config, data: { ...config.data, max_response_bytes: BUDGET } } };

let b: Booted<void>;
beforeAll(async () => {
  b = await boot(app, BOOT);
  // written through the API, each well within the body limit: only together are they too large
  const tasks = Array.from({ length: BIG_TASKS }, () => ({
    title: BIG,
    done: true,
    project_id: P.alicePublic,
    owner_id: b.ids.alice,
  }));
  const created = await b.as("alice", "POST", "/api/data/tasks", tasks);
  expect(created.status, created.text).toBe(201);
});
afterAll(() => b.server.close());

/** A 400 `bad_request` naming the byte budget, at `path`. */
function expectOverBudget(res: TestResponse, path: string, message: RegExp) {
  expect(res.status, res.text).toBe(400);
  expect(res.body.error).toMatchObject({ code: "bad_request", path, max: BUDGET });
  expect(res.body.error.bytes).toBeGreaterThan(BUDGET);
  expect(res.body.error.message).toMatch(message);
  expect(res.body.error.message).toMatch(/at most 16,384 bytes per request \(max_response_bytes\)$/);
}

const stored = () => b.server.rows("select id, title, done, project_id from tasks order by id");

describe("a page over the byte budget (§2.3)", () => {
  it("is 400 naming max_response_bytes, the database is unchanged and the server answers others", async () => {
    const before = await stored();
    // anonymous reads done tasks: 1, 4 and the eight big ones
    for (const res of [
      await b.as(ANON, "GET", "/api/data/tasks?limit=10&sort=id"),
      await b.as(ANON, "GET", "/api/data/tasks?limit=1000&count=false"),
      await b.as(ANON, "POST", "/api/data/tasks/query", { limit: 10, sort: "id" }),
    ])
      expectOverBudget(res, "limit", /^limit: the 10 rows of this page hold [\d,]+ bytes as stored;/);
    expect(await stored()).toEqual(before);
    const other = await b.as("bob", "GET", "/api/data/projects");
    expect(other.status, other.text).toBe(200);
    expect(other.body.data.length).toBeGreaterThan(0);
  });

  it("the same rows within the budget are 200 as before: fewer rows, or fewer fields", async () => {
    const three = await b.as(ANON, "GET", "/api/data/tasks?limit=4&sort=id");
    expect(three.status, three.text).toBe(200);
    expect(three.body.data.map((t: { id: number }) => t.id)).toEqual([1, 4, 5, 6]);
    expect(three.body.data[2].title).toBe(BIG);
    expect(three.body.meta).toMatchObject({ items: 4, count: 10, total: 10 });
    const narrow = await b.as(ANON, "GET", "/api/data/tasks?limit=10&select=id,done");
    expect(narrow.status, narrow.text).toBe(200);
    expect(narrow.body.data).toHaveLength(10);
  });

  it("values larger than their share of a page that fits are read whole, by a second query (§2.3)", async () => {
    // limit 10: each title may take a tenth of the budget with the page's own query; these three take more
    const where = q({ id: { $in: [5, 6, 7] } });
    const res = await b.as(ANON, "GET", `/api/data/tasks?limit=10&sort=-id&where=${where}`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.data.map((t: { id: number; title: string }) => [t.id, t.title])).toEqual([
      [7, BIG],
      [6, BIG],
      [5, BIG],
    ]);
    expect(Object.keys(res.body.data[0]).sort()).toEqual(
      Object.keys(res.body.data[0])
        .filter((k) => !k.startsWith("__"))
        .sort(),
    );
  });

  it("a reference route and a read-one are bounded the same way", async () => {
    const ref = await b.as(ANON, "GET", `/api/data/projects/${P.alicePublic}/tasks?limit=10`);
    expectOverBudget(ref, "limit", /^limit: the 9 rows of this page hold/);
    const one = await b.as(ANON, "GET", "/api/data/tasks/5");
    expect(one.status, one.text).toBe(200);
    expect(one.body.data.title).toBe(BIG);
    const fanned = await b.as(ANON, "GET", `/api/data/projects/${P.alicePublic}?with=${q({ tasks: { limit: 10 } })}`);
    expectOverBudget(fanned, "with", /^with: the page and the with levels up to with\.tasks hold/);
    // the row read counts too: 4 KB + its project's tasks 1, 5, 6 (8 KB) fit, with task 7 (12 KB) they do not
    const around = (limit: number) => q({ project: { with: { tasks: { limit, sort: "id" } } } });
    const fits = await b.as(ANON, "GET", `/api/data/tasks/5?with=${around(3)}`);
    expect(fits.status, fits.text).toBe(200);
    expect(fits.body.data.project.tasks.map((t: { id: number }) => t.id)).toEqual([1, 5, 6]);
    const over = await b.as(ANON, "GET", `/api/data/tasks/5?with=${around(4)}`);
    expectOverBudget(over, "with", /^with: the page and the with levels up to with\.project\.tasks hold/);
  });

  it("values the caller cannot read are not counted (no oracle on them)", async () => {
    // the hidden `secret` of a public project, far over the budget: never read, never measured
    await b.server.rows("update projects set secret = ? where id = ?", "s".repeat(4 * BUDGET), P.alicePublic);
    const res = await b.as(ANON, "GET", "/api/data/projects");
    expect(res.status, res.text).toBe(200);
    expect(res.text).not.toContain("sss");
  });
});

describe("with: one byte budget over all levels (§2.3)", () => {
  it("a with level over the budget is 400 naming it and the level; within it, 200", async () => {
    const over = await b.as(ANON, "GET", `/api/data/projects?with=${q({ tasks: { limit: 10 } })}`);
    expectOverBudget(
      over,
      "with",
      /^with: the page and the with levels up to with\.tasks hold [\d,]+ bytes as stored;/,
    );
    const under = await b.as(ANON, "GET", `/api/data/projects?with=${q({ tasks: { limit: 3, sort: "id" } })}`);
    expect(under.status, under.text).toBe(200);
    const alices = under.body.data.find((p: { id: number }) => p.id === P.alicePublic);
    expect(alices.tasks.map((t: { id: number }) => t.id)).toEqual([1, 5, 6]);
  });

  it("levels that each fit are 400 together, a row shared by parents counting once per parent", async () => {
    // tasks 1, 4, 5: one big title (~4 KB); tasks 1 and 5 share project 1, whose own tasks 1, 5 (, 6) are
    // written under each: 4 + 2 × 4 KB fits, 4 + 2 × 8 KB does not (though each level alone would)
    const nested = (limit: number) => ({
      limit: 3,
      sort: "id",
      with: { project: { with: { tasks: { limit, sort: "id" } } } },
    });
    const fits = await b.as(ANON, "POST", "/api/data/tasks/query", nested(2));
    expect(fits.status, fits.text).toBe(200);
    expect(fits.body.data[2].project.tasks.map((t: { id: number }) => t.id)).toEqual([1, 5]);
    const over = await b.as(ANON, "POST", "/api/data/tasks/query", nested(3));
    expectOverBudget(over, "with", /^with: the page and the with levels up to with\.project\.tasks hold/);
    const page = await b.as(ANON, "POST", "/api/data/tasks/query", { limit: 3, sort: "id" });
    const level = await b.as(ANON, "GET", `/api/data/projects/${P.alicePublic}/tasks?limit=3&sort=id`);
    expect([page.status, level.status]).toEqual([200, 200]);
  });
});

describe("config.data.max_response_bytes (§2.3)", () => {
  it("below 1 KiB, above 64 MiB or not an integer is a startup error naming it", async () => {
    const { createApp } = await import("citadel");
    for (const max_response_bytes of [1023, 67_108_865, 1.5])
      await expect(createApp({ config: { data: { max_response_bytes } } })).rejects.toThrow(/max_response_bytes/);
  });
});
