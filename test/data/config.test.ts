/** §1.5: an invalid data config fails at startup with a message naming the path and the problem. */
import { describe, expect, it } from "vitest";
import { startServer } from "../helpers/server.js";
import { config } from "./fixtures.js";

// biome-ignore lint/suspicious/noExplicitAny: configs are mutated into invalid shapes on purpose
type Json = any;
const clone = (): Json => structuredClone(config);

/** Start with a broken config and answer the startup error's message. */
async function refusal(broken: Json): Promise<string> {
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    server = await startServer(broken);
  } catch (e) {
    expect(e).toBeInstanceOf(Error);
    return (e as Error).message;
  }
  await server.close();
  throw new Error("startup should have been refused");
}

describe("data config validation at startup", () => {
  it("the valid test config starts (1.5)", async () => {
    const server = await startServer(clone());
    const res = await server.request("GET", "/api/data/posts");
    expect(res.status).toBe(200);
    await server.close();
  });

  it("a relation to an unknown entity names config.data.relations (1.5)", async () => {
    const c = clone();
    c.data.relations.n1_posts_ghosts_ghost = {
      type: "n:1",
      source: "posts",
      target: "ghosts",
      config: { mappedBy: "ghost" },
    };
    const message = await refusal(c);
    expect(message).toContain("config.data.relations");
    expect(message).toContain("ghosts");
  });

  it("a relation from an unknown entity names config.data.relations (1.5)", async () => {
    const c = clone();
    c.data.relations.n1_phantoms_posts_post = {
      type: "n:1",
      source: "phantoms",
      target: "posts",
      config: { mappedBy: "post" },
    };
    const message = await refusal(c);
    expect(message).toContain("config.data.relations");
    expect(message).toContain("phantoms");
  });

  it("a field with an unknown type names config.data.entities.posts.fields (1.5)", async () => {
    const c = clone();
    c.data.entities.posts.fields.blob = { type: "blob", config: {} };
    const message = await refusal(c);
    expect(message).toContain("config.data.entities.posts.fields");
    expect(message).toContain("blob");
  });

  it("an index on an unknown field names config.data.indices (1.5)", async () => {
    const c = clone();
    c.data.indices.idx_posts_nosuch = { entity: "posts", fields: ["nosuch"], unique: false };
    const message = await refusal(c);
    expect(message).toContain("config.data.indices");
    expect(message).toContain("nosuch");
  });

  it("an index on an unknown entity names config.data.indices (1.5)", async () => {
    const c = clone();
    c.data.indices.idx_ghosts_title = { entity: "ghosts", fields: ["title"], unique: false };
    const message = await refusal(c);
    expect(message).toContain("config.data.indices");
    expect(message).toContain("ghosts");
  });

  it("a field named like a system field names its path (1.3, 1.5)", async () => {
    const c = clone();
    c.data.entities.tags.fields.created_at = { type: "text", config: {} };
    const message = await refusal(c);
    expect(message).toContain("config.data.entities.tags.fields");
    expect(message).toContain("created_at");
  });

  it("an unknown relation type names config.data.relations (1.5)", async () => {
    const c = clone();
    c.data.relations.xx_comments_tags_tag = { type: "x:y", source: "comments", target: "tags", config: {} };
    const message = await refusal(c);
    expect(message).toContain("config.data.relations");
    expect(message).toContain("type");
  });
});
