import { fileURLToPath } from "node:url";
import { configDefaults, defineConfig } from "vitest/config";

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/** The tests whose outcome depends on the engine (§11.2): they run again on each server engine. */
const ENGINE_TESTS = [
  "test/data/**/*.test.ts",
  "test/auth/**/*.test.ts",
  "test/guard/**/*.test.ts",
  "test/security/**/*.test.ts",
  "test/tenancy/**/*.test.ts",
  "test/audit/**/*.test.ts",
  "test/feed/**/*.test.ts",
  "test/encryption/**/*.test.ts",
  "test/server.test.ts",
];
/** Inside those directories, tests of the CLI process that do not depend on the engine. */
const NOT_ENGINE_TESTS = ["test/auth/cli.test.ts"];
/**
 * Tests of one engine family are named for it, so no project reports them skipped: `*.postgres.test.ts` run on
 * PostgreSQL only, `*.sqlite.test.ts` on SQLite's engines (the file and the libSQL server), `*.remote.test.ts` on
 * the server engines (the libSQL server and PostgreSQL).
 */
const ONLY_POSTGRES = "test/**/*.postgres.test.ts";
const ONLY_SQLITE = "test/**/*.sqlite.test.ts";
const ONLY_REMOTE = "test/**/*.remote.test.ts";

/** Server start (a libSQL server, a PostgreSQL database) is slower than a file; generous, never a measure. */
const SERVER_ENGINE = { testTimeout: 60_000, hookTimeout: 120_000 };

export default defineConfig({
  resolve: {
    alias: [
      { find: /^citadel$/, replacement: here("./src/index.ts") },
      { find: /^citadel\/adapter\/node$/, replacement: here("./adapters/node/index.ts") },
      { find: /^citadel\/adapter\/bun$/, replacement: here("./adapters/bun/index.ts") },
    ],
  },
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Most test time is waiting on servers (HTTP, a libSQL server, PostgreSQL), not on the CPU: four files at a
    // time on a 2-core machine take the suite from ~9.6 to ~5.4 minutes. No test depends on machine speed.
    maxWorkers: 4,
    // A worker loads Citadel once for all its test files instead of once per file (the SQLite project: 3.0 to
    // 1.8 minutes on a 2-core machine). Tests restore what they change (process.env, spies) and close what
    // they open; each project still has workers of its own, which same-engine.ts checks.
    isolate: false,
    setupFiles: ["test/setup/same-engine.ts"],
    projects: [
      // Each project names its engine, so a CITADEL_TEST_ENGINE left in the shell does not leak into another.
      {
        extends: true,
        test: {
          name: "sqlite",
          include: ["test/**/*.test.ts"],
          exclude: [...configDefaults.exclude, ONLY_POSTGRES, ONLY_REMOTE],
          env: { CITADEL_TEST_ENGINE: "sqlite" },
        },
      },
      {
        extends: true,
        test: {
          name: "sqld",
          include: ENGINE_TESTS,
          exclude: [...NOT_ENGINE_TESTS, ONLY_POSTGRES],
          env: { CITADEL_TEST_ENGINE: "sqld" },
          ...SERVER_ENGINE,
        },
      },
      {
        extends: true,
        test: {
          name: "postgres",
          include: ENGINE_TESTS,
          exclude: [...NOT_ENGINE_TESTS, ONLY_SQLITE],
          env: { CITADEL_TEST_ENGINE: "postgres" },
          globalSetup: ["test/setup/postgres.ts"],
          ...SERVER_ENGINE,
        },
      },
    ],
  },
});
