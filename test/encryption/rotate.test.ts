/**
 * Keys and rotation (§10.1, §10.2, §12.1) on the engine under test: values under an older key stay readable and
 * searchable once a new first key is added; `citadel encryption rotate` moves every value and blind index entry
 * to the current key in batches, resumably: a run killed midway (SIGKILL) loses nothing and a rerun finishes.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { type CitadelApp, createApp } from "citadel";
import { CompiledQuery } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, ROOT } from "../cli/helpers.js";
import type { Row, TestDatabase } from "../helpers/server.js";
import { testDatabase } from "../helpers/server.js";
import { encryptionConfig, newKey, STORED } from "./fixture.js";

const CONFIG = join(ROOT, "test/encryption/app.config.ts");
/** Enough rows for a run of small batches to be killed between its first batch and its last. */
const ROWS = 1200;
const k1 = newKey("k1");
const k2 = newKey("k2");
const k3 = newKey("k3");

const original = (i: number) => ({ name: `p${i}`, ssn: `ssn-${i % 7}`, notes: `note ${i}`, chart: { i } });

describe("key rotation (10.2)", () => {
  let database: TestDatabase;
  let url: string;

  const open = (keys: string) =>
    createApp({
      connection: database.connection,
      config: encryptionConfig(),
      // the 409s this file provokes on purpose are logged with their reason; kept out of the test output
      options: { encryptionKeys: keys, log: () => {} },
    });
  const withApp = async <T>(keys: string, use: (app: CitadelApp) => Promise<T>): Promise<T> => {
    const app = await open(keys);
    try {
      return await use(app);
    } finally {
      await app.close();
    }
  };
  const stored = (app: CitadelApp) =>
    app.db
      .executeQuery<Row>(CompiledQuery.raw("select id, name, ssn, notes, chart, ssn__bidx from patients order by id"))
      .then((r) => r.rows);
  /** How many of the patients' values each key holds. */
  const byKey = async (app: CitadelApp) => {
    const counts: Record<string, number> = {};
    for (const row of await stored(app))
      for (const column of ["ssn", "notes", "chart"]) {
        const key = String(row[column]).match(STORED)?.[1] ?? "none";
        counts[key] = (counts[key] ?? 0) + 1;
      }
    return counts;
  };
  /** Every row reads back as written: no value lost or changed. */
  const expectOriginals = async (app: CitadelApp) => {
    const rows = await app.module.data.list("patients");
    expect(rows).toHaveLength(ROWS);
    for (const row of rows) {
      const i = Number(String(row.name).slice(1));
      expect(row).toMatchObject(original(i));
    }
  };

  beforeAll(async () => {
    database = await testDatabase();
    url = database.connection.url;
    await withApp(k1, async (app) => {
      for (let start = 0; start < ROWS; start += 600)
        await app.module.data.create(
          "patients",
          Array.from({ length: 600 }, (_, j) => original(start + j)),
        );
    });
  });
  afterAll(() => database?.close());

  it("values under an older key stay readable and searchable after a new first key is added (10.1)", async () => {
    await withApp(`${k2},${k1}`, async (app) => {
      expect(await byKey(app)).toEqual({ k1: ROWS * 3 });
      const res = await app.fetch(
        new Request(`http://x/api/data/patients?where=${encodeURIComponent('{"ssn":"ssn-3"}')}&limit=1000`),
      );
      const body = (await res.json()) as { data: Row[] };
      expect(res.status).toBe(200);
      expect(body.data.length).toBe(Array.from({ length: ROWS }, (_, i) => i).filter((i) => i % 7 === 3).length);
      // a new write is under the new key, and found beside the old ones
      await app.module.data.create("visits", { reason: "new key", room: "1" });
      const [visit] = (await app.db.executeQuery<Row>(CompiledQuery.raw("select reason from visits"))).rows;
      expect(visit!.reason).toMatch(/^enc:v1:k2:/);
    });
    // the key that encrypted the old values left out: they fail, they are never returned as something else
    await withApp(k2, async (app) => {
      const res = await app.fetch(new Request("http://x/api/data/patients?limit=1"));
      expect(res.status).toBe(409);
    });
  });

  it("rotate re-encrypts every value and blind index entry under the current key; a rerun has nothing left (10.2)", async () => {
    const run = await cli(["encryption", "rotate", "--config", CONFIG, "--db", url, "--batch-size", "250"], {
      env: { CITADEL_ENCRYPTION_KEYS: `${k2},${k1}` },
    });
    expect(run.code, run.stderr).toBe(0);
    // the visit written under k2 above is already where it belongs
    expect(run.stdout).toContain(`rotated ${ROWS * 3} values to key "k2"`);
    expect(run.stderr).toMatch(/patients: 1200\/1200 rows \(100%\)/);
    await withApp(k2, async (app) => {
      expect(await byKey(app)).toEqual({ k2: ROWS * 3 });
      for (const row of await stored(app)) expect(row.ssn__bidx).toMatch(/^k2:/);
      await expectOriginals(app);
      const found = await app.module.data.list("patients", { ssn: "ssn-3" });
      expect(found.length).toBeGreaterThan(0);
    });
    const again = await cli(["encryption", "rotate", "--config", CONFIG, "--db", url], {
      env: { CITADEL_ENCRYPTION_KEYS: `${k2},${k1}` },
    });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('rotated 0 values to key "k2"');
  });

  it("a rotation killed midway loses nothing; a rerun finishes it (10.2)", async () => {
    const keys = `${k3},${k2}`;
    const args = ["--import", "tsx", join(ROOT, "src/cli/index.ts"), "encryption", "rotate", "--config", CONFIG];
    // the CLI runs under Node as a user runs it (under `npm run test:bun`, process.execPath is Bun)
    const node = "Bun" in globalThis ? "node" : process.execPath;
    const child = spawn(node, [...args, "--db", url, "--batch-size", "40", "--pause-ms", "50"], {
      cwd: ROOT,
      env: { ...process.env, CITADEL_ENCRYPTION_KEYS: keys },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    // killed as soon as it reports a batch done (not a terminal: one line per second, the first batch's at once)
    await new Promise<void>((resolve, reject) => {
      child.stderr.on("data", (chunk) => {
        stderr += chunk;
        if (/patients: [1-9]\d*\/\d+ rows/.test(stderr)) {
          child.kill("SIGKILL");
          resolve();
        }
      });
      child.on("close", () => reject(new Error(`the rotation ended before it was killed: ${stderr}`)));
    });
    await exited;
    await withApp(keys, async (app) => {
      const counts = await byKey(app);
      // midway: some rows under the new key, the others still under the old one, none lost
      expect(counts.k3).toBeGreaterThan(0);
      expect(counts.k2).toBeGreaterThan(0);
      expect(counts.k3! + counts.k2!).toBe(ROWS * 3);
      await expectOriginals(app);
    });
    const rerun = await cli(["encryption", "rotate", "--config", CONFIG, "--db", url], {
      env: { CITADEL_ENCRYPTION_KEYS: keys },
    });
    expect(rerun.code, rerun.stderr).toBe(0);
    await withApp(k3, async (app) => {
      expect(await byKey(app)).toEqual({ k3: ROWS * 3 });
      for (const row of await stored(app)) expect(row.ssn__bidx).toMatch(/^k3:/);
      await expectOriginals(app);
    });
  });

  it("a value that cannot be decrypted is left as it is and named; the exit code is 1 (10.2, 12.1)", async () => {
    const keys = `${k1},${k3}`;
    await withApp(k3, async (app) => {
      const [row] = await stored(app);
      const [, , id, base64] = String(row!.notes).split(":");
      const body = Buffer.from(base64!, "base64");
      body[body.length - 1]! ^= 1; // the tag's last byte
      const tampered = `enc:v1:${id}:${body.toString("base64")}`;
      await app.db.updateTable("patients").set({ notes: tampered }).where("id", "=", row!.id).execute();
    });
    const run = await cli(["encryption", "rotate", "--config", CONFIG, "--db", url], {
      env: { CITADEL_ENCRYPTION_KEYS: keys },
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/1 value could not be decrypted and were left as they are:\n {2}patients\.notes row 1:/);
    // every patient value but the tampered one, and the one visit
    expect(run.stdout).toContain(`rotated ${ROWS * 3 - 1 + 1} values to key "k1"`);
    expect(run.stderr).not.toContain(k1.split(":")[1]!);
    await withApp(keys, async (app) => {
      expect(await byKey(app)).toEqual({ k1: ROWS * 3 - 1, k3: 1 });
    });
  });

  it("a value under the current key that cannot be decrypted is named too, and nothing under it is rewritten (10.2, 12.1)", async () => {
    const keys = `${k1},${k3}`;
    let before: Row[] = [];
    await withApp(keys, async (app) => {
      // row 2's chart damaged under the current key (its IV's first bytes), row 3's notes written as plaintext
      const [, row2] = await stored(app);
      const damaged = `enc:v1:k1:AAAA${String(row2!.chart).slice("enc:v1:k1:AAAA".length)}`;
      await app.db.updateTable("patients").set({ chart: damaged }).where("id", "=", 2).execute();
      await app.db.updateTable("patients").set({ notes: "plain note" }).where("id", "=", 3).execute();
      expect((await app.fetch(new Request("http://x/api/data/patients/2"))).status).toBe(409);
      before = await stored(app);
    });
    const run = await cli(
      ["encryption", "rotate", "--config", CONFIG, "--db", url, "--batch-size", "100", "--encrypt-plaintext"],
      { env: { CITADEL_ENCRYPTION_KEYS: keys } },
    );
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toMatch(
      /citadel: 2 values could not be decrypted and were left as they are:\n {2}patients\.notes row 1: .*\n {2}patients\.chart row 2: /,
    );
    // the plaintext alone was sealed; every value already under k1 is as it was, the damaged one included
    expect(run.stdout).toContain('rotated 1 value to key "k1"');
    await withApp(keys, async (app) => {
      const after = await stored(app);
      expect(after[2]!.notes).toMatch(/^enc:v1:k1:/);
      expect(after.filter((row) => row.id !== 3)).toEqual(before.filter((row) => row.id !== 3));
    });
  });
});
