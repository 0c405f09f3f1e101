/** Node adapter: `serve()` on @hono/node-server, connections through Node's drivers (connect.ts); no business logic. */
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { serve as honoServe } from "@hono/node-server";
import type { ServeOptions } from "../../src/index.js";
import { DEFAULT_PORT, type Listen, type ServerHandle, serveWith } from "../serve.js";
import { nodeRuntime } from "./runtime.js";

export type { ServeOptions, ServerHandle };
export { DEFAULT_PORT };

/**
 * Node answers a request it cannot parse itself, with an empty body: a request line and headers past its
 * 16 KiB (431, a long `where` in the URL), or a malformed one (400). Answered here in the API's error shape.
 */
function answerUnparsable(error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === "ECONNRESET" || !socket.writable) return;
  const tooLarge = error.code === "HPE_HEADER_OVERFLOW";
  const body = JSON.stringify({
    error: {
      code: "bad_request",
      message: tooLarge
        ? "the request line and headers exceed 16 KiB: send a long query as the JSON body of POST /api/data/:entity/query"
        : "the request could not be parsed as HTTP",
    },
  });
  socket.end(
    `HTTP/1.1 ${tooLarge ? "431 Request Header Fields Too Large" : "400 Bad Request"}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

const listen: Listen = (app, port, hostname) =>
  new Promise((resolve, reject) => {
    const server = honoServe({ fetch: app.fetch, port, hostname }, (info: AddressInfo) =>
      resolve({
        port: info.port,
        hostname: info.address,
        close: () => new Promise<void>((closed) => server.close(() => closed())),
      }),
    );
    server.on("clientError", answerUnparsable);
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
