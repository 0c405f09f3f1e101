/**
 * Tenancy and the schema (§6, §1.4): turning tenancy on for an existing database adds the scope column
 * (existing rows belong to no tenant until assigned), replaces global unique indexes with per-tenant ones,
 * and refuses configs that cannot work, with the config path named.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CitadelConfig, createApp, em, entity, text } from "citadel";
import { afterAll, describe, expect, it } from "vitest";
import { bearer, login } from "../helpers/auth.js";
import { startServer } from "../helpers/server.js";
import { PASSWORD, tenancyConfig } from "./fixture.js";

const withoutTenancy = (): CitadelConfig => {
  const { tenancy: _, ...config } = tenancyConfig();
  return { ...config, auth: { ...config.auth, allow_register: false, default_role_register: undefined } };
};

describe("turning tenancy on for an existing database (6, 1.4)", () => {
  const dir = mkdtempSync(join(tmpdir(), "citadel-tenancy-sync-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("adds the scope column, keeps the rows and makes unique values per tenant", async () => {
    const before = await startServer(withoutTenancy(), {
      dir,
      options: {
        seed: async ({ app }) => {
          await app.module.auth.createUser({ email: "old@test.com", password: PASSWORD, role: "member" });
          await app.module.data.create("notes", { title: "old", slug: "taken" });
        },
      },
    });
    // without tenancy the slug is unique across all rows
    const old = bearer(await login(before, "old@test.com", PASSWORD));
    expect((await before.request("POST", "/api/data/notes", { title: "again", slug: "taken" }, old)).status).toBe(409);
    await before.close();

    const after = await startServer(tenancyConfig(), { dir });
    try {
      expect(await after.rows("select title, account_id from notes")).toEqual([{ title: "old", account_id: null }]);
      // a user without an account sees no scoped rows; the old token names no account and still verifies
      expect((await after.request("GET", "/api/data/notes", undefined, old)).body.data).toEqual([]);
      const a = await after.request("POST", "/api/auth/password/register", {
        email: "a@a.test",
        password: PASSWORD,
        account: { name: "A" },
      });
      const b = await after.request("POST", "/api/auth/password/register", {
        email: "b@b.test",
        password: PASSWORD,
        account: { name: "B" },
      });
      expect([a.status, b.status], a.text + b.text).toEqual([201, 201]);
      // the global index is gone: the old row's slug and each tenant's are all allowed once per tenant
      for (const session of [a, b]) {
        const res = await after.request(
          "POST",
          "/api/data/notes",
          { title: "mine", slug: "taken" },
          bearer(session.body.token),
        );
        expect(res.status, res.text).toBe(201);
      }
      const again = await after.request(
        "POST",
        "/api/data/notes",
        { title: "dup", slug: "taken" },
        bearer(a.body.token),
      );
      expect(again.status, again.text).toBe(409);
      expect(await after.rows("select count(*) as n from notes where slug = 'taken'")).toEqual([{ n: 3 }]);
    } finally {
      await after.close();
    }
  });
});

describe("tenancy config errors name their path (6, 1.8)", () => {
  const config = (tenancy: CitadelConfig["tenancy"], auth: CitadelConfig["auth"] = tenancyConfig().auth) => ({
    ...tenancyConfig(),
    auth,
    tenancy,
  });
  it.each([
    [config({ enabled: true, superadmin_role: "root" }), /config\.tenancy\.superadmin_role.*unknown role "root"/],
    [config({ enabled: true, entities: ["nope"] }), /config\.tenancy\.entities\[0\].*unknown entity "nope"/],
    [config({ enabled: true, entities: ["accounts"] }), /config\.tenancy\.entities\[0\].*tenant entity/],
    [config({ enabled: true, field: "Account" }), /config\.tenancy\.field/],
    [config({ enabled: true, entity: "users" }), /config\.tenancy\.entity/],
    [config({ enabled: true, register: "open" as "create" }), /config\.tenancy\.register.*"create", "closed"/],
    [config({ enabled: true, enabeld: true } as CitadelConfig["tenancy"]), /did you mean `enabled`/],
    [config({ enabled: true }, { enabled: false }), /config\.tenancy\.enabled.*needs auth/],
  ])("%#: refuses to start", async (cfg, message) => {
    await expect(createApp({ connection: { url: ":memory:" }, config: cfg })).rejects.toThrow(message);
  });

  it("refuses a unique account name while registration creates accounts: its 409 would say which accounts exist (6.3)", async () => {
    const uniqueName = (tenancy: CitadelConfig["tenancy"]): CitadelConfig => {
      const cfg = tenancyConfig({ tenancy });
      const accounts = em({ accounts: entity("accounts", { name: text().required().unique() }) }).toJSON().entities;
      const data = cfg.data as { entities: Record<string, unknown> };
      data.entities = { ...data.entities, ...accounts };
      return cfg;
    };
    await expect(
      createApp({ connection: { url: ":memory:" }, config: uniqueName({ enabled: true, register: "create" }) }),
    ).rejects.toThrow(
      /config\.tenancy\.register: a unique account name would tell a registrant which accounts exist.*drop \.unique\(\) from accounts\.name or set register: "closed"/,
    );
    // closed registration makes no account from a request: nothing to tell
    const closed = await createApp({
      connection: { url: ":memory:" },
      config: uniqueName({ enabled: true, register: "closed", superadmin_role: "superadmin" }),
    });
    await closed.close();
  });

  it("refuses a schema field with the scope column's name", async () => {
    const cfg = tenancyConfig();
    const data = cfg.data as { entities: Record<string, { fields: Record<string, unknown> }> };
    data.entities.notes!.fields.account_id = { type: "number", config: {} };
    await expect(createApp({ connection: { url: ":memory:" }, config: cfg })).rejects.toThrow(
      /config\.data\.entities\.notes\.fields\.account_id.*scope column/,
    );
  });
});
