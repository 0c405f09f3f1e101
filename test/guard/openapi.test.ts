/**
 * `GET /api/system/openapi.json` (12.5): an OpenAPI 3.1 document, valid under a standard validator, that
 * describes the API as the caller's role may use it — every operation it lists gets past the guard over HTTP,
 * every data operation it leaves out is 403, and no field the role cannot read or write appears in it.
 */
import { Validator } from "@seriousme/openapi-schema-validator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import blog from "../../examples/blog/config.js";
import { createKey } from "../auth/api-keys-fixture.js";
import { startServer } from "../helpers/server.js";
import { ANON, type Booted, boot, insert } from "./helpers.js";

// biome-ignore lint/suspicious/noExplicitAny: an OpenAPI document is arbitrary JSON
type Doc = Record<string, any>;

const USERS = { commenter: "commenter", author: "author", moderator: "moderator", admin: "admin" };
const AS: Record<string, string> = { anonymous: ANON, ...USERS };

/** Every `$ref` in the document points at something it defines. */
function danglingRefs(doc: Doc): string[] {
  const out: string[] = [];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === "object")
      for (const [k, v] of Object.entries(node)) {
        if (k === "$ref" && typeof v === "string") {
          const target = v
            .slice(2)
            .split("/")
            .reduce<unknown>((n, part) => (n as Doc | undefined)?.[part], doc);
          if (target === undefined) out.push(v);
        } else walk(v);
      }
  };
  walk(doc);
  return out;
}

async function expectValid(doc: Doc) {
  const result = await new Validator().validate(doc);
  expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
  expect(result.valid).toBe(true);
  expect(doc.openapi).toBe("3.1.0");
  expect(danglingRefs(doc)).toEqual([]);
}

describe("the OpenAPI document (12.5)", () => {
  let b: Booted<{ post: number }>;
  const docs: Record<string, Doc> = {};
  beforeAll(async () => {
    b = await boot(
      {
        ...blog,
        config: { ...blog.config, auth: { ...blog.config!.auth, api_keys: { enabled: true } } },
      },
      {
        users: USERS,
        rows: async (ctx, ids) => {
          const [post] = await insert(ctx, "posts", [{ title: "Hello", published: true, author_id: ids.author }]);
          return { post: post!.id };
        },
      },
    );
    for (const role of Object.keys(AS)) {
      const res = await b.as(AS[role]!, "GET", "/api/system/openapi.json");
      expect(res.status, res.text).toBe(200);
      docs[role] = res.body;
    }
  });
  afterAll(async () => {
    await b?.server.close();
  });

  it("is a valid OpenAPI 3.1 document for every role, with no dangling reference", async () => {
    for (const doc of Object.values(docs)) await expectValid(doc);
  });

  it("lists exactly the data operations the role gets past the guard with (12.5, 4.3)", async () => {
    let checked = 0;
    for (const [role, doc] of Object.entries(docs))
      for (const entity of ["posts", "comments", "users"]) {
        const collection = doc.paths[`/api/data/${entity}`] ?? {};
        const item = doc.paths[`/api/data/${entity}/{id}`] ?? {};
        const probes: [boolean, string, string, unknown][] = [
          [collection.get !== undefined, "GET", `/api/data/${entity}`, undefined],
          [collection.post !== undefined, "POST", `/api/data/${entity}`, {}],
          [item.patch !== undefined, "PATCH", `/api/data/${entity}/999999`, {}],
          [item.delete !== undefined, "DELETE", `/api/data/${entity}/999999`, undefined],
        ];
        for (const [listed, method, path, body] of probes) {
          const res = await b.as(AS[role]!, method, path, body);
          const what = `${role} ${method} ${path}: listed ${listed}, HTTP ${res.status} ${res.text}`;
          if (listed) expect(res.status, what).not.toBe(403);
          else expect(res.status, what).toBe(403);
          checked++;
        }
      }
    expect(checked).toBe(5 * 3 * 4);
  });

  it("shows each role only the fields it may read and write (12.5, 4.8)", () => {
    // anonymous callers read users' public names; emails and roles are the admin's
    expect(Object.keys(docs.anonymous!.components.schemas.users.properties).sort()).toEqual(["id", "name"]);
    expect(Object.keys(docs.admin!.components.schemas.users.properties)).toEqual(
      expect.arrayContaining(["email", "role", "name"]),
    );
    // a commenter writes a comment's body and its post, never `approved` (the moderators' field)
    expect(Object.keys(docs.commenter!.components.schemas.comments_create.properties).sort()).toEqual([
      "body",
      "post_id",
    ]);
    expect(docs.commenter!.components.schemas.comments_create.required).toEqual(["body"]);
    expect(Object.keys(docs.moderator!.components.schemas.comments_update.properties)).toEqual(["approved"]);
    // nobody is told about password hashes or about operations it lacks
    for (const doc of Object.values(docs)) expect(JSON.stringify(doc)).not.toContain("password_hash");
    expect(docs.anonymous!.components.schemas.posts_create).toBeUndefined();
  });

  it("describes fields as JSON Schema: types, nullability, limits (12.5, 2.4)", () => {
    const posts = docs.admin!.components.schemas.posts_create;
    expect(posts.properties.title).toEqual({ type: "string", maxLength: 200 });
    expect(posts.properties.published).toEqual({ type: ["boolean", "null"] });
    expect(posts.required).toEqual(["title"]);
    expect(docs.admin!.components.schemas.posts.properties.created_at).toEqual({
      type: ["string", "null"],
      format: "date-time",
    });
  });

  it("lists system routes only to roles that hold their permission (12.5, 4.2)", () => {
    expect(docs.admin!.paths["/api/system/explain"]).toBeDefined();
    expect(docs.admin!.paths["/api/system/keys"]).toBeDefined();
    for (const role of ["anonymous", "commenter", "author", "moderator"]) {
      const system = Object.keys(docs[role]!.paths).filter((p) => p.startsWith("/api/system/"));
      expect(system, role).toEqual(["/api/system/openapi.json"]);
    }
  });

  it("with the guard off every caller gets every data route, and no system route it would be refused (12.5, 1.9)", async () => {
    const open = await startServer({ ...blog.config, auth: { ...blog.config!.auth, guard: { enabled: false } } });
    try {
      const doc = (await open.request("GET", "/api/system/openapi.json")).body;
      await expectValid(doc);
      expect(doc.paths["/api/data/users"].delete).toBeDefined();
      expect(Object.keys(doc.paths).filter((p) => p.startsWith("/api/system/"))).toEqual(["/api/system/openapi.json"]);
      for (const path of ["/api/system/explain", "/api/system/report"])
        expect((await open.request("GET", path)).status, path).not.toBe(200);
    } finally {
      await open.close();
    }
  });

  it("a trusted secret key gets every route; a publishable key its role's document (12.5, 5.1)", async () => {
    const secret = await createKey(
      b.server,
      { authorization: `Bearer ${b.tokens.admin}` },
      { name: "s", kind: "secret" },
    );
    const all = (await b.server.request("GET", "/api/system/openapi.json", undefined, { apikey: secret.key })).body;
    await expectValid(all);
    expect(all.info.description).toBe("Every route of this app.");
    expect(all.paths["/api/data/users"].delete).toBeDefined();
    const pk = await createKey(
      b.server,
      { authorization: `Bearer ${b.tokens.admin}` },
      { name: "p", kind: "publishable" },
    );
    const web = (await b.server.request("GET", "/api/system/openapi.json", undefined, { apikey: pk.key })).body;
    expect(web).toEqual(docs.anonymous);
  });
});
