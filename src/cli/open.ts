/** Opening the app a command acts on (`--config`, `--db`) and printing its answer. */
import { randomBytes } from "node:crypto";
import { type CitadelApp, type CreateAppInput, createApp } from "../app.js";
import type { Values } from "./commands.js";
import type { CliIo } from "./io.js";
import { loadAppInput } from "./load.js";

/** Write one line (or several) to standard output. */
export const print = (io: CliIo, text: string) => io.stdout(`${text}\n`);

/**
 * The app of `--config`, on `--db` when given. The CLI issues no tokens, so a config without a JWT secret gets
 * the environment's `CITADEL_JWT_SECRET` or a throwaway one instead of refusing to start (§3.2).
 */
export async function openApp(values: Values, io: CliIo, destructive = false): Promise<CitadelApp> {
  const input: CreateAppInput = await loadAppInput(values.config!);
  const config = input.config;
  const secret = config?.auth?.jwt?.secret || io.env.CITADEL_JWT_SECRET || randomBytes(48).toString("base64url");
  return createApp({
    ...input,
    connection: values.db ? { ...input.connection, url: values.db } : input.connection,
    config: config?.auth ? { ...config, auth: { ...config.auth, jwt: { ...config.auth.jwt, secret } } } : config,
    options: {
      ...input.options,
      destructive: destructive || input.options?.destructive,
      encryptionKeys: input.options?.encryptionKeys ?? io.env.CITADEL_ENCRYPTION_KEYS,
      log: input.options?.log ?? ((message, error) => io.stderr(`citadel: ${message}${error ? ` ${error}` : ""}\n`)),
    },
  });
}

/** Open the app, run `use` on it and close it, whatever happens. */
export async function withApp(values: Values, io: CliIo, use: (app: CitadelApp) => Promise<void>): Promise<void> {
  const app = await openApp(values, io);
  try {
    await use(app);
  } finally {
    await app.close();
  }
}
