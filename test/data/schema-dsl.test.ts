/** §1.2, §1.3: the schema DSL in both forms, toJSON in bknd's shape, and relations of every kind over HTTP. */
import { boolean, createApp, date, datetime, em, entity, enumm, json, number, relation, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.js";

describe("field builders (1.2)", () => {
  it("the chained form and bknd's options object give the same JSON", () => {
    const chained = em({
      t: entity("t", {
        a: text().required().maxLength(20).minLength(2).pattern("^[a-z]+$"),
        b: boolean().default(false),
        n: number().minimum(0).maximum(9).integer(),
        h: text().hidden().unique(),
      }),
    }).toJSON();
    const options = em({
      t: entity("t", {
        a: text({ required: true, maxLength: 20, minLength: 2, pattern: "^[a-z]+$" }),
        b: boolean({ default_value: false }),
        n: number({ minimum: 0, maximum: 9, integer: true }),
        h: text({ hidden: true, unique: true }),
      }),
    }).toJSON();
    expect(chained).toEqual(options);
    expect(chained.entities.t?.fields.a).toEqual({
      type: "text",
      config: { required: true, maxLength: 20, minLength: 2, pattern: "^[a-z]+$" },
    });
  });

  it("enum, date, datetime and json fields have bknd's JSON shape", () => {
    const schema = em({
      t: entity("t", { s: enumm({ enum: ["x", "y"] }), d: date(), dt: datetime(), j: json() }),
    }).toJSON();
    expect(schema.entities.t?.fields).toEqual({
      s: { type: "enum", config: { options: { type: "strings", values: ["x", "y"] } } },
      d: { type: "date", config: { type: "date" } },
      dt: { type: "date", config: { type: "datetime" } },
      j: { type: "json", config: {} },
    });
  });
});

describe("relations and indices in both forms (1.3)", () => {
  const entities = () => ({
    posts: entity("posts", { title: text().required() }),
    users: entity("users", {}),
    profiles: entity("profiles", { bio: text() }),
    tags: entity("tags", { name: text() }),
  });

  it("the docs' form and bknd's form produce the same { entities, relations, indices }", () => {
    const docs = em(entities(), ({ posts, users, profiles, tags }) => [
      relation(posts, "author").manyToOne(users),
      relation(users, "profile").oneToOne(profiles),
      relation(posts, "tags").manyToMany(tags),
    ]).toJSON();
    const bknd = em(entities(), ({ relation, index }, { posts, users, profiles, tags }) => {
      relation(posts).manyToOne(users, { mappedBy: "author" });
      relation(users).oneToOne(profiles, { mappedBy: "profile" });
      relation(posts).manyToMany(tags, { mappedBy: "tags" });
      index(posts).on(["title"], true);
    }).toJSON();
    expect(bknd.relations).toEqual(docs.relations);
    expect(Object.values(docs.relations).map((r) => [r.type, r.source, r.target, r.config.mappedBy])).toEqual([
      ["n:1", "posts", "users", "author"],
      ["1:1", "users", "profiles", "profile"],
      ["m:n", "posts", "tags", "tags"],
    ]);
    expect(Object.values(bknd.indices)).toEqual([{ entity: "posts", fields: ["title"], unique: true }]);
  });

  it("an index declared with index().on() is created and enforced (unique → 409)", async () => {
    const schema = em(entities(), ({ index }, { posts }) => {
      index(posts).on(["title"], true);
    });
    const server = await startServer({ data: schema.toJSON() });
    try {
      expect((await server.request("POST", "/api/data/posts", { title: "same" })).status).toBe(201);
      expect((await server.request("POST", "/api/data/posts", { title: "same" })).status).toBe(409);
    } finally {
      await server.close();
    }
  });
});

describe("oneToOne over HTTP (1.3)", () => {
  let server: TestServer;
  beforeAll(async () => {
    const schema = em(
      { users: entity("users", {}), profiles: entity("profiles", { bio: text() }) },
      ({ users, profiles }) => [relation(users, "profile").oneToOne(profiles)],
    );
    server = await startServer({ data: schema.toJSON() });
  });
  afterAll(() => server.close());

  it("adds a unique profile_id and embeds one row each way", async () => {
    const profile = await server.request("POST", "/api/data/profiles", { bio: "hi" });
    const user = await server.request("POST", "/api/data/users", { email: "a@x.io", profile_id: profile.body.data.id });
    expect(user.status).toBe(201);
    const again = await server.request("POST", "/api/data/users", {
      email: "b@x.io",
      profile_id: profile.body.data.id,
    });
    expect(again.status).toBe(409);
    const withProfile = await server.request("GET", `/api/data/users/${user.body.data.id}?with=profile`);
    expect(withProfile.body.data.profile).toMatchObject({ id: profile.body.data.id, bio: "hi" });
    const back = await server.request("GET", `/api/data/profiles/${profile.body.data.id}?with=users`);
    expect(back.body.data.users).toMatchObject({ id: user.body.data.id, email: "a@x.io" });
  });
});

describe("createApp (1.6)", () => {
  it("exposes a fetch handler without listening", async () => {
    const schema = em({ notes: entity("notes", { body: text().required() }) });
    const app = await createApp({ connection: { url: ":memory:" }, config: { data: schema.toJSON() } });
    try {
      const created = await app.fetch(
        new Request("http://local/api/data/notes", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ body: "hello" }),
        }),
      );
      expect(created.status).toBe(201);
      const list = await (await app.fetch(new Request("http://local/api/data/notes"))).json();
      expect(list.data).toEqual([expect.objectContaining({ body: "hello" })]);
    } finally {
      await app.close();
    }
  });
});
