/**
 * Strings must be well-formed Unicode (§2.3): a lone surrogate (`"\ud800"` in JSON) cannot be stored as UTF-8,
 * so SQLite would keep replacement characters instead of what was sent. It is 400 `bad_request` naming where
 * it was, wherever user strings enter: JSON bodies of the data and auth routes (values and keys) and the JSON
 * values of query parameters. A body that is not valid UTF-8 is refused the same way.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Booted, boot, dbRows, emailOf, PASSWORD } from "../guard/helpers.js";
import type { TestResponse } from "../helpers/server.js";
import { BOOT, securityApp } from "./fixture.js";

let b: Booted<void>;
beforeAll(async () => {
  b = await boot(securityApp, BOOT);
});
afterAll(() => b.server.close());

/** 400 bad_request that says why and names the path (§2.1, §2.3). */
function expectIllFormed(res: TestResponse, path?: string) {
  expect({ status: res.status, code: res.body?.error?.code }, res.text).toEqual({ status: 400, code: "bad_request" });
  expect(res.body.error.message).toMatch(/well-formed Unicode/);
  if (path !== undefined) expect(res.body.error.path, res.text).toBe(path);
}

/** Rows holding U+FFFD: what a lone surrogate becomes once SQLite has stored it. */
const replaced = async (table: string, column: string) =>
  (await dbRows(b.server, `SELECT id FROM ${table} WHERE ${column} LIKE ?`, "%\uFFFD%")).length;

describe("lone surrogates in JSON bodies are 400 (2.3)", () => {
  // raw JSON text, so that what is sent is exactly the escape a client would write
  const cases: [string, string, string, string, string][] = [
    ["create: a value", "POST", "/api/data/projects", '{"name":"\\ud800"}', "name"],
    ["create: a low surrogate alone", "POST", "/api/data/projects", '{"name":"x\\udc00y"}', "name"],
    ["create: two highs are no pair", "POST", "/api/data/projects", '{"name":"\\ud800\\ud800"}', "name"],
    ["create many: the second row", "POST", "/api/data/projects", '[{"name":"ok"},{"name":"\\udfff"}]', "1.name"],
    [
      "create: a key in a json field",
      "POST",
      "/api/data/projects",
      '{"name":"ok","meta":{"\\udc00":1}}',
      'meta["\\udc00"]',
    ],
    [
      "create: deep in a json field",
      "POST",
      "/api/data/projects",
      '{"name":"ok","meta":{"l":[["\\ud800"]]}}',
      "meta.l.0.0",
    ],
    ["update one", "PATCH", "/api/data/projects/1", '{"name":"\\ud800"}', "name"],
    ["update many", "PATCH", "/api/data/projects", '{"update":{"name":"\\ud800"},"where":{"id":1}}', "update.name"],
    ["list where", "POST", "/api/data/projects/query", '{"where":{"name":"\\ud800"}}', "where.name"],
    [
      "list where: an operator",
      "POST",
      "/api/data/projects/query",
      '{"where":{"name":{"$like":"\\ud800*"}}}',
      "where.name.$like",
    ],
    ["list where: a key", "POST", "/api/data/projects/query", '{"where":{"\\ud800":1}}', 'where["\\ud800"]'],
    ["list sort", "POST", "/api/data/projects/query", '{"sort":[{"by":"\\ud800"}]}', "sort.0.by"],
    ["count", "POST", "/api/data/entity/projects/fn/count", '{"name":"\\ud800"}', "name"],
    ["exists", "POST", "/api/data/entity/projects/fn/exists", '{"name":"\\ud800"}', "name"],
    // data-routes names a delete-many body problem as a whole ("where: expected a JSON body (title: …)")
    ["delete many", "DELETE", "/api/data/tasks", '{"title":"\\ud800"}', "where"],
    ["the whole body", "POST", "/api/data/projects", '"\\ud800"', "body"],
  ];
  it.each(cases)("%s is 400 naming the path (2.3)", async (_, method, path, body, at) => {
    expectIllFormed(await b.as("root", method, path, body), at);
    expect(await replaced("projects", "name")).toBe(0);
    expect(await replaced("projects", "meta")).toBe(0);
  });

  it("control: a surrogate pair is a character like any other and reads back as sent (2.3)", async () => {
    const res = await b.as("root", "POST", "/api/data/projects", '{"name":"\\ud83d\\ude00 \\\\ud800","meta":{"😀":1}}');
    expect(res.status, res.text).toBe(201);
    expect(res.body.data.name).toBe("😀 \\ud800");
    expect(res.body.data.meta).toEqual({ "😀": 1 });
    const read = await b.as("root", "GET", `/api/data/projects/${res.body.data.id}`);
    expect(read.body.data.name).toBe("😀 \\ud800");
    await b.as("root", "DELETE", `/api/data/projects/${res.body.data.id}`);
  });

  it("a body that is not valid UTF-8 is 400, not stored as replacement characters (2.3)", async () => {
    const encoded = Buffer.from('{"name":"x"}');
    // the bytes a lone surrogate would take (ED A0 80), and a lone continuation byte
    for (const bad of [Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0x80])]) {
      const body = Buffer.concat([encoded.subarray(0, 10), bad, encoded.subarray(10)]);
      const res = await fetch(`${b.server.url}/api/data/projects`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${b.tokens.root}` },
        body,
      });
      const json = await res.json();
      expect({ status: res.status, code: json.error?.code }, JSON.stringify(json)).toEqual({
        status: 400,
        code: "bad_request",
      });
      expect(json.error.message).toMatch(/UTF-8/);
    }
    expect(await replaced("projects", "name")).toBe(0);
  });
});

describe("lone surrogates in auth bodies are 400 (2.3)", () => {
  it("register, login and password change refuse a lone surrogate in any field (2.3)", async () => {
    // both would be stored and hashed as "\ufffd…": two different passwords, one account
    const reg = await b.server.request(
      "POST",
      "/api/auth/password/register",
      '{"email":"surrogate@example.com","password":"\\ud800-long-password"}',
    );
    expectIllFormed(reg, "password");
    expectIllFormed(
      await b.server.request("POST", "/api/auth/password/register", '{"email":"x\\udc00@example.com","password":"p"}'),
      "email",
    );
    expectIllFormed(
      await b.server.request(
        "POST",
        "/api/auth/password/login",
        `{"email":"${emailOf("alice")}","password":"\\ud800"}`,
      ),
      "password",
    );
    expectIllFormed(
      await b.server.request(
        "POST",
        "/api/auth/password/change",
        `{"password":"${PASSWORD}","new_password":"\\udbff-new-password"}`,
        { authorization: `Bearer ${b.tokens.alice}` },
      ),
      "new_password",
    );
    expect(await replaced("users", "email")).toBe(0);
    const login = await b.server.request("POST", "/api/auth/password/login", {
      email: "surrogate@example.com",
      password: "\udbff-long-password",
    });
    expect(login.status, "the account was created").not.toBe(200);
  });
});

describe("lone surrogates in query strings are 400 (2.3)", () => {
  const escaped = (json: string) => encodeURIComponent(json);
  const cases: [string, string, string][] = [
    ["where", `/api/data/projects?where=${escaped('{"name":"\\ud800"}')}`, "where.name"],
    [
      "where, an operator",
      `/api/data/projects?where=${escaped('{"name":{"$in":["a","\\udc00"]}}')}`,
      "where.name.$in.1",
    ],
    ["where, a key", `/api/data/projects?where=${escaped('{"\\ud800":1}')}`, 'where["\\ud800"]'],
    ["where on count", `/api/data/projects/count?where=${escaped('{"name":"\\ud800"}')}`, "where.name"],
    ["where on exists", `/api/data/projects/exists?where=${escaped('{"name":"\\ud800"}')}`, "where.name"],
    ["where on a relation route", `/api/data/projects/1/tags?where=${escaped('{"name":"\\ud800"}')}`, "where.name"],
    ["sort", `/api/data/projects?sort=${escaped('{"by":"\\ud800"}')}`, "sort.by"],
    ["with", `/api/data/projects?with=${escaped('{"\\ud800":{}}')}`, 'with["\\ud800"]'],
    ["where left unencoded, as bknd sends it", `/api/data/projects?where={"name":"\\ud800"}`, "where.name"],
  ];
  it.each(cases)("%s is 400 naming the path (2.3)", async (_, path, at) => {
    expectIllFormed(await b.as("root", "GET", path), at);
  });
});
