/**
 * `citadel encryption rotate` (10.2, 12.1): re-encrypt every value under the current key of
 * CITADEL_ENCRYPTION_KEYS, in batches, with a progress bar on standard error (a line per second when it is not
 * a terminal), and check those already under it. Resumable: a rerun rewrites only what is still under another key.
 */
import { type RotateProgress, rotateKeys } from "../data/rotate.js";
import type { Command } from "./commands.js";
import type { CliIo } from "./io.js";
import { print, withApp } from "./open.js";
import { UsageError } from "./usage.js";

const BAR_WIDTH = 30;
/** How often a line is printed when standard error is not a terminal. */
const LINE_INTERVAL_MS = 1000;

function count(value: string | undefined, option: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max)
    throw new UsageError(`${option} expects a number from ${min} to ${max}`);
  return Number(value);
}

/** Progress on standard error: a bar redrawn in place on a terminal, else a line at most once a second. */
function progressWriter(io: CliIo): (p: RotateProgress) => void {
  let last = 0;
  return ({ entity, done, total }) => {
    const share = total === 0 ? 1 : done / total;
    const percent = `${Math.floor(share * 100)}%`.padStart(4);
    if (io.stderrIsTTY) {
      const filled = Math.round(share * BAR_WIDTH);
      const bar = `${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}`;
      io.stderr(`\r${entity} [${bar}] ${percent} ${done}/${total} rows${done === total ? "\n" : ""}`);
      return;
    }
    const now = Date.now();
    // the first batch, the last and one a second between them
    if (done !== total && now - last < LINE_INTERVAL_MS && !(done > 0 && last === 0)) return;
    last = now;
    io.stderr(`${entity}: ${done}/${total} rows (${percent.trim()})\n`);
  };
}

export const ENCRYPTION_COMMANDS: Command[] = [
  {
    name: "encryption rotate",
    summary: "Re-encrypt every encrypted value under the current key (10.2)",
    details:
      "The current key is the first of CITADEL_ENCRYPTION_KEYS; keep the old ones listed until this finishes (and\n" +
      "for config.feed.retention_hours after it: the change feed's stored events keep their ciphertext).\n" +
      "Rows go in batches, each in its own transaction; an interrupted run loses nothing and a rerun continues.\n" +
      "Values already under the current key are decrypted to check them, never written again.\n" +
      "Values that cannot be decrypted, under any key, are left as they are and listed; the exit code is then 1.",
    options: ["config", "db", "batch-size", "pause-ms", "encrypt-plaintext"],
    required: ["config"],
    run: (values, io) => {
      const batchSize = count(values["batch-size"], "--batch-size", 500, 1, 10_000);
      const pauseMs = count(values["pause-ms"], "--pause-ms", 0, 0, 60_000);
      return withApp(values, io, async (app) => {
        const result = await rotateKeys(app.db, app.engine.models, {
          batchSize,
          pauseMs,
          encryptPlaintext: values["encrypt-plaintext"] === true,
          onProgress: progressWriter(io),
        });
        if (result.key === undefined) {
          print(io, "nothing to rotate: no field is encrypted");
          return;
        }
        print(io, `rotated ${result.rotated} ${result.rotated === 1 ? "value" : "values"} to key "${result.key}"`);
        if (result.failed.length === 0) return;
        const shown = result.failed.slice(0, 20).map((f) => `  ${f.entity}.${f.field} row ${f.id}: ${f.reason}`);
        const more = result.failed.length > 20 ? [`  … and ${result.failed.length - 20} more`] : [];
        throw new Error(
          `${result.failed.length} ${result.failed.length === 1 ? "value" : "values"} could not be decrypted and were left as they are:\n${[...shown, ...more].join("\n")}`,
        );
      });
    },
  },
];
