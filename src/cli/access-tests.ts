/**
 * `citadel test --config <file> <cases>` (12.3): the access tests of a cases file (JSON, or a module whose default
 * export is the suite), each run over HTTP on a fresh in-memory database, then a coverage line per policy.
 */
import { runAccessTests } from "../testing/access-tests.js";
import type { Command } from "./commands.js";
import { loadAppInput, loadData } from "./load.js";
import { print } from "./open.js";

export const TEST_COMMANDS: Command[] = [
  {
    name: "test",
    summary: "Run access tests declared as data against the config, with a coverage line per policy",
    details:
      "The cases file (JSON, or a module whose default export it is) holds { users, fixtures, cases }: users by name\n" +
      "({ role, claims, account }), fixture rows per entity, and cases { name, as, entity, action, id?, where?, body?,\n" +
      'expect: { status?, rows?, fields?, count? } } where `as` is a user\'s name, "anonymous" or { key, role?, tenant? }.\n' +
      "Each case runs over HTTP on a fresh in-memory database (the config's own is never opened). Policies no case\n" +
      "reached are listed as never matched. Exit 0: every case passed; 1: a case failed or the files are wrong.",
    options: ["config", "json"],
    required: ["config"],
    argument: { name: "cases", help: "the cases file: .json, or a .ts/.js module exporting the suite" },
    async run(values, io, { argument }) {
      const input = await loadAppInput(values.config!);
      const report = await runAccessTests(input, await loadData(argument!, "<cases>"));
      if (values.json) print(io, JSON.stringify(report, null, 2));
      else {
        const lines = report.results.map((r) =>
          [`${r.passed ? "✓" : "✗"} ${r.name}`, ...r.problems.map((p) => `    ${p}`)].join("\n"),
        );
        const never = report.coverage.filter((c) => !c.matched);
        lines.push(
          "",
          `${report.passed} passed, ${report.failed} failed (${report.results.length} cases)`,
          `Policies matched: ${report.coverage.length - never.length} of ${report.coverage.length}`,
          ...never.map((c) => `  never matched: ${c.policy}`),
        );
        print(io, lines.join("\n"));
      }
      return report.failed > 0 ? 1 : undefined;
    },
  },
];
