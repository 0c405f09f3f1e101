#!/usr/bin/env node
/**
 * `citadel`: the command line.
 *   citadel user create --config <file> --email <email> [--role <role>] [--db <url>]
 *   citadel sync --config <file> [--destructive] [--db <url>]
 *   citadel explain --config <file> --role <role> --permission <permission> --entity <entity> [--json]
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { type CitadelApp, type CreateAppInput, createApp } from "../app.js";
import { formatExplanation } from "../guard/explain.js";
import { loadAppInput } from "./load.js";
import { readPassword } from "./prompt.js";

const USAGE = `Usage:
  citadel user create --config <file> --email <email> [--role <role>] [--db <url>]
      Create a user. The password is read from stdin when piped, otherwise prompted for.
  citadel sync --config <file> [--destructive] [--db <url>]
      Sync the database schema; --destructive applies changes that drop or rewrite columns.
  citadel explain --config <file> --role <role> --permission <permission> --entity <entity> [--json]
      What the guard decides for that role, the policies that matched and the SQL WHERE it adds.
      Leave --role out for callers without a token (the default role).

  --config <file>  a module whose default export (or export \`app\`) is { connection, config, options }
  --db <url>       use this database instead of the config's connection (e.g. file:data.db)`;

class UsageError extends Error {}

type Values = {
  config?: string;
  email?: string;
  role?: string;
  db?: string;
  destructive?: boolean;
  permission?: string;
  entity?: string;
  json?: boolean;
};

async function openApp(values: Values, destructive = false): Promise<CitadelApp> {
  if (!values.config) throw new UsageError("--config <file> is required");
  const input: CreateAppInput = await loadAppInput(values.config);
  // The CLI issues no tokens, so it needs no JWT secret; a throwaway one keeps startup from refusing.
  process.env.CITADEL_JWT_SECRET ||= randomBytes(48).toString("base64url");
  return createApp({
    ...input,
    connection: values.db ? { ...input.connection, url: values.db } : input.connection,
    options: { ...input.options, destructive: destructive || input.options?.destructive },
  });
}

async function userCreate(values: Values): Promise<void> {
  if (!values.email) throw new UsageError("--email <email> is required");
  const app = await openApp(values);
  try {
    if (!app.config.auth.enabled) throw new Error("auth is disabled in this config (config.auth.enabled)");
    const password = await readPassword();
    const user = await app.module.auth.createUser({ email: values.email, password, role: values.role ?? null });
    console.log(`created user #${user.id} ${user.email}${user.role ? ` (role ${user.role})` : ""}`);
  } finally {
    await app.close();
  }
}

async function sync(values: Values): Promise<void> {
  const app = await openApp(values, values.destructive === true);
  await app.close();
  console.log(values.destructive ? "schema synced (destructive changes applied)" : "schema synced");
}

async function explainCommand(values: Values): Promise<void> {
  const app = await openApp(values);
  try {
    const explanation = app.explain({ role: values.role, permission: values.permission, entity: values.entity });
    console.log(values.json ? JSON.stringify(explanation, null, 2) : formatExplanation(explanation));
  } finally {
    await app.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: "string", short: "c" },
      email: { type: "string" },
      role: { type: "string" },
      db: { type: "string" },
      destructive: { type: "boolean" },
      permission: { type: "string" },
      entity: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  const command = positionals.join(" ");
  if (values.help || command === "" || command === "help") {
    console.log(USAGE);
    return;
  }
  if (command === "user create") return userCreate(values);
  if (command === "sync") return sync(values);
  if (command === "explain") return explainCommand(values);
  throw new UsageError(`unknown command "${command}"`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  console.error(`citadel: ${message}`);
  if (error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS"))
    console.error(`\n${USAGE}`);
  process.exitCode = 1;
});
