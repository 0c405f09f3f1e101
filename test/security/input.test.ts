/**
 * Hostile input (§2.2, §2.3): prototype keys, deep and wide inputs, oversized bodies, amplification through `with`,
 * bound-parameter exhaustion, odd methods and encoded paths. Every one is a clean 4xx, fast, with nothing leaked.
 */
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANON, type Booted, boot, q } from "../guard/helpers.js";
import { BOOT, expectNoSecrets, ID, NOT_FOUND, P, securityApp } from "./fixture.js";

let b: Booted<void>;
beforeAll(async () => {
  b = await boot(securityApp, BOOT);
});
afterAll(() => b.server.close());

/** A POST on its own connection (the server may close it early); the status, or 0 when none came back. */
function rawPost(path: string, body: string, chunked: boolean): Promise<number> {
  return new Promise((resolve) => {
    const url = new URL(path, b.server.url);
    const headers: Record<string, string> = {
      "content-type": "application/json",
      authorization: `Bearer ${b.tokens.alice}`,
    };
    if (!chunked) headers["content-length"] = String(Buffer.byteLength(body));
    const req = request(url, { method: "POST", headers, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => resolve(0));
    if (chunked) for (let i = 0; i < body.length; i += 65_536) req.write(body.slice(i, i + 65_536));
    else req.write(body);
    req.end();
  });
}

const nest = (depth: number, leaf: string, open: string, close: string) =>
  open.repeat(depth) + leaf + close.repeat(depth);

describe("prototype keys are plain unknown names", () => {
  const cases: [string, string][] = [
    ["where __proto__", `where=${encodeURIComponent('{"__proto__":{"$eq":1}}')}`],
    ["where constructor", `where=${q({ constructor: 1 })}`],
    ["where toString operator", `where=${q({ name: { toString: 1 } })}`],
    ["where __proto__ operator", `where=${encodeURIComponent('{"name":{"__proto__":1}}')}`],
    ["where $and object with __proto__", `where=${encodeURIComponent('{"$and":{"__proto__":{"x":1}}}')}`],
    ["sort", "sort=__proto__"],
    ["select", "select=constructor"],
    ["with name", "with=__proto__"],
    ["with object", `with=${encodeURIComponent('{"__proto__":{}}')}`],
    ["with hasOwnProperty", "with=hasOwnProperty"],
  ];
  it.each(cases)("%s is 400 and pollutes nothing", async (_, query) => {
    const res = await b.as(ANON, "GET", `/api/data/projects?${query}`);
    expect(res.status, res.text).toBe(400);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("an entity or relation named like a prototype member is 404", async () => {
    for (const path of ["/api/data/constructor", "/api/data/toString/1", "/api/data/projects/1/constructor"]) {
      const res = await b.as(ANON, "GET", path);
      expect(res.status, `${path}: ${res.text}`).toBe(404);
    }
  });
});

/** Each query string names a one-value parameter twice: 400 naming it. */
async function expectGivenTwice(queries: string[]) {
  for (const query of queries) {
    const res = await b.as(ANON, "GET", `/api/data/projects?${query}`);
    expect(res.status, query).toBe(400);
    expect(res.body.error.message, query).toMatch(/^\w+: given 2 times; give it once$/);
  }
}

describe("deep, wide and large inputs", () => {
  it("a where nested past the bound is 400, even thousands of levels deep", async () => {
    for (const depth of [9, 10_000]) {
      const where = nest(depth, '{"id":1}', '{"$and":[', "]}");
      const res = await b.as(ANON, "POST", "/api/data/projects/query", `{"where":${where}}`);
      expect(res.status, res.text).toBe(400);
      const not = nest(depth, '{"id":1}', '{"$not":', "}");
      expect((await b.as(ANON, "POST", "/api/data/projects/fn/count", not)).status).toBe(400);
    }
  });

  it("a deeply nested JSON body is 400, not a crash", async () => {
    const res = await b.as(ANON, "POST", "/api/data/projects/query", nest(200_000, "1", "[", "]"));
    expect(res.status).toBe(400);
  });

  it("a deeply nested value for a json field is a 4xx, not a 500", async () => {
    const meta = nest(50_000, "1", "[", "]");
    const res = await b.as(
      "alice",
      "POST",
      "/api/data/projects",
      `{"name":"deep","owner_id":${ID.alice},"meta":${meta}}`,
    );
    expect(res.status, res.text).toBeLessThan(500);
  });

  it("more than the allowed number of conditions, or of $in values, is 400", async () => {
    const wide = { $or: Array.from({ length: 600 }, (_, i) => ({ id: i })) };
    expect((await b.as(ANON, "POST", "/api/data/projects/query", { where: wide })).status).toBe(400);
    const longIn = { id: { $in: Array.from({ length: 1001 }, (_, i) => i) } };
    expect((await b.as(ANON, "POST", "/api/data/projects/query", { where: longIn })).status).toBe(400);
  });

  it("a where that needs more bound parameters than SQLite allows is 400, not a 500 (§2.3)", async () => {
    const ids = Array.from({ length: 1000 }, (_, i) => i + 1);
    const where = { $or: Array.from({ length: 40 }, () => ({ id: { $in: ids } })) };
    for (const [method, path, body] of [
      ["POST", "/api/data/projects/query", { where }],
      ["POST", "/api/data/projects/fn/count", where],
      ["POST", "/api/data/projects/query", { with: { tasks: { where } } }],
      ["DELETE", "/api/data/tasks", where],
    ] as const) {
      const res = await b.as("alice", method, path, body);
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(400);
    }
  });

  it("a body over max_body_bytes is 413, with or without Content-Length", async () => {
    const big = JSON.stringify({ name: "x".repeat(2_000_000), owner_id: ID.alice });
    for (const chunked of [false, true]) {
      const status = await rawPost("/api/data/projects", big, chunked);
      expect(status, chunked ? "chunked" : "content-length").toBe(413);
    }
    expect(
      (await b.as("alice", "GET", `/api/data/projects?where=${q({ name: { $like: "xxxx*" } })}`)).body.data,
    ).toEqual([]);
  });

  it("limits: above the maximum, negative or non-integer is 400", async () => {
    for (const query of ["limit=1001", "limit=-1", "limit=1e3", "limit=1.5", "offset=-5", "offset=abc"]) {
      const res = await b.as(ANON, "GET", `/api/data/projects?${query}`);
      expect(res.status, query).toBe(400);
    }
    const nested = await b.as(ANON, "POST", "/api/data/projects/query", { with: { tasks: { limit: 1001 } } });
    expect(nested.status).toBe(400);
  });

  it("a parameter that takes one value, given twice, is 400 naming it; select and with may repeat (2.3)", async () => {
    const twice = [
      "limit=1&limit=2",
      "offset=0&offset=5",
      `where=${q({ id: 1 })}&where=${q({ id: 2 })}`,
      "sort=id&sort=-id",
      "count=false&count=true",
    ];
    await expectGivenTwice(twice);
    const count = await b.as(ANON, "GET", `/api/data/projects/count?where=${q({ id: 1 })}&where=${q({ id: 2 })}`);
    expect(count.status).toBe(400);
    expect((await b.as(ANON, "GET", "/api/data/projects?select=id&select=name")).status).toBe(200);
  });

  it("a parameter in brackets is that parameter (name[], name[0]); name[key], [name] and name.key are 400 (2.3)", async () => {
    const pairs = [
      `where=${q({ id: 1 })}&where[]=${q({ id: 2 })}`,
      "limit=1&limit[]=2",
      "limit=1&limit[0]=2",
      "sort=id&sort[]=-id",
    ];
    await expectGivenTwice(pairs);
    for (const query of ["where[name]=x", `[where]=${q({ name: "x" })}`, "where.name=x", "limit.max=1"]) {
      const object = await b.as(ANON, "GET", `/api/data/projects?${query}`);
      expect(object.status, query).toBe(400);
      expect(object.body.error, query).toMatchObject({ path: query.startsWith("limit") ? "limit" : "where" });
    }
    // a dotted name no route reads is ignored as any unknown parameter
    expect((await b.as(ANON, "GET", "/api/data/projects?utm.source=x")).status).toBe(200);
    const list = await b.as(ANON, "GET", "/api/data/projects?select[]=id&select[]=name&limit[]=1");
    expect(list.status, list.text).toBe(200);
    expect(list.body.data.length).toBeLessThanOrEqual(1);
    expect(Object.keys(list.body.data[0] ?? { id: 0, name: "" }).sort()).toEqual(["id", "name"]);
  });

  it("JSON naming a key twice in one object is 400, in a where, a sort, a with or a body (2.3)", async () => {
    const dup = `{"name":"a","name":"b"}`;
    for (const query of [
      `where=${encodeURIComponent(dup)}`,
      `where=${encodeURIComponent(`{"$or":[{"id":1,"id":2}]}`)}`,
      `sort=${encodeURIComponent(`{"by":"id","by":"name"}`)}`,
      `with=${encodeURIComponent(`{"tasks":{},"tasks":{"limit":1}}`)}`,
    ]) {
      const res = await b.as(ANON, "GET", `/api/data/projects?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body.error.message, query).toMatch(/names the key "\w+" twice in one object; name it once$/);
    }
    // a JSON body, and a where sent as a string inside one
    const body = await b.as("alice", "POST", "/api/data/projects/query", `{"where":{"id":1},"where":{"id":2}}`);
    expect(body.status, body.text).toBe(400);
    expect(body.body.error.message).toMatch(/^the request body names the key "where" twice/);
    const inner = await b.as("alice", "POST", "/api/data/projects/query", { where: dup });
    expect(inner.status, inner.text).toBe(400);
    // the same key in two objects, and an escaped spelling of one key, are told apart correctly
    const fine = await b.as(ANON, "GET", `/api/data/projects?where=${q({ $or: [{ id: 1 }, { id: 2 }] })}`);
    expect(fine.status, fine.text).toBe(200);
    const escaped = `{"name":"a","n\u0061me":"b"}`;
    expect((await b.as(ANON, "GET", `/api/data/projects?where=${encodeURIComponent(escaped)}`)).status).toBe(400);
    const created = await b.as("alice", "POST", "/api/data/projects", `{"name":"x","name":"y"}`);
    expect(created.status, created.text).toBe(400);
  });

  it("with nested deeper than the bound is 400", async () => {
    const spec = { projects: { with: { tasks: { with: { project: { with: { tasks: {} } } } } } } };
    const res = await b.as(ANON, "GET", `/api/data/tags?with=${q(spec)}`);
    expect(res.status, res.text).toBe(400);
  });

  it("one relation named many times in with is refused before any of it is read", async () => {
    const res = await b.as(ANON, "POST", "/api/data/projects/query", { with: Array(100_000).fill("tasks") });
    expect(res.status, res.text).toBe(400);
    expect(res.body.error.message).toMatch(/relations per request|named twice/);
  });
});

describe("methods and paths", () => {
  it("HEAD of a hidden row is 404 like a missing one; HEAD of a list answers without a body", async () => {
    const hidden = await b.as(ANON, "HEAD", `/api/data/projects/${P.bobPrivate}`);
    const missing = await b.as(ANON, "HEAD", "/api/data/projects/999");
    expect(hidden.status).toBe(404);
    expect(missing.status).toBe(404);
    const list = await b.as(ANON, "HEAD", "/api/data/projects");
    expect(list.status).toBe(200);
    expect(list.text).toBe("");
  });

  it("OPTIONS and PUT do not reach data, and CORS stays closed to a foreign origin", async () => {
    for (const method of ["OPTIONS", "PUT"]) {
      const res = await b.server.request(
        method,
        `/api/data/projects/${P.alicePublic}`,
        method === "PUT" ? {} : undefined,
        {
          origin: "http://evil.example",
          "access-control-request-method": "DELETE",
        },
      );
      expect(res.status, `${method}: ${res.text}`).toBe(404);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      expect(res.headers.get("access-control-allow-credentials")).toBeNull();
    }
  });

  it("percent-encoded paths get the same guard and the same credential checks", async () => {
    const hidden = await b.as(ANON, "GET", `/api/%64ata/projects/${P.bobPrivate}`);
    expect(hidden.text).toBe(NOT_FOUND);
    const encodedEntity = await b.as(ANON, "GET", "/api/data/%70rojects");
    expect(encodedEntity.status).toBe(200);
    expectNoSecrets(encodedEntity);
    for (const path of ["/api/%64ata/notes", "/%61pi/data/notes", "/api/data/%6eotes"]) {
      const bad = await b.server.request("GET", path, undefined, { authorization: "Bearer forged" });
      expect(bad.status, path).toBe(401);
      const anon = await b.as(ANON, "GET", path);
      expect(anon.status, path).toBe(403);
    }
    const slash = await b.as(ANON, "GET", `/api/data/projects%2F${P.bobPrivate}`);
    expect(slash.status).toBe(404);
    expectNoSecrets(slash);
  });
});
