/**
 * `citadel check` (12.2), the static access report — every role × entity × action, who reads and writes each
 * field, warnings — and `citadel diff` (12.4), what a config change widens or narrows. Static: they run on a
 * private in-memory database (the config's own is not opened) unless `--db` is given.
 */
import type { CitadelApp } from "../app.js";
import { type AccessChange, type AccessDiff, diffReports, needsReview } from "../guard/diff.js";
import { ACTIONS, type AccessReport, type FieldAccess } from "../guard/report.js";
import type { Command } from "./commands.js";
import type { CliIo } from "./io.js";
import { print, withApp } from "./open.js";
import { table } from "./table.js";
import { UsageError } from "./usage.js";

/**
 * Exit code of a diff that widens access or may (a changed filter, field rule or setting, a new warning): an
 * answer for CI, not a failure.
 */
export const WIDENS = 3;

const warningLine = (w: AccessReport["warnings"][number]) => `  ${w.kind}: ${w.path ? `${w.path}: ` : ""}${w.message}`;

const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/** The report as a person reads it (the CLI's text output). */
export function formatReport(report: AccessReport): string {
  const out: string[] = [];
  out.push(
    report.default_role
      ? `Callers without a token act as role "${report.default_role}".`
      : "Callers without a token are refused everything (no role has is_default).",
  );
  const { registration, api_keys: keys } = report.principals;
  out.push(
    registration.open
      ? `Registration is open: new users get ${registration.role ? `role "${registration.role}"` : "no role"}.`
      : "Registration is closed.",
  );
  if (keys)
    out.push(
      `API keys${keys.require ? " (required on every request)" : ""}: publishable keys without a role act as ` +
        `"${keys.publishable_role}", secret keys ${keys.secret_role ? `as "${keys.secret_role}"` : "bypass the guard"}.`,
    );
  const { external_tokens: idp, browser_origins: origins } = report.principals;
  if (idp)
    out.push(
      `Tokens of ${idp.issuer} (keys from ${idp.jwks_url}, audience "${idp.audience}") are trusted: their users act ` +
        `as the role their "${idp.role_claim}" claim names.`,
    );
  if (origins.length > 0) out.push(`Pages of ${origins.join(", ")} may call the API with a visitor's cookie (CORS).`);
  if (report.tenancy)
    out.push(
      `Tenant isolation: ${report.tenancy.entities.join(", ")} are scoped by ${report.tenancy.field} on top of the ` +
        `decisions below${report.tenancy.superadmin_role ? ` (except for role "${report.tenancy.superadmin_role}")` : ""}.`,
    );
  out.push(
    "",
    "Decisions (allow: every row; filter: the rows of the SQL below; deny: refused; ~: decided per request, shown is the most any caller could get)",
  );
  const rows: string[][] = [];
  const filters: string[] = [];
  const perRequest: string[] = [];
  for (const entity of report.entities)
    report.roles.forEach((role, i) => {
      const cells = ACTIONS.map((a) => {
        const cell = report.decisions[role]![entity]![a];
        if (cell.where !== undefined)
          filters.push(`  ${role} ${a} ${entity}: ${cell.where}  -- ${JSON.stringify(cell.parameters)}`);
        if (cell.per_request) perRequest.push(`  ${role} ${a} ${entity}: ${cell.per_request.join(", ")}`);
        return `${cell.decision}${cell.per_request ? "~" : ""}`;
      });
      rows.push([i === 0 ? entity : "", role, ...cells]);
    });
  out.push(table(["entity", "role", ...ACTIONS], rows));
  if (filters.length > 0) out.push("", "Filters", ...filters);
  if (perRequest.length > 0)
    out.push(
      "",
      "Decided per request (~): the policies whose condition or rule asks the caller or the row id",
      ...perRequest,
    );
  out.push(
    "",
    "Fields (r read, c create, u update; * only on some rows, o only the caller's own user id, s set by the server; - none)",
  );
  const letter = (access: FieldAccess, l: string) =>
    ({ all: l, some: `${l}*`, own: `${l}o`, server: `${l}s`, none: "-" })[access].padEnd(2);
  for (const entity of report.entities) {
    const fieldRows = Object.entries(report.fields[entity] ?? {}).map(([field, byRole]) => [
      `  ${field}`,
      ...report.roles.map((role) => {
        const g = byRole[role]!;
        return `${letter(g.read, "r")} ${letter(g.create, "c")} ${letter(g.update, "u")}`.trimEnd();
      }),
    ]);
    out.push(table([entity, ...report.roles], fieldRows));
  }
  out.push("", "System permissions");
  for (const role of report.roles) out.push(`  ${role}: ${report.system[role]!.join(", ") || "-"}`);
  out.push("", report.warnings.length === 0 ? "No warnings." : `Warnings (${report.warnings.length})`);
  for (const w of report.warnings) out.push(warningLine(w));
  out.push(
    "",
    `${count(report.roles.length, "role", "roles")}, ${count(report.entities.length, "entity", "entities")} checked.`,
  );
  return out.join("\n");
}

function changeLine(c: AccessChange): string {
  const what = c.permission ?? (c.field ? `${c.action} ${c.entity}.${c.field}` : `${c.action} ${c.entity}`);
  const lines = [`  role ${c.role}: ${what}: ${c.from} -> ${c.to}`];
  if (c.where) lines.push(`    was: ${c.where.from}`, `    now: ${c.where.to}`);
  if (c.per_request)
    lines.push(
      `    decided per request by: ${c.per_request.from.join(", ") || "-"} -> ${c.per_request.to.join(", ") || "-"}`,
    );
  return lines.join("\n");
}

/** The diff as a person reads it. */
export function formatDiff(diff: AccessDiff): string {
  const out: string[] = [];
  const section = (title: string, lines: string[]) => {
    if (lines.length > 0) out.push(`${title} (${lines.length})`, ...lines, "");
  };
  section(
    "Settings changed (review)",
    diff.settings.map((c) => `  ${c.setting}: ${c.from} -> ${c.to}`),
  );
  section("Widens", diff.widens.map(changeLine));
  section("Narrows", diff.narrows.map(changeLine));
  section("Changed (review: may widen)", diff.changes.map(changeLine));
  section("New warnings", diff.new_warnings.map(warningLine));
  if (needsReview(diff)) out.push(`Access widens or may widen: exit ${WIDENS}.`);
  else out.push(diff.narrows.length > 0 ? "Nothing widens." : "No access changes.");
  return out.join("\n");
}

/** The report of one config file, on a scratch database unless `db` names one. */
async function reportOf(config: string, db: string | undefined, io: CliIo): Promise<AccessReport> {
  let report: AccessReport | undefined;
  await withApp(
    { config, db },
    io,
    async (app: CitadelApp) => {
      report = app.accessReport();
    },
    { scratch: true },
  );
  return report!;
}

export const ACCESS_COMMANDS: Command[] = [
  {
    name: "check",
    summary: "The static access report: every role × entity × action, who reads and writes each field, warnings",
    details:
      "Decisions come from the same path as explain and enforcement. Warnings: wide grants (a data permission\n" +
      'without policies or for entity "*"), roles that can write users.role, entities no role can read, policies\n' +
      "that never apply, secret keys that bypass the guard. The config's database is not opened: the report runs\n" +
      "on a private in-memory one (SQL shown in SQLite's dialect) unless --db names one (whose schema is then\n" +
      "synced first, as `citadel sync` does). Exit 0 with or without\n" +
      "warnings; 1 when the config does not start.",
    options: ["config", "db", "json"],
    required: ["config"],
    async run(values, io) {
      const report = await reportOf(values.config!, values.db, io);
      print(io, values.json ? JSON.stringify(report, null, 2) : formatReport(report));
    },
  },
  {
    name: "diff",
    summary: "What a config change widens or narrows, per role × entity × action × field (exit 3: it widens)",
    details:
      "citadel diff --config <old> --config <new>: both configs' access reports (as `citadel check` computes\n" +
      "them), compared. A new role or entity widens by all it is granted; a filter whose SQL changed may widen\n" +
      "or narrow and is listed for review. Exit 0: nothing widens; 3: something widens or may (a changed filter,\n" +
      "field rule or setting, a new warning: a CI can require a review); 1: a config does not start.",
    options: ["config", "json"],
    required: ["config"],
    repeatable: ["config"],
    async run(values, io, { repeated }) {
      const configs = repeated.get("config") ?? [];
      if (configs.length !== 2)
        throw new UsageError(
          "diff takes two configs: --config <old> --config <new>",
          "Usage: citadel diff --config <old> --config <new> [--json]",
        );
      const diff = diffReports(await reportOf(configs[0]!, undefined, io), await reportOf(configs[1]!, undefined, io));
      print(io, values.json ? JSON.stringify(diff, null, 2) : formatDiff(diff));
      return needsReview(diff) ? WIDENS : undefined;
    },
  },
];
