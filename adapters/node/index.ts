/** Node adapter: `serve()` on @hono/node-server, connections through Node's drivers (connect.ts); no business logic. */
import { type IncomingMessage, type Server, type ServerResponse, STATUS_CODES } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { serve as honoServe } from "@hono/node-server";
import { BadRequestError, CitadelError } from "../../src/errors.js";
import { errorBody } from "../../src/http/errors.js";
import type { ServeOptions } from "../../src/index.js";
import { DEFAULT_PORT, type Listen, type ServerHandle, serveWith } from "../serve.js";
import { nodeRuntime } from "./runtime.js";

export type { ServeOptions, ServerHandle };
export { DEFAULT_PORT };

/** What Node's parser refuses, as the API answers it; anything else is 400. */
const UNPARSABLE: Record<string, CitadelError> = {
  HPE_HEADER_OVERFLOW: new CitadelError(
    "bad_request",
    431,
    "the request line and headers exceed 16 KiB: send a long query as the JSON body of POST /api/data/:entity/query",
  ),
  HPE_CHUNK_EXTENSIONS_OVERFLOW: new CitadelError(
    "payload_too_large",
    413,
    "the request's chunk extensions are too large",
  ),
  ERR_HTTP_REQUEST_TIMEOUT: new CitadelError("bad_request", 408, "the request was not received in time"),
};
const MALFORMED = new BadRequestError("the request could not be parsed as HTTP");
/**
 * How long an idle connection stays open for its next request: longer than load balancers keep theirs (AWS's 60 s;
 * Fastify's default, for the same reason). Node's 5 s closes a connection a balancer or client is reusing at that
 * moment, and the request sent on it fails.
 */
const KEEP_ALIVE_MS = 72_000;
/** How long a closing server waits for the answers under way before it cuts their connections. */
const CLOSE_GRACE_MS = 10_000;

/**
 * Node answers a request it cannot parse itself with an empty body: a request line and headers past its 16 KiB
 * (431, a long `where` in the URL), a malformed one (400). Answered here in the API's error shape — as Node
 * does, only while no answer is under way on the connection (a change-feed stream's body must not get one).
 */
function answerUnparsable(error: Error & { code?: string }, socket: Duplex): void {
  const answering = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
  if (error.code === "ECONNRESET" || !socket.writable || answering) {
    socket.destroy(error);
    return;
  }
  const refusal = UNPARSABLE[error.code ?? ""] ?? MALFORMED;
  const body = JSON.stringify(errorBody(refusal));
  socket.end(
    `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status]}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * How to stop a server: stop listening, and end each connection once no answer is under way on it. Node's close()
 * ends only the connections idle between two requests at that moment: one a client opened without sending a
 * request yet (browsers and undici open them ahead), or one whose answer (a change-feed stream the app just
 * ended) finishes later, would stay open for its keep-alive, and close() would wait that long.
 */
function closingOf(server: Server): () => Promise<void> {
  const answering = new Map<Duplex, number>();
  let closing = false;
  // destroyed, as Node's closeIdleConnections does: end() would leave a half-open client's side holding it
  const endIfIdle = (socket: Duplex) => {
    if (closing && answering.get(socket) === 0) socket.destroy();
  };
  server.on("connection", (socket: Duplex) => {
    answering.set(socket, 0);
    socket.once("close", () => answering.delete(socket));
  });
  server.on("request", (request: IncomingMessage, response: ServerResponse) => {
    const socket = request.socket;
    answering.set(socket, (answering.get(socket) ?? 0) + 1);
    response.once("close", () => {
      if (answering.has(socket)) answering.set(socket, answering.get(socket)! - 1);
      endIfIdle(socket);
    });
  });
  return () =>
    new Promise((closed) => {
      closing = true;
      // an answer still under way gets this long; then its connection is cut: close() also stops Node's request
      // timeouts, so a slow upload must not hold a shutdown forever
      const deadline = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
      deadline.unref();
      server.close(() => {
        clearTimeout(deadline);
        closed();
      });
      for (const socket of answering.keys()) endIfIdle(socket);
    });
}

const listen: Listen = (app, port, hostname) =>
  new Promise((resolve, reject) => {
    const server = honoServe({ fetch: app.fetch, port, hostname }, (info: AddressInfo) =>
      resolve({
        port: info.port,
        hostname: info.address,
        close,
      }),
    );
    (server as Server).keepAliveTimeout = KEEP_ALIVE_MS;
    const close = closingOf(server as Server);
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
