/** The edge runtime's ports: libSQL over HTTP (connect.ts), argon2id in WebAssembly (argon2.ts), client addresses. */
import type { Context } from "hono";
import type { Runtime } from "../../src/runtime.js";
import { type WasmModules, wasmArgon2 } from "./argon2.js";
import { connect } from "./connect.js";

export interface EdgeRuntimeOptions {
  /** hash-wasm's binaries compiled ahead of time, for runtimes that refuse to compile WebAssembly from bytes */
  wasm?: WasmModules;
  /**
   * A request header that the platform itself sets to the client's address, e.g. `cf-connecting-ip` on
   * Cloudflare Workers. Off by default; see `remoteAddress` below.
   */
  clientAddressHeader?: string;
}

/**
 * An edge runtime exposes no socket address. A header such as CF-Connecting-IP is the client's address only
 * where the platform writes it whatever the client sent: true on Cloudflare's network (Cloudflare's docs: it is
 * the connecting client's address; in a subrequest from a Worker of the same zone it is that Worker's
 * x-real-ip, so your own code), false on a self-hosted workerd or behind another proxy, and nothing in the
 * request tells the two apart. So it is read only when the deployment names it (`clientAddressHeader`);
 * otherwise the address is unknown and rate limits by address fall back to X-Forwarded-For under
 * `server.trust_proxy`, or to one shared bucket (src/http/client.ts).
 */
export function edgeRuntime(options: EdgeRuntimeOptions = {}): Runtime {
  const header = options.clientAddressHeader?.toLowerCase();
  return {
    connector: connect,
    argon2: wasmArgon2(options.wasm),
    remoteAddress: (c: Context) => (header ? c.req.header(header)?.trim() || undefined : undefined),
  };
}
