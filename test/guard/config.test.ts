/** §1.5 / issue 4 item 1: role configs are validated at startup with errors that name the path. */
import { em, entity, relation, text } from "citadel";
import { describe, expect, it } from "vitest";
import { rolesStartupError } from "./helpers.js";

const schema = em(
  { posts: entity("posts", { title: text().required() }), users: entity("users", {}) },
  ({ posts, users }) => [relation(posts, "author").manyToOne(users)],
);

// biome-ignore lint/suspicious/noExplicitAny: configs under test are deliberately wrong
const startupError = (roles: any) => rolesStartupError(schema.toJSON(), roles);

describe("role config validation (1.5, 4.2, 4.3)", () => {
  it("an unknown permission names its path (1.5)", async () => {
    const message = await startupError({ user: { permissions: ["data.entity.read", "data.entity.reed"] } });
    expect(message).toContain("config.auth.roles.user.permissions[1]");
    expect(message).toContain("data.entity.reed");
  });

  it("a filter on a field that does not exist names the filter's path (1.5)", async () => {
    const message = await startupError({
      user: {
        permissions: [
          "data.entity.read",
          "data.entity.create",
          {
            permission: "data.entity.update",
            policies: [{ condition: { entity: "posts" }, effect: "filter", filter: { owner_id: "@user.id" } }],
          },
        ],
      },
    });
    expect(message).toContain("config.auth.roles.user.permissions[2].policies[0].filter");
    expect(message).toContain("owner_id");
  });

  it("a filter for every entity that fits none of them is an error (1.5)", async () => {
    const message = await startupError({
      user: {
        permissions: [{ permission: "data.entity.read", policies: [{ effect: "filter", filter: { nope: 1 } }] }],
      },
    });
    expect(message).toContain("config.auth.roles.user.permissions[0].policies[0].filter");
  });

  it("an unknown entity in a condition is an error (1.5)", async () => {
    const message = await startupError({
      anonymous: {
        is_default: true,
        permissions: [{ permission: "data.entity.read", policies: [{ condition: { entity: "postz" } }] }],
      },
    });
    expect(message).toContain("config.auth.roles.anonymous.permissions[0].policies[0].condition.entity");
    expect(message).toContain("postz");
  });

  it("an unknown operator in a filter is an error (1.5)", async () => {
    const message = await startupError({
      user: {
        permissions: [
          { permission: "data.entity.read", policies: [{ effect: "filter", filter: { title: { $regex: "x" } } }] },
        ],
      },
    });
    expect(message).toContain("$regex");
  });

  it("an unknown placeholder is an error (4.4)", async () => {
    const message = await startupError({
      user: {
        permissions: [
          { permission: "data.entity.read", policies: [{ effect: "filter", filter: { author_id: "@session.id" } }] },
        ],
      },
    });
    expect(message).toContain("@session.id");
  });

  it("two default roles are an error (4.1)", async () => {
    const message = await startupError({ a: { is_default: true }, b: { is_default: true } });
    expect(message).toContain("config.auth.roles.b.is_default");
  });

  it("a filter policy without a filter is an error (4.3)", async () => {
    const message = await startupError({
      user: { permissions: [{ permission: "data.entity.read", policies: [{ effect: "filter" }] }] },
    });
    expect(message).toContain("config.auth.roles.user.permissions[0].policies[0]");
  });

  it("an unknown condition key is an error (4.3)", async () => {
    const message = await startupError({
      user: { permissions: [{ permission: "data.entity.read", policies: [{ condition: { table: "posts" } }] }] },
    });
    expect(message).toContain("condition.table");
  });
});
