/** §2.4: schema validation (400 validation_failed with per-field errors), uniqueness (409), bad bodies, 413. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENGINE_DRIVERS, startServer, type TestServer } from "../helpers/server.js";
import { config, create, expectError, expectNoLeak, expectValidation, q } from "./fixtures.js";

describe.each(ENGINE_DRIVERS)("data API write validation (%s)", (driver) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer(config, { driver });
  });
  afterAll(async () => {
    await server?.close();
  });

  const count = async (entityName: string, where: unknown) => {
    const res = await server.request("GET", `/api/data/${entityName}/count?where=${q(where)}`);
    expect(res.status, res.text).toBe(200);
    return res.body.data.count as number;
  };
  const post = (body: unknown) => server.request("POST", "/api/data/posts", body);

  it("a missing required field is 400 validation_failed naming it (2.4)", async () => {
    expectValidation(await post({ content: "no title" }), "title");
    expectValidation(await post({ title: null }), "title");
    expectValidation(await server.request("POST", "/api/data/comments", { approved: true }), "body");
    expect(await count("posts", { content: "no title" })).toBe(0);
  });

  it("a wrong type is 400 validation_failed naming the field (2.4)", async () => {
    expectValidation(await post({ title: 5 }), "title");
    expectValidation(await post({ title: "t", views: "12" }), "views");
    expectValidation(await post({ title: "t", published: "yes" }), "published");
    expectValidation(await post({ title: "t", author_id: "x" }), "author_id");
  });

  it("several problems are reported per field at once (2.4)", async () => {
    const res = await post({ title: 5, views: -1, status: "archived" });
    expectValidation(res, "title", "views", "status");
    // the message says which too, for a log line or a seed's error in the CLI that shows no `fields`
    expect(res.body.error.message).toMatch(/^title: .+; views: .+; status: .+$/);
  });

  it("maxLength is enforced; exactly maxLength is fine (1.2, 2.4)", async () => {
    expectValidation(await post({ title: "x".repeat(201) }), "title");
    const ok = await post({ title: "y".repeat(200) });
    expect(ok.status, ok.text).toBe(201);
  });

  it("number below minimum and non-integer for an integer field are 400 (1.2, 2.4)", async () => {
    expectValidation(await post({ title: "n", views: -1 }), "views");
    expectValidation(await post({ title: "n", views: 1.5 }), "views");
    const ok = await post({ title: "n0", views: 0 });
    expect(ok.status, ok.text).toBe(201);
  });

  it("an enum value not in the list is 400 (1.2, 2.4)", async () => {
    expectValidation(await post({ title: "e", status: "archived" }), "status");
  });

  it("an unknown field in the body is 400 naming it (2.4)", async () => {
    expectValidation(await post({ title: "u", bogus: 1 }), "bogus");
    expect(await count("posts", { title: "u" })).toBe(0);
  });

  it("updates validate too and leave the row unchanged (2.4)", async () => {
    const row = await create(server, "posts", { title: "valid" });
    expectValidation(await server.request("PATCH", `/api/data/posts/${row.id}`, { views: -3 }), "views");
    expectValidation(await server.request("PATCH", `/api/data/posts/${row.id}`, { title: null }), "title");
    expectValidation(await server.request("PATCH", `/api/data/posts/${row.id}`, { nope: 1 }), "nope");
    const after = await server.request("GET", `/api/data/posts/${row.id}`);
    expect(after.body.data).toEqual(row);
  });

  it("a body that is not a JSON object or array is 400 bad_request (2.4)", async () => {
    for (const body of ["5", '"text"', "null", "true"]) expectError(await post(body), 400, "bad_request");
    const row = await create(server, "posts", { title: "patch-me" });
    expectError(await server.request("PATCH", `/api/data/posts/${row.id}`, "[1]"), 400, "bad_request");
  });

  it("a malformed JSON body is 400 bad_request (2.4)", async () => {
    expectError(await post('{"title": "x"'), 400, "bad_request");
    expectError(await post("{title: x}"), 400, "bad_request");
    expectError(await server.request("POST", "/api/data/posts/query", "{nope"), 400, "bad_request");
  });

  it("a batch create with one invalid item is 400 and writes nothing (2)", async () => {
    const res = await post([{ title: "batch-ok-1" }, { title: "batch-ok-2" }, { views: 3 }]);
    expectValidation(res);
    expect(await count("posts", { title: { $like: "batch-ok-*" } })).toBe(0);
  });

  it("a batch item that is not an object is 400 and writes nothing (2)", async () => {
    const res = await post([{ title: "batch-scalar" }, 5]);
    expect(res.status).toBe(400);
    expect(["bad_request", "validation_failed"]).toContain(res.body?.error?.code);
    expectNoLeak(res);
    expect(await count("posts", { title: "batch-scalar" })).toBe(0);
  });

  it("a unique violation is 409 conflict (2.4)", async () => {
    expect((await post({ title: "u1", slug: "same" })).status).toBe(201);
    expectError(await post({ title: "u2", slug: "same" }), 409, "conflict");
    expect(await count("posts", { slug: "same" })).toBe(1);
  });

  it("several nulls in a unique field are not a conflict (2.4)", async () => {
    expect((await post({ title: "null-slug-1" })).status).toBe(201);
    expect((await post({ title: "null-slug-2", slug: null })).status).toBe(201);
  });

  it("a batch with a duplicate inside is 409 and writes nothing (2, 2.4)", async () => {
    const res = await post([
      { title: "dup-1", slug: "dup" },
      { title: "dup-2", slug: "fresh" },
      { title: "dup-3", slug: "dup" },
    ]);
    expectError(res, 409, "conflict");
    expect(await count("posts", { title: { $like: "dup-*" } })).toBe(0);
  });

  it("a batch that collides with an existing row is 409 and writes nothing (2, 2.4)", async () => {
    await create(server, "posts", { title: "existing", slug: "taken" });
    const res = await post([
      { title: "col-1", slug: "free" },
      { title: "col-2", slug: "taken" },
    ]);
    expectError(res, 409, "conflict");
    expect(await count("posts", { title: { $like: "col-*" } })).toBe(0);
  });

  it("an update that violates uniqueness is 409 and changes nothing (2.4)", async () => {
    await create(server, "posts", { title: "owner", slug: "mine" });
    const other = await create(server, "posts", { title: "other", slug: "theirs" });
    expectError(await server.request("PATCH", `/api/data/posts/${other.id}`, { slug: "mine" }), 409, "conflict");
    expect((await server.request("GET", `/api/data/posts/${other.id}`)).body.data.slug).toBe("theirs");
  });

  it("users need an email and emails are unique (1.3, 2.4)", async () => {
    expectValidation(await server.request("POST", "/api/data/users", {}), "email");
    expect((await server.request("POST", "/api/data/users", { email: "x@example.com" })).status).toBe(201);
    expectError(await server.request("POST", "/api/data/users", { email: "x@example.com" }), 409, "conflict");
  });

  it("a body larger than 1 MiB is 413 payload_too_large (2.1)", async () => {
    const big = await post({ title: "big", content: "x".repeat(1024 * 1024 + 10) });
    expectError(big, 413, "payload_too_large");
    const many = await post(Array.from({ length: 1100 }, (_, i) => ({ title: `big-${i}`, content: "y".repeat(1000) })));
    expectError(many, 413, "payload_too_large");
    expect(await count("posts", { title: { $like: "big*" } })).toBe(0);
  });

  it("a body just under 1 MiB is accepted (2.1)", async () => {
    const res = await post({ title: "almost", content: "z".repeat(1024 * 1024 - 1000) });
    expect(res.status, res.text.slice(0, 200)).toBe(201);
    expect(res.body.data.content).toHaveLength(1024 * 1024 - 1000);
  });
});
