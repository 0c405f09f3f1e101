/** Node adapter: `serve()` on @hono/node-server, connections through Node's drivers (connect.ts); no business logic. */
import type { AddressInfo } from "node:net";
import { serve as honoServe } from "@hono/node-server";
import type { ServeOptions } from "../../src/index.js";
import { DEFAULT_PORT, type Listen, type ServerHandle, serveWith } from "../serve.js";
import { nodeRuntime } from "./runtime.js";

export type { ServeOptions, ServerHandle };
export { DEFAULT_PORT };

const listen: Listen = (app, port, hostname) =>
  new Promise((resolve, reject) => {
    const server = honoServe({ fetch: app.fetch, port, hostname }, (info: AddressInfo) =>
      resolve({
        port: info.port,
        hostname: info.address,
        close: () => new Promise<void>((closed) => server.close(() => closed())),
      }),
    );
    server.once("error", reject);
  });

/**
 * Start Citadel on Node. Returns at once with a handle; `await handle.ready` to know it listens. When startup
 * fails, the error is printed once (`citadel: cannot start: …`, no stack), the process exit code is set to
 * 1 and `ready` rejects with it; a caller that catches it can still recover (and reset the exit code).
 */
export function serve(options: ServeOptions): ServerHandle {
  return serveWith(options, nodeRuntime, listen);
}
