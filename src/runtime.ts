/**
 * What the runtime-neutral core needs from the runtime it runs on, as one value: how to open a connection,
 * how to hash passwords, and who is on the other end of a request. Each adapter (node, bun, edge) brings its
 * own; nothing else in src/ imports a driver, a native module or a server library.
 */
import type { Context } from "hono";
import type { Connector } from "./db/connection.js";

export interface Argon2Options {
  /** KiB */
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

/** argon2id in the PHC string format (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), the same on every runtime. */
export interface Argon2 {
  hash(password: string, options: Argon2Options): Promise<string>;
  /** False for a wrong password; may throw on a malformed hash. */
  verify(hash: string, password: string): Promise<boolean>;
}

export interface Runtime {
  connector: Connector;
  argon2: Argon2;
  /** The address of the request's peer socket, when the runtime knows it. */
  remoteAddress(c: Context): string | undefined;
}

/**
 * The path is a variable so that bundlers (esbuild, wrangler) do not follow it: an edge worker passes its own
 * runtime and must not carry Node's drivers, native argon2 or @hono/node-server.
 */
const NODE_RUNTIME = "../adapters/node/runtime.js";
const BUN_RUNTIME = "../adapters/bun/runtime.js";

/** The runtime `createApp` uses when called without one: Bun's under Bun, Node's otherwise; loaded only then. */
export const defaultRuntime = async (): Promise<Runtime> =>
  "Bun" in globalThis
    ? ((await import(/* @vite-ignore */ BUN_RUNTIME)) as typeof import("../adapters/bun/runtime.js")).bunRuntime
    : ((await import(/* @vite-ignore */ NODE_RUNTIME)) as typeof import("../adapters/node/runtime.js")).nodeRuntime;
