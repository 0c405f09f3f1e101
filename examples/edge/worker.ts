/**
 * The docs' Step 6 (public and owner access) as a module worker for workerd / Cloudflare Workers, on a libSQL
 * server over HTTP. Bindings: LIBSQL_URL (and LIBSQL_TOKEN for Turso), CITADEL_JWT_SECRET (≥ 32 bytes).
 * Run with `npx wrangler dev` beside wrangler.toml, or under plain workerd as test/edge/workerd.test.ts does.
 */
import { citadel } from "citadel/adapter/edge";
import step6 from "../access/step6-public-and-owner.js";

const auth = step6.config?.auth;

export default citadel({
  // Step 6 as written, plus sign-up: new users get the "user" role and own what they create
  config: { ...step6.config, auth: { ...auth, allow_register: true, default_role_register: "user" } },
});
