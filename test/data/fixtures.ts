/** Shared schema, seed data and assertions for the data API tests (§2). Not a test file itself. */
import { boolean, em, entity, enumm, json, number, relation, text } from "citadel";
import { expect } from "vitest";
import type { TestResponse, TestServer } from "../helpers/server.js";

export const schema = em(
  {
    posts: entity("posts", {
      title: text().required().maxLength(200),
      content: text(),
      views: number({ integer: true, minimum: 0 }),
      status: enumm({ enum: ["draft", "published"] }).default("draft"),
      published: boolean().default(false),
      meta: json(),
      slug: text().unique(),
    }),
    comments: entity("comments", { body: text().required(), approved: boolean({ default_value: false }) }),
    tags: entity("tags", { name: text().required() }),
    users: entity("users", {}),
  },
  ({ posts, comments, users, tags }) => [
    relation(posts, "author").manyToOne(users),
    relation(comments, "post").manyToOne(posts),
    relation(posts, "tags").manyToMany(tags),
  ],
);

export const config = { data: schema.toJSON() };

/** URL-encode a JSON value for a query parameter. */
export const q = (value: unknown) => encodeURIComponent(JSON.stringify(value));

// biome-ignore lint/suspicious/noExplicitAny: rows are arbitrary JSON
export const ids = (res: TestResponse): number[] => (res.body?.data ?? []).map((r: any) => r.id);

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
export const expectIso = (v: unknown) => {
  expect(typeof v).toBe("string");
  expect(v as string).toMatch(ISO);
  expect(Number.isNaN(Date.parse(v as string))).toBe(false);
};

/** Never a 500, a stack trace or SQL text in a response (§2.1, §2.3). */
export function expectNoLeak(res: TestResponse) {
  expect(res.status).not.toBe(500);
  expect(res.text).not.toContain("SELECT");
  expect(res.text.toLowerCase()).not.toContain("sqlite");
  expect(res.text).not.toMatch(/\bat .*\/src\//);
  expect(res.text).not.toContain("/src/");
}

/** The `{ error: { code, message } }` envelope with a given status and code (§2.1). */
export function expectError(res: TestResponse, status: number, code: string) {
  expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status, code });
  expect(typeof res.body.error.message).toBe("string");
  expectNoLeak(res);
}

export function expectValidation(res: TestResponse, ...fields: string[]) {
  expectError(res, 400, "validation_failed");
  for (const f of fields) {
    const messages = res.body.error.fields?.[f];
    expect(Array.isArray(messages), `error.fields.${f} in ${res.text}`).toBe(true);
    expect(messages.length).toBeGreaterThan(0);
    for (const m of messages) expect(typeof m).toBe("string");
  }
}

export async function create(server: TestServer, entityName: string, body: unknown) {
  const res = await server.request("POST", `/api/data/${entityName}`, body);
  expect(res.status, res.text).toBe(201);
  return res.body.data;
}

export interface Seeded {
  users: { a: number; b: number };
  posts: { alpha: number; beta: number; gamma: number; delta: number; epsilon: number };
  comments: { c1: number; c2: number; c3: number; c4: number };
  tags: number[];
}

/** Link posts and tags directly in the junction table `posts_tags` (not writable through the API). */
export async function linkTags(server: TestServer, links: [post: number, tag: number][]) {
  const table = (await server.app.db.introspection.getTables()).find((t) => t.name === "posts_tags");
  const cols = table?.columns.map((c) => c.name) ?? [];
  const postCol = cols.find((c) => c.startsWith("post"));
  const tagCol = cols.find((c) => c.startsWith("tag"));
  if (!postCol || !tagCol) throw new Error(`unexpected junction columns: ${cols.join(",")}`);
  await server.app.db
    .insertInto("posts_tags")
    .values(links.map(([p, t]) => ({ [postCol]: p, [tagCol]: t })))
    .execute();
}

/** A small blog: 2 users, 5 posts, 4 comments, 12 tags, post alpha tagged with the first two tags. */
export async function seedBlog(server: TestServer): Promise<Seeded> {
  const [ua, ub] = await create(server, "users", [{ email: "a@example.com" }, { email: "b@example.com" }]);
  const posts = await create(server, "posts", [
    {
      title: "Alpha",
      views: 10,
      status: "published",
      published: true,
      slug: "alpha",
      content: "hello world",
      meta: { a: 1 },
      author_id: ua.id,
    },
    { title: "beta", views: 5, status: "draft", published: false, slug: "beta", content: null, author_id: ua.id },
    { title: "Gamma 100%", slug: "gamma", content: "50% off_sale" },
    { title: "delta_x", views: 20, status: "published", published: true, content: "HELLO", author_id: ub.id },
    { title: "Epsilon", views: 0, published: false },
  ]);
  const [alpha, beta, gamma, delta, epsilon] = posts.map((p: { id: number }) => p.id);
  const comments = await create(server, "comments", [
    { body: "first", post_id: alpha },
    { body: "second", approved: true, post_id: alpha },
    { body: "third", post_id: alpha },
    { body: "only", post_id: beta },
  ]);
  const [c1, c2, c3, c4] = comments.map((c: { id: number }) => c.id);
  const tagRows = await create(
    server,
    "tags",
    Array.from({ length: 12 }, (_, i) => ({ name: i === 0 ? "news" : i === 1 ? "tech" : `t${i + 1}` })),
  );
  const tags = tagRows.map((t: { id: number }) => t.id);
  await linkTags(server, [
    [alpha, tags[0]],
    [alpha, tags[1]],
    [beta, tags[1]],
  ]);
  return {
    users: { a: ua.id, b: ub.id },
    posts: { alpha, beta, gamma, delta, epsilon },
    comments: { c1, c2, c3, c4 },
    tags,
  };
}

export const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
