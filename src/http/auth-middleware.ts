/**
 * Who is asking (§4.1): resolves the Subject of every `/api/*` request from the Bearer header first, then
 * the session cookie. No credentials → anonymous (`role: undefined`); a credential that does not verify is
 * 401, never anonymous. Cookie-authenticated writes pass the CSRF check (§3.7).
 */
import type { MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import type { Authenticated, AuthModule } from "../auth/index.js";
import { UnauthorizedError } from "../errors.js";
import type { Subject } from "../guard/access.js";
import { checkCsrf } from "./csrf.js";

export interface AuthVariables {
  subject: Subject;
  /** the verified credential, when there is one */
  authenticated: Authenticated | undefined;
}

export type AuthEnv = { Variables: AuthVariables };

export interface SubjectMiddlewareOptions {
  /** undefined when auth is disabled: every caller is anonymous */
  auth: AuthModule | undefined;
  cookieName: string;
  trustProxy: boolean;
  corsOrigins: readonly string[];
  /**
   * Routes where a stale credential must not lock the caller out (login, register, logout, strategies):
   * there an invalid token is ignored instead of being a 401.
   */
  ignoresInvalidCredentials(path: string): boolean;
}

const ANONYMOUS: Subject = Object.freeze({ role: undefined });

/** The Bearer token; "" for an Authorization header that carries none (refused like any invalid token). */
function bearer(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  return /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] ?? "";
}

export function subjectMiddleware(options: SubjectMiddlewareOptions): MiddlewareHandler<AuthEnv> {
  const { auth } = options;
  return async (c, next) => {
    c.set("subject", ANONYMOUS);
    c.set("authenticated", undefined);
    if (!auth) return next();
    const fromHeader = bearer(c.req.header("authorization"));
    const token = fromHeader ?? getCookie(c, options.cookieName);
    if (token === undefined) return next();
    let authenticated: Authenticated;
    try {
      if (token === "") throw new UnauthorizedError("expected an Authorization header of the form `Bearer <token>`");
      authenticated = await auth.authenticate(token);
    } catch (error) {
      if (error instanceof UnauthorizedError && options.ignoresInvalidCredentials(c.req.path)) return next();
      throw error;
    }
    if (fromHeader === undefined) checkCsrf(c, options.corsOrigins, options.trustProxy);
    c.set("subject", authenticated.subject);
    c.set("authenticated", authenticated);
    return next();
  };
}
