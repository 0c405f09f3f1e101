/** Opening the app a command acts on (`--config`, `--db`) and printing its answer. */
import { randomBytes } from "node:crypto";
import { type CitadelApp, type CreateAppInput, createApp } from "../app.js";
import type { Values } from "./commands.js";
import type { CliIo } from "./io.js";
import { loadAppInput } from "./load.js";

/** Write one line (or several) to standard output. */
export const print = (io: CliIo, text: string) => io.stdout(`${text}\n`);

export interface OpenHow {
  /** apply schema changes that drop or rewrite columns (`sync --destructive`) */
  destructive?: boolean;
  /** a private in-memory database unless `--db` names one, without the config's seed: for static commands */
  scratch?: boolean;
  /** a server: its tokens must verify after a restart, so it takes no throwaway JWT secret */
  issuesTokens?: boolean;
}

/**
 * The `createApp` input of `--config`, on `--db` when given. The JWT secret is the config's or the environment's
 * `CITADEL_JWT_SECRET`; a command whose tokens nobody outside it sees gets a throwaway one instead of refusing to
 * start (§3.2), a server (`issuesTokens`) never: the app refuses to start without one.
 */
export async function appInput(values: Values, io: CliIo, how: OpenHow = {}): Promise<CreateAppInput> {
  const input: CreateAppInput = await loadAppInput(values.config!);
  const config = input.config;
  const secret =
    config?.auth?.jwt?.secret ||
    io.env.CITADEL_JWT_SECRET ||
    (how.issuesTokens ? undefined : randomBytes(48).toString("base64url"));
  const keys = input.options?.encryptionKeys ?? io.env.CITADEL_ENCRYPTION_KEYS;
  const connection = values.db
    ? { ...input.connection, url: values.db }
    : how.scratch
      ? { url: ":memory:" }
      : input.connection;
  return {
    ...input,
    connection,
    config:
      config?.auth && secret !== undefined
        ? { ...config, auth: { ...config.auth, jwt: { ...config.auth.jwt, secret } } }
        : config,
    options: {
      ...input.options,
      ...(how.scratch ? { seed: undefined } : {}),
      destructive: how.destructive || input.options?.destructive,
      // a scratch database holds no value to decrypt: any key lets a config with encrypted fields start
      encryptionKeys: keys ?? (how.scratch ? `scratch:${randomBytes(32).toString("base64")}` : undefined),
      log: input.options?.log ?? ((message, error) => io.stderr(`citadel: ${message}${error ? ` ${error}` : ""}\n`)),
    },
  };
}

/** The app of `--config`, on `--db` when given (see `appInput`). */
export async function openApp(values: Values, io: CliIo, how: OpenHow = {}): Promise<CitadelApp> {
  return createApp(await appInput(values, io, how));
}

/** Open the app, run `use` on it and close it, whatever happens. */
export async function withApp(
  values: Values,
  io: CliIo,
  use: (app: CitadelApp) => Promise<void>,
  how: OpenHow = {},
): Promise<void> {
  const app = await openApp(values, io, how);
  try {
    await use(app);
  } finally {
    await app.close();
  }
}
