/**
 * The account options of the CLI (§6): `--tenant` of `key create` and `explain`, `--account` of `user create`.
 * An id that is not a positive whole number is a usage error; a missing account is a failure that names it,
 * checked before anything is written.
 */
import type { CitadelApp } from "../app.js";
import { UsageError } from "./usage.js";

/** The account id an option names; anything but a positive whole number is a usage error (exit 2). */
export function accountId(value: string | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  const id = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(id) || id < 1)
    throw new UsageError(`--${option} expects an account id (a positive whole number), not ${JSON.stringify(value)}`);
  return id;
}

/** The id, once the app isolates tenants and the tenant entity has that row; otherwise an error (exit 1). */
export async function requireAccount(app: CitadelApp, id: number, option: string): Promise<number> {
  const { enabled, entity } = app.config.tenancy;
  if (!enabled) throw new Error(`--${option}: tenant isolation is not enabled (config.tenancy.enabled)`);
  const rows = await app.module.data.list(entity, { id });
  if (rows.length === 0) throw new Error(`--${option}: no account has the id ${id} (entity "${entity}")`);
  return id;
}
