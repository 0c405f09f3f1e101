/**
 * What `createApp` and the adapters take beside `config` is as strict as the config (§1.8): a misspelled
 * `connection.ulr` would otherwise open `file:data.db` in the working directory, and servers meant to share
 * one database would each write their own.
 */
import { ConfigError } from "../errors.js";
import { unknownKey } from "./messages.js";

const INPUT_KEYS = ["connection", "runtime", "config", "options"];
const CONNECTION_KEYS = ["url", "authToken", "driver", "pool"];
const POOL_KEYS = ["max", "timeoutMs"];
const OPTION_KEYS = ["seed", "destructive", "log", "rateLimitStore", "encryptionKeys"];

/** Throw a ConfigError at the first key of `value` (an object, when given) that is not `known`. */
export function refuseUnknownKeys(value: unknown, known: readonly string[], path: string): void {
  if (value === undefined) return;
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new ConfigError(path, "expected an object");
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) throw new ConfigError(path, unknownKey(key, known));
  }
}

/** Check `createApp`'s input; `extra` names the keys an adapter adds to it (`port`, …). */
export function checkAppInput(input: unknown, extra: readonly string[] = [], root = "createApp"): void {
  refuseUnknownKeys(input, [...INPUT_KEYS, ...extra], root);
  const { connection, options } = (input ?? {}) as { connection?: unknown; options?: unknown };
  refuseUnknownKeys(connection, CONNECTION_KEYS, "connection");
  refuseUnknownKeys((connection as { pool?: unknown } | undefined)?.pool, POOL_KEYS, "connection.pool");
  refuseUnknownKeys(options, OPTION_KEYS, "options");
}
