/** Bun's runtime ports: bun:sqlite and Node's other drivers (connect.ts), native argon2, and `server.requestIP`. */
import type { Context } from "hono";
import type { Runtime } from "../../src/runtime.js";
import { nodeRuntime } from "../node/runtime.js";
import { connect } from "./connect.js";

/** What `Bun.serve` passes as the second argument of `fetch`, which the adapter hands to the app as `env`. */
export interface BunServerEnv {
  requestIP(request: Request): { address: string; family: string; port: number } | null;
}

export const bunRuntime: Runtime = {
  connector: connect,
  // the native argon2 module loads under Bun (N-API), lazily as on Node
  argon2: nodeRuntime.argon2,
  remoteAddress(c: Context) {
    const server = c.env as Partial<BunServerEnv> | undefined;
    // undefined when the app is not served by Bun.serve (e.g. app.fetch called directly)
    return typeof server?.requestIP === "function" ? (server.requestIP(c.req.raw)?.address ?? undefined) : undefined;
  },
};
