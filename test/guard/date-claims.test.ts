/**
 * A caller's claim compared with a date column binds as a write would store it (§4.4, §1.4 dates): a provider's
 * `2026-01-01T05:00+05:00` is the stored `2026-01-01T00:00:00.000Z`, a date-only claim is its midnight UTC, and a
 * claim that is no date binds as no value (the filter matches nothing). Compared as raw text, the offset would
 * have ordered it after midnight UTC. Claims come from an identity provider's tokens (JWKS on loopback), in a
 * policy filter and in a rule expression alike.
 */
import { datetime, em, entity, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startViewerServer, type ViewerServer } from "../helpers/idp.js";

const schema = em({
  events: entity("events", { name: text(), starts: datetime() }),
  notes: entity("notes", { name: text(), starts: datetime() }),
});

describe("claims compared with date columns bind as stored dates (4.4, 9.1)", () => {
  let viewer: ViewerServer;
  const names = async (entityName: string, since: unknown) => {
    const res = await viewer.get(`/api/data/${entityName}?sort=id`, { since });
    expect(res.status, res.text).toBe(200);
    return res.body.data.map((r: { name: string }) => r.name);
  };

  beforeAll(async () => {
    viewer = await startViewerServer(schema.toJSON(), [
      {
        permission: "data.entity.read",
        policies: [
          { condition: { entity: "events" }, effect: "filter", filter: { starts: { $gte: "@user.since" } } },
          { condition: { entity: "notes" }, effect: "filter", rule: "starts >= user.since" },
        ],
      },
    ]);
    const rows = [
      { name: "before", starts: "2025-12-31T23:00:00Z" },
      { name: "midnight", starts: "2026-01-01T00:00:00Z" },
      { name: "after", starts: "2026-01-01T03:00:00Z" },
    ];
    await viewer.server.app.module.data.create("events", rows);
    await viewer.server.app.module.data.create("notes", rows);
  });
  afterAll(() => viewer?.close());

  for (const entityName of ["events", "notes"])
    it(`${entityName}: an offset, a date alone, and no date at all`, async () => {
      expect(await names(entityName, "2026-01-01T05:00+05:00")).toEqual(["midnight", "after"]);
      expect(await names(entityName, "2026-01-01T02:00:00Z")).toEqual(["after"]);
      expect(await names(entityName, "2026-01-01")).toEqual(["midnight", "after"]);
      // no date, or not a string: no value, so the filter matches nothing (never every row)
      expect(await names(entityName, "not a date")).toEqual([]);
      expect(await names(entityName, 20260101)).toEqual([]);
    });
});
