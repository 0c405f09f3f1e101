/** Node's runtime ports: its drivers (connect.ts), native argon2, and the socket address from @hono/node-server. */
import { getConnInfo } from "@hono/node-server/conninfo";
import type { Argon2, Runtime } from "../../src/runtime.js";
import { connect } from "./connect.js";

/** The native module loads on the first hash, so an app without auth never loads it. */
const argon2: Argon2 = {
  async hash(password, options) {
    const native = await import("argon2");
    return native.hash(password, { ...options, type: native.argon2id });
  },
  async verify(hash, password) {
    return (await import("argon2")).verify(hash, password);
  },
};

export const nodeRuntime: Runtime = {
  connector: connect,
  argon2,
  remoteAddress(c) {
    try {
      return getConnInfo(c).remote.address;
    } catch {
      return undefined; // not served by @hono/node-server (e.g. app.fetch called directly)
    }
  },
};
