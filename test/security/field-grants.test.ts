/**
 * Field allowlists when several grants are ORed (§4.3, §4.8): a field allowlist that comes with one grant's rows
 * must not be lifted for those rows because another grant (over other rows) has no allowlist. Field rules do
 * not vary per row: when several grants apply, every restriction among them holds for all rows read.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Booted, boot, q } from "../guard/helpers.js";
import { P, schema, seedRows } from "./fixture.js";

const app = {
  config: {
    data: schema.toJSON(),
    auth: {
      enabled: true,
      guard: { enabled: true },
      roles: {
        member: {
          permissions: [
            // everyone's public projects, but only their name
            {
              permission: "data.entity.read",
              policies: [
                {
                  condition: { entity: "projects" },
                  effect: "filter" as const,
                  filter: { public: true },
                  fields: ["name", "public"],
                },
              ],
            },
            // one's own projects, every field
            {
              permission: "data.entity.read",
              policies: [
                { condition: { entity: "projects" }, effect: "filter" as const, filter: { owner_id: "@user.id" } },
              ],
            },
          ],
        },
        viewer: {},
        blind: {},
        keeper: {},
        admin: { implicit_allow: true },
      },
    },
  },
};

let b: Booted<void>;
beforeAll(async () => {
  b = await boot(app, {
    users: { alice: "member", bob: "member", vic: "viewer", blind: "blind", keeper: "keeper", root: "admin" },
    rows: seedRows,
  });
});
afterAll(() => b.server.close());

describe("a field allowlist stays with the rows of its grant", () => {
  it("alice reads her own projects too, under the same restriction (field rules do not vary per row)", async () => {
    const res = await b.as("alice", "GET", `/api/data/projects/${P.alicePrivate}`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toEqual({ id: P.alicePrivate, name: "Alice private", public: false });
  });

  it("bob's public project, visible to alice only through the name-only grant, does not show its budget", async () => {
    const res = await b.as("alice", "GET", `/api/data/projects/${P.bobPublic}`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.data, `fields outside the allowlist: ${res.text}`).not.toHaveProperty("budget");
    expect(res.body.data).not.toHaveProperty("owner_id");
    const list = await b.as("alice", "GET", "/api/data/projects");
    const bobs = list.body.data.find((p: { id: number }) => p.id === P.bobPublic);
    expect(bobs).not.toHaveProperty("budget");
  });

  it("alice cannot probe the budget of bob's public project through where", async () => {
    const hit = await b.as("alice", "GET", `/api/data/projects?where=${q({ budget: { $gt: 350 } })}`);
    const ids = hit.status === 200 ? hit.body.data.map((p: { id: number }) => p.id) : [];
    expect(ids, `budget oracle: ${hit.text}`).not.toContain(P.bobPublic);
  });
});
