/**
 * Edge adapter: `citadel(options)` is a module worker, `{ fetch(request, env, ctx) }`, for workerd / Cloudflare
 * Workers and other Fetch API runtimes. The app is built on the first request, when the bindings (`env`) that
 * name the database and hold the JWT secret arrive; no business logic here.
 */

import { refuseUnknownKeys } from "../../src/config/input.js";
import {
  type CitadelApp,
  type CitadelConfig,
  type ConnectionConfig,
  type CreateAppInput,
  createApp,
} from "../../src/index.js";
import type { WasmModules } from "./argon2.js";
import { type EdgeRuntimeOptions, edgeRuntime } from "./runtime.js";
import { hashWasmModules } from "./wasm/index.js";

export { wasmArgon2 } from "./argon2.js";
export { connect } from "./connect.js";
export { type EdgeRuntimeOptions, edgeRuntime } from "./runtime.js";

/** The worker's bindings: plain text values by default (`LIBSQL_URL`, `LIBSQL_TOKEN`, `CITADEL_JWT_SECRET`). */
export type Bindings = Record<string, unknown>;

export interface EdgeOptions<Env = Bindings> extends Omit<CreateAppInput, "connection" | "config" | "runtime"> {
  /** The connection, or a function of the bindings; defaults to `{ url: env.LIBSQL_URL, authToken: env.LIBSQL_TOKEN }`. */
  connection?: ConnectionConfig | ((env: Env) => ConnectionConfig);
  /** The config, or a function of the bindings. Without `auth.jwt.secret`, `env.CITADEL_JWT_SECRET` is used. */
  config?: CitadelConfig | ((env: Env) => CitadelConfig);
  /** hash-wasm's compiled binaries; the ones shipped in wasm/ by default (imported as modules, as workerd wants). */
  wasm?: WasmModules;
  /** See `EdgeRuntimeOptions.clientAddressHeader`: only a header the platform itself sets, e.g. `cf-connecting-ip`. */
  clientAddressHeader?: EdgeRuntimeOptions["clientAddressHeader"];
}

export interface EdgeWorker<Env = Bindings> {
  fetch(request: Request, env: Env, ctx?: unknown): Promise<Response>;
  /** The app, built from `env` on first use (the same one `fetch` serves). */
  app(env: Env): Promise<CitadelApp>;
}

/** What `citadel()` takes; anything else is a misspelling (§1.8). */
const EDGE_KEYS = ["connection", "config", "options", "wasm", "clientAddressHeader"];

const text = (value: unknown) => (typeof value === "string" && value !== "" ? value : undefined);

function defaultConnection(env: Bindings): ConnectionConfig {
  const url = text(env.LIBSQL_URL);
  if (!url) throw new Error("set connection in citadel({ … }), or the LIBSQL_URL binding to a libSQL server's URL");
  return { url, authToken: text(env.LIBSQL_TOKEN) };
}

/** The config with the JWT secret from `env.CITADEL_JWT_SECRET` when the config names none. */
function withSecret(config: CitadelConfig | undefined, env: Bindings): CitadelConfig | undefined {
  const secret = text(env.CITADEL_JWT_SECRET);
  if (!secret || !config?.auth || config.auth.jwt?.secret !== undefined) return config;
  return { ...config, auth: { ...config.auth, jwt: { ...config.auth.jwt, secret } } };
}

/** A module worker serving Citadel; `export default citadel({ config })`. */
export function citadel<Env = Bindings>(options: EdgeOptions<Env>): EdgeWorker<Env> {
  // connection and config may be functions of the bindings: createApp checks what they return
  refuseUnknownKeys(options, EDGE_KEYS, "citadel");
  const runtime = edgeRuntime({
    wasm: options.wasm ?? hashWasmModules,
    clientAddressHeader: options.clientAddressHeader,
  });
  let building: Promise<CitadelApp> | undefined;

  const build = async (env: Env): Promise<CitadelApp> => {
    const bindings = (env ?? {}) as Bindings;
    const { connection, config } = options;
    const encryptionKeys = options.options?.encryptionKeys ?? text(bindings.CITADEL_ENCRYPTION_KEYS);
    return createApp({
      connection: typeof connection === "function" ? connection(env) : (connection ?? defaultConnection(bindings)),
      config: withSecret(typeof config === "function" ? config(env) : config, bindings),
      // a worker's secrets are bindings, not process.env (§10.1)
      options: { ...options.options, ...(encryptionKeys === undefined ? {} : { encryptionKeys }) },
      runtime,
    });
  };

  // One app per isolate: the bindings do not change between requests. A failed start is retried on the next one.
  const app = (env: Env) => {
    building ??= build(env).catch((error: unknown) => {
      building = undefined;
      throw error;
    });
    return building;
  };

  return {
    app,
    async fetch(request, env) {
      let ready: CitadelApp;
      try {
        ready = await app(env);
      } catch (error) {
        // the reason goes to the worker's log, not to whoever sent the request
        console.error(`citadel: cannot start: ${error instanceof Error ? error.message : String(error)}`);
        return Response.json({ error: "the server could not start" }, { status: 503 });
      }
      return ready.fetch(request, env);
    },
  };
}
