/**
 * `citadel audit verify|prune|tail` (7.3, 12.1): check the hash chain, remove entries past
 * `audit.retention_days`, and print the latest entries (and new ones as they come, with --follow).
 */
import type { CitadelApp } from "../app.js";
import type { AuditActor, AuditTrail } from "../audit/index.js";
import { listEntries } from "../audit/query.js";
import type { Row } from "../data/codec.js";
import type { Command } from "./commands.js";
import type { CliIo } from "./io.js";
import { print, withApp } from "./open.js";
import { UsageError } from "./usage.js";

/** The CLI acts as no user, role, key, account or address: an entry it makes says so by naming none. */
const CLI_ACTOR: AuditActor = { user_id: null, role: null, key_id: null, account_id: null, ip: null };
const DEFAULT_LINES = 20;
const MAX_LINES = 100_000;
/** How often `tail --follow` looks for new entries. */
const FOLLOW_INTERVAL_MS = 1000;

/** The app's audit trail; an error that says how to turn it on when the config has it off. */
function trailOf(app: CitadelApp): AuditTrail {
  if (!app.audit) throw new Error("the audit trail is disabled: set config.audit.enabled to true");
  return app.audit;
}

function lineCount(value: string | undefined): number {
  if (value === undefined) return DEFAULT_LINES;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > MAX_LINES)
    throw new UsageError(`--lines expects a number of entries from 1 to ${MAX_LINES}`);
  return Number(value);
}

const ACTOR_PARTS = [
  ["user", "user_id"],
  ["role", "role"],
  ["key", "key_id"],
  ["account", "account_id"],
  ["ip", "ip"],
] as const;

/** One entry on one line: `#id at action entity#row_id user=… role=… key=… account=… ip=… [changed …] "reason"`. */
export function entryLine(entry: Row): string {
  const actor = (entry.actor ?? {}) as Partial<AuditActor>;
  const who = ACTOR_PARTS.flatMap(([label, field]) =>
    actor[field] === null || actor[field] === undefined ? [] : [`${label}=${actor[field]}`],
  );
  const target = entry.entity === null ? "-" : entry.row_id === null ? entry.entity : `${entry.entity}#${entry.row_id}`;
  const changed =
    entry.changes && typeof entry.changes === "object" && Object.keys(entry.changes).length > 0
      ? [`changed ${Object.keys(entry.changes).join(",")}`]
      : [];
  const reason = entry.reason === null || entry.reason === undefined ? [] : [JSON.stringify(entry.reason)];
  return [`#${entry.id}`, entry.at, entry.action, target, who.join(" ") || "no actor", ...changed, ...reason].join(" ");
}

const UNBOUNDED = { defaultLimit: MAX_LINES, maxLimit: MAX_LINES };

/** Entries in id order: the latest `n`, or (following) every one after `after`. */
async function entriesOf(app: CitadelApp, query: { n: number } | { after: number }): Promise<Row[]> {
  if ("n" in query) {
    const latest = await listEntries(app.db, { sort: "-id", limit: query.n, count: false }, UNBOUNDED);
    return latest.data.reverse();
  }
  const where = { id: { $gt: query.after } };
  return (await listEntries(app.db, { where, sort: "id", limit: 1000, count: false }, UNBOUNDED)).data;
}

const pause = (ms: number, signal: AbortSignal | undefined) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });

async function tail(app: CitadelApp, io: CliIo, n: number, follow: boolean, json: boolean): Promise<void> {
  trailOf(app);
  const show = (entries: Row[]) => {
    for (const entry of entries) print(io, json ? JSON.stringify(entry) : entryLine(entry));
  };
  let entries = await entriesOf(app, { n });
  if (!follow && entries.length === 0 && !json) print(io, "no audit entries");
  show(entries);
  let last = entries.length > 0 ? Number(entries.at(-1)!.id) : 0;
  while (follow && !io.signal?.aborted) {
    await pause(FOLLOW_INTERVAL_MS, io.signal);
    if (io.signal?.aborted) break;
    // a page at a time until caught up, so a burst is printed whole before the next pause
    do {
      entries = await entriesOf(app, { after: last });
      show(entries);
      if (entries.length > 0) last = Number(entries.at(-1)!.id);
    } while (entries.length === 1000);
  }
}

export const AUDIT_COMMANDS: Command[] = [
  {
    name: "audit verify",
    summary: "Check the audit trail's hash chain from end to end (7.3)",
    details:
      "Every entry's SHA-256 is recomputed over its content and the previous entry's hash, ids must follow each\n" +
      "other and the last one must be the chain's head. Exit 0 when the chain holds; otherwise exit 1 naming\n" +
      "the first entry that breaks it (altered, missing, or not following the entry before it).",
    options: ["config", "db", "json"],
    required: ["config"],
    run: (values, io) =>
      withApp(values, io, async (app) => {
        const result = await trailOf(app).verify();
        if (values.json) print(io, JSON.stringify(result, null, 2));
        if (!result.ok) {
          const { id, problem } = result.broken!;
          throw new Error(
            `audit trail broken: entry #${id} ${problem} (${result.entries} entries before it check out)`,
          );
        }
        if (values.json) return;
        const pruned =
          result.prunedBefore === undefined ? "" : `, from #${result.prunedBefore} (the entries before it were pruned)`;
        print(io, `audit trail OK: ${result.entries} entries checked${pruned}`);
      }),
  },
  {
    name: "audit prune",
    summary: "Remove the audit entries older than config.audit.retention_days (7.3)",
    details:
      "Only this command may delete entries (the table's triggers refuse it otherwise). It removes the oldest\n" +
      "entries, so what remains is still one chain, and records an audit.prune entry saying what it removed.\n" +
      "Without config.audit.retention_days nothing is removed.",
    options: ["config", "db"],
    required: ["config"],
    run: (values, io) =>
      withApp(values, io, async (app) => {
        const days = app.config.audit.retention_days;
        const { removed, before } = await trailOf(app).prune(CLI_ACTOR);
        if (before === null) {
          print(io, "nothing removed: config.audit.retention_days is not set, so entries are kept for good");
          return;
        }
        print(
          io,
          `removed ${removed} ${removed === 1 ? "entry" : "entries"} older than ${before} (retention_days ${days}); ` +
            "recorded as an audit.prune entry",
        );
      }),
  },
  {
    name: "audit tail",
    summary: "Print the latest audit entries, one per line (7.1)",
    details:
      "Each line: #id, time, action, entity#row, the actor (user, role, key, account, ip: those it has), the\n" +
      "fields a mutation changed and the reason, e.g.\n  #42 2030-01-01T12:00:00.000Z data.update notes#7 user=3 role=member account=1 ip=203.0.113.9 changed title\n" +
      "--json prints each entry as one JSON object per line instead. --follow keeps polling for new entries.",
    options: ["config", "db", "lines", "follow", "json"],
    required: ["config"],
    run: (values, io) => {
      const n = lineCount(values.lines);
      return withApp(values, io, (app) => tail(app, io, n, values.follow === true, values.json === true));
    },
  },
];
