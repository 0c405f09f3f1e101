/**
 * The CLI's commands as data (12.1): name, options, help text and a `run` that opens the app, calls one
 * module function and prints its answer. Decisions about users live in `auth/admin.ts`, not here.
 */
import type { CitadelApp } from "../app.js";
import type { ApiKeyInfo, ApiKeys, NewApiKey } from "../auth/index.js";
import type { Row } from "../data/codec.js";
import { formatExplanation } from "../guard/explain.js";
import { ACCESS_COMMANDS } from "./access-report.js";
import { TEST_COMMANDS } from "./access-tests.js";
import { accountId, requireAccount } from "./accounts.js";
import { AUDIT_COMMANDS } from "./audit.js";
import { ENCRYPTION_COMMANDS } from "./encryption.js";
import type { CliIo } from "./io.js";
import { openApp, print, withApp } from "./open.js";
import { OPENAPI_COMMANDS } from "./openapi.js";
import { readPassword } from "./prompt.js";
import { SERVE_COMMANDS } from "./serve.js";
import { table } from "./table.js";
import { UsageError } from "./usage.js";

export { UsageError };

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
  name: { type: "string", arg: "<name>", help: 'what the key is for, e.g. "web app"' },
  kind: { type: "string", arg: "<kind>", help: "publishable (browsers) or secret (servers only)" },
  expires: { type: "string", arg: "<date>", help: "when the key stops working, e.g. 2030-01-01T00:00:00Z" },
  origins: { type: "string", arg: "<list>", help: "publishable keys: the origins it works from, comma-separated" },
  ips: { type: "string", arg: "<list>", help: "secret keys: the client addresses it works from, comma-separated" },
  id: { type: "string", arg: "<id>", help: "the key's id (see `citadel key list`)" },
  grace: { type: "string", arg: "<seconds>", help: "how long the old key keeps working (default 0)" },
  tenant: {
    type: "string",
    arg: "<account id>",
    help: "an account (config.tenancy): the key's, or the caller's to explain",
  },
  account: { type: "string", arg: "<id>", help: "the account (config.tenancy) the user belongs to" },
  port: { type: "string", arg: "<n>", help: "the port to listen on (0: any free port; default $PORT, else 7654)" },
  hostname: { type: "string", arg: "<host>", help: "the address to listen on, e.g. 127.0.0.1 (default: all)" },
  json: { type: "boolean", help: "print JSON instead of text" },
  lines: { type: "string", short: "n", arg: "<N>", help: "how many entries, the latest (default 20)" },
  follow: { type: "boolean", short: "f", help: "keep printing new entries as they are written (Ctrl-C stops)" },
  "batch-size": { type: "string", arg: "<rows>", help: "rows per transaction (default 500)" },
  "pause-ms": { type: "string", arg: "<ms>", help: "pause between batches, to spare a busy database (default 0)" },
  "encrypt-plaintext": {
    type: "boolean",
    help: "also encrypt values stored before their field was encrypted (only if no one could write them)",
  },
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
  /** options it takes more than once (`diff --config old --config new`); every other one is a usage error */
  repeatable?: OptionName[];
  /** a required argument after the options (`test --config app.ts <cases>`) */
  argument?: { name: string; help: string };
  /** the exit code when it is an answer other than 0 (`diff`: 3, it widens; `test`: 1, a case failed); failures throw */
  run(values: Values, io: CliIo, given: Given): Promise<number | undefined> | Promise<void>;
}

/** What the command line holds besides the options' last values: every value of each option, the argument. */
export interface Given {
  repeated: ReadonlyMap<OptionName, string[]>;
  argument?: string;
}

const label = (user: Row) => `#${user.id} ${user.email}`;
const roleOf = (user: Row) => (typeof user.role === "string" ? `role ${user.role}` : "no role");

function userTable(users: Row[]): string {
  if (users.length === 0) return "no users";
  const columns = ["id", "email", "role", "created_at"] as const;
  return table(
    columns,
    users.map((u) => columns.map((c) => (u[c] === null || u[c] === undefined ? "-" : String(u[c])))),
  );
}

const APP = ["config", "db"] as const;

/** The app's API keys module; an error that says how to turn it on when the config has keys off. */
function keysOf(app: CitadelApp): ApiKeys {
  const keys = app.module.auth.apiKeys;
  if (!keys) throw new Error("API keys are disabled: set config.auth.api_keys.enabled to true");
  return keys;
}

const list = (value: string | undefined) => value?.split(",").map((item) => item.trim());

function keyId(value: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError("--id expects a key id (a number; see `citadel key list`)");
  return Number(value);
}

function keyTable(keys: ApiKeyInfo[]): string {
  if (keys.length === 0) return "no API keys";
  const state = (k: ApiKeyInfo) =>
    k.revoked_at ? "revoked" : k.replaced_by !== null ? `replaced by ${k.replaced_by}` : "active";
  const rows = keys.map((k) => [
    String(k.id),
    k.prefix,
    k.kind,
    k.role ?? "-",
    k.tenant === null ? "-" : String(k.tenant),
    k.name,
    state(k),
    k.expires_at ?? "-",
  ]);
  return table(["id", "prefix", "kind", "role", "tenant", "name", "state", "expires_at"], rows);
}

/** The options `key create` sets a key's fields by, where their names differ. */
const KEY_OPTIONS: Record<string, string> = {
  expires_at: "--expires",
  allowed_origins: "--origins",
  allowed_ips: "--ips",
};

/** A refusal naming a key's field (`expires_at: …`), said as the option the user typed (`--expires: …`). */
function saidAsOption(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const field = /^(\w+):/.exec(error.message)?.[1];
  const option = field && KEY_OPTIONS[field];
  if (option) error.message = option + error.message.slice(field.length);
  return error;
}

/** The new key, once: it cannot be shown again. */
const printKey = (io: CliIo, verb: string, key: NewApiKey) =>
  print(
    io,
    `${verb} ${key.kind} key #${key.id} ${JSON.stringify(key.name)} (${key.role ? `role ${key.role}` : "no role of its own"}` +
      `${key.tenant === null ? "" : `, account ${key.tenant}`})\n` +
      `${key.key}\nStore it now: it is not shown again.`,
  );

/** Every command, in the order `citadel --help` lists them. */
export const COMMANDS: Command[] = [
  ...SERVE_COMMANDS,
  {
    name: "sync",
    summary: "Sync the database schema with the config",
    details: "Changes that drop or rewrite columns are refused (nothing is changed) unless --destructive is given.",
    options: [...APP, "destructive"],
    required: ["config"],
    async run(values, io) {
      const app = await openApp(values, io, { destructive: values.destructive === true });
      await app.close();
      print(io, values.destructive ? "schema synced (destructive changes applied)" : "schema synced");
    },
  },
  {
    name: "explain",
    summary: "What the guard decides for a role, permission and entity, and the SQL WHERE it adds",
    details:
      "Leave --role out for callers without a token (the default role).\n" +
      "With tenant isolation (config.tenancy) the SQL holds the caller's account as @tenant, or --tenant's id.\n" +
      "A DENY for a configured role is an answer (exit 0); an unknown role, permission or entity is an error (exit 1).",
    options: [...APP, "role", "permission", "entity", "tenant", "json"],
    required: ["config", "permission", "entity"],
    run: (values, io) =>
      withApp(values, io, async (app) => {
        const id = accountId(values.tenant, "tenant");
        const tenant = id === undefined ? undefined : await requireAccount(app, id, "tenant");
        const { role, permission, entity } = values;
        const explanation = app.explain({ role, permission, entity, tenant });
        print(io, values.json ? JSON.stringify(explanation, null, 2) : formatExplanation(explanation));
      }),
  },
  ...ACCESS_COMMANDS,
  ...TEST_COMMANDS,
  ...OPENAPI_COMMANDS,
  {
    name: "user create",
    summary: "Create a user (password from stdin or a prompt)",
    details:
      "The password is read from stdin when it is piped, otherwise prompted for twice without echo.\n" +
      "Without --role the user gets config.auth.default_role_register (no role when none is set).\n" +
      "With tenant isolation (config.tenancy), --account puts the user in that account; without it the user\n" +
      "belongs to none and sees no scoped rows (unless its role is config.tenancy.superadmin_role).",
    options: [...APP, "email", "role", "account"],
    required: ["config", "email"],
    run: (values, io) =>
      withApp(values, io, async (app) => {
        const users = app.module.auth.users;
        const id = accountId(values.account, "account");
        // checked before the password is asked for: nothing to type for a user that cannot be created
        const account =
          id === undefined ? {} : { [app.config.tenancy.field]: await requireAccount(app, id, "account") };
        const password = await readPassword(io);
        const user = await users.create({ email: values.email!, password, role: values.role, ...account });
        const source = values.role === undefined && user.role ? ", from config.auth.default_role_register" : "";
        const member = id === undefined ? "" : `, account ${user[app.config.tenancy.field]}`;
        print(io, `created user ${label(user)} (${roleOf(user)}${source}${member})`);
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
  {
    name: "key create",
    summary: "Create an API key and print it once (5.5)",
    details:
      "Without --role a publishable key acts as config.auth.api_keys.publishable_role and a secret key as\n" +
      "secret_role (none: it bypasses the guard). The key is printed once; only its SHA-256 digest is stored.\n" +
      "With tenant isolation (config.tenancy), --tenant binds the key to that account; without it a publishable\n" +
      "key sees no scoped rows and a secret key reaches every account.",
    options: [...APP, "name", "kind", "role", "tenant", "expires", "origins", "ips"],
    required: ["config", "name", "kind"],
    run: (values, io) =>
      withApp(values, io, async (app) => {
        const key = await keysOf(app)
          .create({
            name: values.name,
            kind: values.kind,
            role: values.role,
            tenant: accountId(values.tenant, "tenant"),
            expires_at: values.expires,
            allowed_origins: list(values.origins),
            allowed_ips: list(values.ips),
          })
          .catch((error: unknown) => {
            throw saidAsOption(error);
          });
        printKey(io, "created", key);
      }),
  },
  {
    name: "key list",
    summary: "List API keys: id, prefix, kind, role, name, state (never a key or its hash)",
    options: [...APP, "json"],
    required: ["config"],
    run: (values, io) =>
      withApp(values, io, async (app) => {
        const keys = await keysOf(app).list();
        print(io, values.json ? JSON.stringify(keys, null, 2) : keyTable(keys));
      }),
  },
  {
    name: "key rotate",
    summary: "Replace an API key with a new one, printed once; the old one works --grace seconds more",
    options: [...APP, "id", "grace"],
    required: ["config", "id"],
    run: (values, io) =>
      withApp(values, io, async (app) => {
        const grace = values.grace === undefined ? 0 : Number(values.grace);
        const key = await keysOf(app).rotate(keyId(values.id!), { grace_seconds: grace });
        printKey(io, `rotated key #${values.id} (it works ${grace} more seconds); new`, key);
      }),
  },
  {
    name: "key revoke",
    summary: "Revoke an API key at once",
    options: [...APP, "id"],
    required: ["config", "id"],
    run: (values, io) =>
      withApp(values, io, async (app) => {
        const key = await keysOf(app).revoke(keyId(values.id!));
        print(io, `revoked ${key.kind} key #${key.id} ${JSON.stringify(key.name)} (${key.prefix}…)`);
      }),
  },
  ...AUDIT_COMMANDS,
  ...ENCRYPTION_COMMANDS,
];
