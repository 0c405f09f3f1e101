/** §1.7: `npm pack` ships compiled JavaScript and declarations for every export, and they load under plain Node. */
import { execFile, execFileSync, spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = new URL("..", import.meta.url).pathname;
const pkg = JSON.parse(execFileSync("npm", ["pkg", "get"], { cwd: root, encoding: "utf8" }));
const work = mkdtempSync(join(tmpdir(), "citadel-package-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("the package (1.7)", () => {
  let tarball: string;
  beforeAll(() => {
    execFileSync("npm", ["run", "build"], { cwd: root, stdio: "ignore" });
    execFileSync("npm", ["pack", "--ignore-scripts", "--pack-destination", work], { cwd: root, stdio: "ignore" });
    tarball = join(work, readdirSync(work).find((f) => f.endsWith(".tgz"))!);
  }, 120_000);

  it("packs built JavaScript and type declarations for every export", { timeout: 60_000 }, () => {
    const [packed] = JSON.parse(
      execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root, encoding: "utf8" }),
    );
    const files = new Set<string>(packed.files.map((f: { path: string }) => f.path));
    for (const [name, target] of Object.entries(pkg.exports as Record<string, { types: string; default: string }>)) {
      expect(files, `${name} → ${target.default}`).toContain(target.default.replace(/^\.\//, ""));
      expect(files, `${name} → ${target.types}`).toContain(target.types.replace(/^\.\//, ""));
    }
    expect(files).toContain(pkg.bin.citadel.replace(/^\.\//, ""));
    expect([...files].some((f) => f.startsWith("test/") || (f.endsWith(".ts") && !f.endsWith(".d.ts")))).toBe(false);
    // src/ is not shipped, so a source map pointing into it would resolve nowhere: none are built
    expect([...files].filter((f) => f.endsWith(".map"))).toEqual([]);
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

  /**
   * npm 11 warns about dependencies whose install scripts the app's `allowScripts` does not cover. Only
   * better-sqlite3 (ships no binary: downloads or compiles one) and argon2 (its bundled prebuild is
   * checked and, where it does not load, compiled) have any; the README's entry covers exactly those.
   * A dry run resolves the same tree and prints the same warning without running or compiling anything.
   */
  it("installing the tarball names only the packages the README's allowScripts covers", { timeout: 180_000 }, () => {
    const install = (name: string, extra: object) => {
      const app = join(work, name);
      mkdirSync(app);
      writeFileSync(join(app, "package.json"), JSON.stringify({ name, private: true, type: "module", ...extra }));
      const run = spawnSync("npm", ["install", tarball, "--dry-run", "--no-audit", "--no-fund"], {
        cwd: app,
        encoding: "utf8",
      });
      expect(run.status, run.stderr).toBe(0);
      return run.stderr;
    };
    const named = (stderr: string) => [...stderr.matchAll(/install-scripts {3}(\S+)@\S+ \(/g)].map((m) => m[1]).sort();
    expect(named(install("bare-app", {}))).toEqual(["argon2", "better-sqlite3"]);
    const documented = install("documented-app", { allowScripts: { "better-sqlite3": true, argon2: true } });
    expect(documented).not.toContain("install-scripts");
  });

  /**
   * Inside the repo `citadel` is src/ (tsconfig paths): only an app sees the shipped declarations. They once
   * spelled the config types as ~20 nested valibot generics, and an app typing any config got TS2589 under
   * skipLibCheck, as most apps have it (without it, tsc checks the declarations first, bottom-up, and gets
   * through; that run checks the shipped declarations themselves). The app gets the tarball's files where
   * `npm install` puts them, and our dependencies linked, not installed (that would download and compile).
   */
  it("an app type-checks its config against the installed declarations", { timeout: 120_000 }, async () => {
    const app = join(work, "typed-app");
    const modules = join(app, "node_modules");
    mkdirSync(join(modules, "citadel"), { recursive: true });
    execFileSync("tar", ["-xzf", tarball, "-C", join(modules, "citadel"), "--strip-components=1"]);
    for (const name of [...Object.keys(pkg.dependencies), "@types/node"]) {
      mkdirSync(dirname(join(modules, name)), { recursive: true });
      symlinkSync(join(root, "node_modules", name), join(modules, name));
    }
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "typed-app", private: true, type: "module" }));
    copyFileSync(join(root, "examples/blog/config.ts"), join(app, "blog.ts"));
    writeFileSync(
      join(app, "config.ts"),
      `import type { CitadelConfig, CreateAppInput } from "citadel";
      // the config's deepest corner: a field rule in a policy of a permission of a role
      const policies = [{ fields: { salary: { write: "false" } } }];
      export const config: CitadelConfig = { auth: { enabled: true, roles: { editor: { permissions: [{ permission: "data.entity.update", policies }] } } } };
      export const input: CreateAppInput = { config };
      // @ts-expect-error the types are checked, not any: "maybe" is no effect
      export const wrong: CitadelConfig = { auth: { roles: { r: { permissions: [{ permission: "x", effect: "maybe" }] } } } };
      `,
    );
    const tsc = join(root, "node_modules/typescript/bin/tsc");
    const check = async (skipLibCheck: boolean) => {
      const tsconfig = join(app, `tsconfig.${skipLibCheck}.json`);
      const compilerOptions = { strict: true, module: "NodeNext", target: "ES2022", noEmit: true, skipLibCheck };
      writeFileSync(
        tsconfig,
        JSON.stringify({ compilerOptions: { ...compilerOptions, types: ["node"] }, files: ["blog.ts", "config.ts"] }),
      );
      try {
        await promisify(execFile)(process.execPath, [tsc, "-p", tsconfig], { encoding: "utf8" });
        return "";
      } catch (error) {
        return `skipLibCheck ${skipLibCheck}:\n${(error as { stdout: string }).stdout}`;
      }
    };
    expect((await Promise.all([check(true), check(false)])).join("")).toBe("");
  });
});
