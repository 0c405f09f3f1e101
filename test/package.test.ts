/** §1.7: `npm pack` ships compiled JavaScript and declarations for every export, and they load under plain Node. */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";

const root = new URL("..", import.meta.url).pathname;
const pkg = JSON.parse(execFileSync("npm", ["pkg", "get"], { cwd: root, encoding: "utf8" }));

describe("the package (1.7)", () => {
  it("packs built JavaScript and type declarations for every export", { timeout: 120_000 }, () => {
    execFileSync("npm", ["run", "build"], { cwd: root, stdio: "ignore" });
    const [packed] = JSON.parse(
      execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root, encoding: "utf8" }),
    );
    const files = new Set(packed.files.map((f: { path: string }) => f.path));
    for (const [name, target] of Object.entries(pkg.exports as Record<string, { types: string; default: string }>)) {
      expect(files, `${name} → ${target.default}`).toContain(target.default.replace(/^\.\//, ""));
      expect(files, `${name} → ${target.types}`).toContain(target.types.replace(/^\.\//, ""));
    }
    expect(files).toContain(pkg.bin.citadel.replace(/^\.\//, ""));
    expect(
      [...files].some(
        (f) => String(f).startsWith("test/") || (String(f).endsWith(".ts") && !String(f).endsWith(".d.ts")),
      ),
    ).toBe(false);
  });

  it("the built entry points load under plain Node and export the API", { timeout: 60_000 }, () => {
    expect(existsSync(`${root}dist/src/index.js`)).toBe(true);
    const script = `
      const citadel = await import("${root}dist/src/index.js");
      const node = await import("${root}dist/adapters/node/index.js");
      console.log(JSON.stringify({ em: typeof citadel.em, createApp: typeof citadel.createApp, serve: typeof node.serve }));`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    expect(JSON.parse(out)).toEqual({ em: "function", createApp: "function", serve: "function" });
  });
});
