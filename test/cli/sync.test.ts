/** `citadel sync` (1.4, 12.1): destructive schema changes only with --destructive. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createApp, DestructiveSyncError } from "citadel";
import { describe, expect, it } from "vitest";
import { cli, tempDir } from "./helpers.js";

const { dir, db } = tempDir("citadel-sync-");

describe("citadel sync (1.4, 12.1)", () => {
  it("applies a destructive change only with --destructive (exit 1 until then), then the app starts (1.4)", async () => {
    const url = db("data.db");
    const posts = (fields: string) => `{ data: { entities: { posts: { fields: { ${fields} } } } } }`;
    const wide = join(dir, "wide.mjs");
    const narrow = join(dir, "narrow.mjs");
    writeFileSync(
      wide,
      `export default { connection: { url: "${url}" }, config: ${posts(`title: { type: "text" }, extra: { type: "text" }`)} };\n`,
    );
    writeFileSync(
      narrow,
      `export const app = { connection: { url: "${url}" }, config: ${posts(`title: { type: "text" }`)} };\n`,
    );

    const synced = await cli(["sync", "--config", wide]);
    expect({ code: synced.code, stdout: synced.stdout }, synced.stderr).toEqual({ code: 0, stdout: "schema synced\n" });
    const narrowInput = (await import(narrow)).app;
    await expect(createApp(narrowInput)).rejects.toBeInstanceOf(DestructiveSyncError);

    const refused = await cli(["sync", "--config", narrow]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/drop column "extra"/);

    const applied = await cli(["sync", "--config", narrow, "--destructive"]);
    expect({ code: applied.code, stdout: applied.stdout }, applied.stderr).toEqual({
      code: 0,
      stdout: "schema synced (destructive changes applied)\n",
    });
    const app = await createApp(narrowInput);
    await app.close();
  });
});
