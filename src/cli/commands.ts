/**
 * The CLI's commands as data (12.1): name, options, help text and a `run` that opens the app, calls one
 * module function and prints its answer. Decisions about users live in `auth/admin.ts`, not here.
 */
import { randomBytes } from "node:crypto";
import { type CitadelApp, type CreateAppInput, createApp } from "../app.js";
import type { Row } from "../data/codec.js";
import { formatExplanation } from "../guard/explain.js";
import type { CliIo } from "./io.js";
import { loadAppInput } from "./load.js";
import { readPassword } from "./prompt.js";

/** Every option any command takes; a command lists the names it accepts. */
export const OPTIONS = {
  config: {
    type: "string",
    short: "c",
    arg: "<file>",
    help: "a module whose default export (or export `app`) is { connection, config, options }",
  },
  db: {
    type: "string",
    arg: "<url>",
    help: "use this database instead of the config's connection (e.g. file:data.db)",
  },
  email: { type: "string", arg: "<email>", help: "the user's email address" },
  role: { type: "string", arg: "<role>", help: "one of the config's roles" },
  permission: { type: "string", arg: "<permission>", help: "e.g. data.entity.read" },
  entity: { type: "string", arg: "<entity>", help: "an entity of the config" },
  destructive: { type: "boolean", help: "apply changes that drop or rewrite columns" },
  json: { type: "boolean", help: "print JSON instead of text" },
} as const;

export type OptionName = keyof typeof OPTIONS;
export type Values = { [K in OptionName]?: (typeof OPTIONS)[K]["type"] extends "string" ? string : boolean };

export interface Command {
  /** the words that name it, e.g. "user create" */
  name: string;
  summary: string;
  /** more lines for `--help` */
  details?: string;
  options: OptionName[];
  required: OptionName[];
  run(values: Values, io: CliIo): Promise<void>;
}

/** A command line the CLI cannot act on (exit code 2); `hint` says what would be right. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly hint = "Run `citadel --help` for the commands.",
  ) {
    super(message);
  }
}

const print = (io: CliIo, text: string) => io.stdout(`${text}\n`);

/**
 * The app of `--config`, on `--db` when given. The CLI issues no tokens, so a config without a JWT secret gets
 * the environment's `CITADEL_JWT_SECRET` or a throwaway one instead of refusing to start (§3.2).
 */
async function openApp(values: Values, io: CliIo, destructive = false): Promise<CitadelApp> {
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
      log: input.options?.log ?? ((message, error) => io.stderr(`citadel: ${message}${error ? ` ${error}` : ""}\n`)),
    },
  });
}

async function withApp(values: Values, io: CliIo, use: (app: CitadelApp) => Promise<void>): Promise<void> {
  const app = await openApp(values, io);
  try {
    await use(app);
  } finally {
    await app.close();
  }
}

const label = (user: Row) => `#${user.id} ${user.email}`;
const roleOf = (user: Row) => (typeof user.role === "string" ? `role ${user.role}` : "no role");

function userTable(users: Row[]): string {
  if (users.length === 0) return "no users";
  const columns = ["id", "email", "role", "created_at"] as const;
  const cells = users.map((u) => columns.map((c) => (u[c] === null || u[c] === undefined ? "-" : String(u[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (row: readonly string[]) =>
    row
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(columns), ...cells.map(line)].join("\n");
}

const APP = ["config", "db"] as const;

/** Every command, in the order `citadel --help` lists them. */
export const COMMANDS: Command[] = [
  {
    name: "sync",
    summary: "Sync the database schema with the config",
    details: "Changes that drop or rewrite columns are refused (nothing is changed) unless --destructive is given.",
    options: [...APP, "destructive"],
    required: ["config"],
    async run(values, io) {
      const app = await openApp(values, io, values.destructive === true);
      await app.close();
      print(io, values.destructive ? "schema synced (destructive changes applied)" : "schema synced");
    },
  },
  {
    name: "explain",
    summary: "What the guard decides for a role, permission and entity, and the SQL WHERE it adds",
    details:
      "Leave --role out for callers without a token (the default role).\n" +
      "A DENY for a configured role is an answer (exit 0); an unknown role, permission or entity is an error (exit 1).",
    options: [...APP, "role", "permission", "entity", "json"],
    required: ["config", "permission", "entity"],
    run: (values, io) =>
      withApp(values, io, async (app) => {
        const explanation = app.explain({ role: values.role, permission: values.permission, entity: values.entity });
        print(io, values.json ? JSON.stringify(explanation, null, 2) : formatExplanation(explanation));
      }),
  },
  {
    name: "user create",
    summary: "Create a user (password from stdin or a prompt)",
    details:
      "The password is read from stdin when it is piped, otherwise prompted for twice without echo.\n" +
      "Without --role the user gets config.auth.default_role_register (no role when none is set).",
    options: [...APP, "email", "role"],
    required: ["config", "email"],
    run: (values, io) =>
      withApp(values, io, async (app) => {
        const users = app.module.auth.users;
        const password = await readPassword(io);
        const user = await users.create({ email: values.email!, password, role: values.role });
        const source = values.role === undefined && user.role ? ", from config.auth.default_role_register" : "";
        print(io, `created user ${label(user)} (${roleOf(user)}${source})`);
      }),
  },
  {
    name: "user list",
    summary: "List users: id, email, role, created_at (never password hashes)",
    details: "--json prints every user as the API shows them (hidden fields are never included).",
    options: [...APP, "json"],
    required: ["config"],
    run: (values, io) =>
      withApp(values, io, async (app) => {
        const users = await app.module.auth.users.list();
        print(io, values.json ? JSON.stringify(users, null, 2) : userTable(users));
      }),
  },
  {
    name: "user set-role",
    summary: "Give a user another role; their older tokens stop working",
    options: [...APP, "email", "role"],
    required: ["config", "email", "role"],
    run: (values, io) =>
      withApp(values, io, async (app) => {
        const change = await app.module.auth.users.setRole(values.email!, values.role!);
        print(
          io,
          change.changed
            ? `user ${label(change.user)}: role ${change.previous ?? "(none)"} -> ${values.role}; their older tokens are revoked`
            : `user ${label(change.user)} already has role ${values.role} (nothing changed)`,
        );
      }),
  },
  {
    name: "user set-password",
    summary: "Set a user's password (from stdin or a prompt); their older tokens stop working",
    details: "The password is read from stdin when it is piped, otherwise prompted for twice without echo.",
    options: [...APP, "email"],
    required: ["config", "email"],
    run: (values, io) =>
      withApp(values, io, async (app) => {
        const users = app.module.auth.users;
        const user = await users.setPassword(values.email!, await readPassword(io));
        print(io, `password of user ${label(user)} changed; their older tokens are revoked`);
      }),
  },
  {
    name: "user delete",
    summary: "Delete a user; their tokens stop working",
    options: [...APP, "email"],
    required: ["config", "email"],
    run: (values, io) =>
      withApp(values, io, async (app) => {
        const user = await app.module.auth.users.delete(values.email!);
        print(io, `deleted user ${label(user)}; their tokens no longer work`);
      }),
  },
];
