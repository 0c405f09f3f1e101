/**
 * Who is asking (§4.1, §5.3): resolves the Subject of every `/api/*` request from an API key (`apikey:` header,
 * or a Bearer value starting with `pk_`/`sk_`) and a user token (Bearer header first, then the session cookie).
 * No credentials → anonymous (`role: undefined`); a credential that does not verify is 401, never anonymous.
 * With a key and a user token together the user's role applies. Cookie-authenticated writes pass the CSRF
 * check (§3.7).
 */
import type { Context, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import { decodeJwt } from "jose";
import { type Authenticated, type AuthModule, INVALID_KEY, type KeyPrincipal } from "../auth/index.js";
import { looksLikeKey } from "../auth/key-material.js";
import { UnauthorizedError } from "../errors.js";
import type { Subject } from "../guard/access.js";
import { checkSameTenant } from "../guard/tenancy.js";
import type { Runtime } from "../runtime.js";
import { clientAddress, requestOrigin } from "./client.js";
import { checkCsrf } from "./csrf.js";

/** A request's credentials, to verify again while a long response (the change feed, §8.3) is open. */
export interface Recheckable {
  /** the same for the same token and key (in memory only: it holds them) */
  id: string;
  /** throws UnauthorizedError when the token or key no longer holds, or the user's claims (role, tenant, email…) changed */
  recheck(): Promise<void>;
  /** when the token expires (ms since the epoch) */
  expiresAt?: number;
}

export interface AuthVariables {
  subject: Subject;
  /** the verified user credential, when there is one */
  authenticated: Authenticated | undefined;
  /** the verified token and key, when there are any */
  credentials: Recheckable | undefined;
  /**
   * set by the login route when it refused the email and password: its 401 is a failed login, not a denial
   * (§7.1); a 401 before it ran (a key refused under `api_keys.require`) is one
   */
  loginFailed?: true;
}

export type AuthEnv = { Variables: AuthVariables };

export interface SubjectMiddlewareOptions {
  /** undefined when auth is disabled: every caller is anonymous */
  auth: AuthModule | undefined;
  cookieName: string;
  trustProxy: boolean;
  corsOrigins: readonly string[];
  remoteAddress: Runtime["remoteAddress"];
  /**
   * Routes where a stale credential must not lock the caller out (login, register, logout, strategies):
   * there an invalid token or key is ignored instead of being a 401.
   */
  ignoresInvalidCredentials(path: string): boolean;
}

const ANONYMOUS: Subject = Object.freeze({ role: undefined });

/** The Bearer token; "" for an Authorization header that carries none (refused like any invalid token). */
function bearer(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  return /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] ?? "";
}

/**
 * Whether a page sent the request (§5.4): an Origin header, or a Sec-Fetch-Mode other than `navigate`. The
 * latter counts only beside Sec-Fetch-Site, because Node's own fetch (undici) sends `Sec-Fetch-Mode: cors`
 * on every request, from servers the secret keys are meant for; browsers send Sec-Fetch-Site with every
 * request and a page can neither remove nor forge either header.
 */
function fromBrowser(c: Context): boolean {
  const mode = c.req.header("sec-fetch-mode");
  const site = c.req.header("sec-fetch-site");
  return c.req.header("origin") !== undefined || (mode !== undefined && mode !== "navigate" && site !== undefined);
}

export function subjectMiddleware(options: SubjectMiddlewareOptions): MiddlewareHandler<AuthEnv> {
  const { auth } = options;
  const keys = auth?.apiKeys;

  /** Verify a credential; on the routes that ignore stale credentials a 401 becomes "none". */
  async function lenient<T>(c: Context, verify: () => Promise<T>): Promise<T | undefined> {
    try {
      return await verify();
    } catch (error) {
      if (error instanceof UnauthorizedError && options.ignoresInvalidCredentials(c.req.path)) return undefined;
      throw error;
    }
  }

  return async (c, next) => {
    // every request gets an id (answered as X-Request-Id) and its client's address, for the audit trail (§7.1)
    const request = { id: crypto.randomUUID(), ip: clientAddress(c, options.trustProxy, options.remoteAddress) };
    c.header("x-request-id", request.id);
    c.set("subject", { ...ANONYMOUS, request });
    c.set("authenticated", undefined);
    c.set("credentials", undefined);
    if (!auth) return next();
    const header = bearer(c.req.header("authorization"));
    // while keys are off, a `pk_…` Bearer is just a token that does not verify, and `apikey:` means nothing
    const keyInBearer = keys !== undefined && header !== undefined && looksLikeKey(header);
    const keyHeader = keys ? c.req.header("apikey") : undefined;
    const tokenHeader = keyInBearer ? undefined : header;
    const token = tokenHeader ?? getCookie(c, options.cookieName);

    let principal: KeyPrincipal | undefined;
    let keyRequest: Parameters<NonNullable<typeof keys>["verify"]>[0] | undefined;
    if (keys && (keyHeader !== undefined || keyInBearer)) {
      keyRequest = {
        key: keyHeader ?? header!,
        origin: requestOrigin(c),
        fromBrowser: fromBrowser(c),
        client: request.ip,
      };
      const given = keyRequest;
      principal = await lenient(c, async () => {
        if (keyHeader !== undefined && keyInBearer) throw new UnauthorizedError(INVALID_KEY);
        return keys.verify(given);
      });
    }
    if (keys && auth.settings.apiKeys.require && !principal) throw new UnauthorizedError(INVALID_KEY);

    let authenticated: Authenticated | undefined;
    if (token !== undefined)
      authenticated = await lenient(c, () => {
        if (token === "") throw new UnauthorizedError("expected an Authorization header of the form `Bearer <token>`");
        return auth.authenticate(token);
      });
    if (authenticated && tokenHeader === undefined) checkCsrf(c, options.corsOrigins, options.trustProxy);

    if (authenticated) {
      const { subject } = authenticated;
      const both = principal ? { ...subject, key: keys!.subject(principal).key, request } : { ...subject, request };
      // set first: a refusal is recorded with who asked (§7.1)
      c.set("subject", both);
      checkSameTenant(both);
      c.set("authenticated", authenticated);
    } else if (principal) c.set("subject", { ...keys!.subject(principal), request });
    if (authenticated || principal)
      c.set(
        "credentials",
        recheckable(auth, principal && keyRequest, authenticated && { token: token!, authenticated }),
      );
    return next();
  };
}

/** Verify the same credentials again: the key as it came, the token and the user behind it, same role and tenant. */
function recheckable(
  auth: AuthModule,
  key: Parameters<NonNullable<AuthModule["apiKeys"]>["verify"]>[0] | undefined,
  user: { token: string; authenticated: Authenticated } | undefined,
): Recheckable {
  let expiresAt: number | undefined;
  if (user) {
    const exp = decodeJwt(user.token).exp;
    if (typeof exp === "number") expiresAt = exp * 1000;
  }
  return {
    id: `${key?.key ?? ""} ${user?.token ?? ""}`,
    expiresAt,
    async recheck() {
      if (key) await auth.apiKeys!.verify(key);
      if (!user) return;
      const was = user.authenticated.subject;
      const now = (await auth.authenticate(user.token)).subject;
      // a policy may bind any of them (`@user.email`): the stream's filter was bound with the old ones
      if (now.role !== was.role || now.tenant !== was.tenant || JSON.stringify(now.user) !== JSON.stringify(was.user))
        throw new UnauthorizedError("this token has been revoked");
    },
  };
}
