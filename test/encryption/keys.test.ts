/**
 * The keyring at startup (§10.1, §1.5): encrypted fields without a key, malformed key lists and encrypted fields
 * where they cannot work are startup errors naming the place, and never echo key material.
 */
import { randomBytes } from "node:crypto";
import { type CitadelConfig, createApp, em, entity, json, number, text } from "citadel";
import { describe, expect, it } from "vitest";
import { type Row, startServer } from "../helpers/server.js";
import { encryptionConfig, newKey, STORED } from "./fixture.js";

const MEMORY = { url: ":memory:" };
const start = (config: CitadelConfig, encryptionKeys?: string) =>
  createApp({ connection: MEMORY, config, options: { encryptionKeys } });

describe("encryption keys at startup (10.1)", () => {
  it("refuses an encrypted field without a key, naming the field (10.1)", async () => {
    const saved = process.env.CITADEL_ENCRYPTION_KEYS;
    delete process.env.CITADEL_ENCRYPTION_KEYS;
    try {
      await expect(start(encryptionConfig())).rejects.toThrow(
        /config\.data\.entities\.patients\.fields\.ssn\.config\.encrypted: patients\.ssn is encrypted, but no encryption key is configured: set CITADEL_ENCRYPTION_KEYS/,
      );
    } finally {
      if (saved !== undefined) process.env.CITADEL_ENCRYPTION_KEYS = saved;
    }
  });

  it("takes the keys from CITADEL_ENCRYPTION_KEYS (10.1)", async () => {
    const saved = process.env.CITADEL_ENCRYPTION_KEYS;
    process.env.CITADEL_ENCRYPTION_KEYS = newKey("env1");
    try {
      const app = await start(encryptionConfig());
      await app.module.data.create("patients", { name: "a", notes: "from env" });
      const rows = (await app.module.data.list("patients")) as Row[];
      expect(rows[0]!.notes).toBe("from env");
      const stored = await app.db.selectFrom("patients").select("notes").executeTakeFirst();
      expect((stored as Row).notes).toMatch(STORED);
      expect((stored as Row).notes).toMatch(/^enc:v1:env1:/);
      await app.close();
    } finally {
      if (saved === undefined) delete process.env.CITADEL_ENCRYPTION_KEYS;
      else process.env.CITADEL_ENCRYPTION_KEYS = saved;
    }
  });

  const material = randomBytes(24).toString("base64");
  const good = newKey("ok");
  const malformed: [string, string, RegExp][] = [
    ["a key of the wrong length", `short:${material}`, /entry 1 \("short"\): the key is 24 bytes; AES-256 needs 32/],
    ["a duplicate id", `${good},${good}`, /entry 2: the key id "ok" is listed twice/],
    ["an entry without an id", material, /entry 1: expected "id:base64"/],
    ["a key that is not base64", `k:${"!".repeat(44)}`, /entry 1 \("k"\): the key is not base64/],
    ["an id with a colon-free but odd name", `bad id:${material}`, /entry 1: a key id is 1 to 32 letters/],
    ["no entries", " , ", /no keys/],
  ];
  for (const [what, keys, message] of malformed)
    it(`refuses ${what} without echoing the key (10.1)`, async () => {
      const error = await start(encryptionConfig(), keys).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(error?.message).toMatch(message);
      expect(error?.message).toMatch(/^options\.encryptionKeys: /);
      expect(error?.message).not.toContain(material);
      expect(error?.message).not.toContain(good.split(":")[1]!);
    });

  it("refuses a malformed key list even when no field is encrypted (10.1)", async () => {
    await expect(start({}, "k1:AAAA")).rejects.toThrow(/the key is 3 bytes/);
  });

  const refused: [string, CitadelConfig, RegExp][] = [
    [
      "a unique encrypted field",
      { data: em({ a: entity("a", { s: text().encrypted().unique() }) }).toJSON() },
      /config\.data\.entities\.a\.fields\.s\.config\.unique: "s" is encrypted: a unique index cannot compare ciphertexts/,
    ],
    [
      "an encrypted number",
      { data: em({ a: entity("a", { n: number({ encrypted: {} }) }) }).toJSON() },
      /only text and json fields can be encrypted/,
    ],
    [
      "a searchable json field",
      { data: em({ a: entity("a", { j: json().encrypted({ searchable: true }) }) }).toJSON() },
      /config\.data\.entities\.a\.fields\.j\.config\.encrypted\.searchable: only text fields can be searchable/,
    ],
    [
      "an encrypted default sort field",
      {
        data: {
          entities: {
            a: { fields: { s: { type: "text", config: { encrypted: {} } } }, config: { sort_field: "s" } },
          },
        },
      },
      /config\.data\.entities\.a\.config\.sort_field: "s" is encrypted/,
    ],
    [
      "an index on an encrypted field",
      {
        data: {
          entities: { a: { fields: { s: { type: "text", config: { encrypted: {} } } } } },
          indices: { idx_a_s: { entity: "a", fields: ["s"] } },
        },
      },
      /config\.data\.indices\.idx_a_s\.fields: "s" is encrypted/,
    ],
    [
      "a policy filter on a non-searchable encrypted field",
      {
        ...encryptionConfig(),
        auth: {
          enabled: true,
          jwt: { secret: "x".repeat(40) },
          roles: {
            anonymous: {
              is_default: true,
              permissions: [
                { permission: "data.entity.read", policies: [{ effect: "filter", filter: { notes: "x" } }] },
              ],
            },
          },
        },
      },
      /"notes" is encrypted and not searchable/,
    ],
    [
      "a policy filter comparing a searchable field with a placeholder",
      {
        ...encryptionConfig(),
        auth: {
          enabled: true,
          jwt: { secret: "x".repeat(40) },
          roles: {
            anonymous: {
              is_default: true,
              permissions: [
                { permission: "data.entity.read", policies: [{ effect: "filter", filter: { ssn: "@user.email" } }] },
              ],
            },
          },
        },
      },
      /"ssn" is encrypted: it is compared with literal values only/,
    ],
    [
      "an unknown key in encrypted",
      // a typo as a JavaScript config would carry it
      JSON.parse(
        '{"data":{"entities":{"a":{"fields":{"s":{"type":"text","config":{"encrypted":{"searchble":true}}}}}}}}',
      ),
      /config\.data\.entities\.a\.fields\.s\.config\.encrypted: .*searchable/,
    ],
  ];
  for (const [what, config, message] of refused)
    it(`refuses ${what} at startup (10.1, 10.3)`, async () => {
      await expect(start(config, newKey("k1"))).rejects.toThrow(message);
    });

  it("a searchable field's blind index is created by sync and filled for each write (10.3)", async () => {
    const server = await startServer(encryptionConfig(), { options: { encryptionKeys: newKey("k1") } });
    try {
      const created = await server.request("POST", "/api/data/patients", { name: "b", ssn: "1" });
      expect(created.status).toBe(201);
      const [row] = await server.rows("select ssn__bidx from patients where id = ?", created.body.data.id);
      expect(row!.ssn__bidx).toMatch(/^k1:/);
    } finally {
      await server.close();
    }
  });
});
