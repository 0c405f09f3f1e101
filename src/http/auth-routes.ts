/** `/api/auth` routes (§3). Thin: read the body, call the auth module, shape the response and the cookie. */
import { type Context, Hono } from "hono";
import { deleteCookie, setCookie } from "hono/cookie";
import { type AuditActor, actorOf } from "../audit/index.js";
import type { AuthModule, Session } from "../auth/index.js";
import type { Row } from "../data/codec.js";
import { BadRequestError, UnauthorizedError } from "../errors.js";
import type { Subject } from "../guard/access.js";
import type { Runtime } from "../runtime.js";
import type { HttpAudit } from "./audit.js";
import type { AuthEnv } from "./auth-middleware.js";
import { readJson } from "./body.js";
import { clientAddress, isHttps } from "./client.js";
import { comesFromAllowedOrigin, refuseCrossSite } from "./csrf.js";

export interface AuthRoutesOptions {
  auth: AuthModule;
  maxBodyBytes: number;
  remoteAddress: Runtime["remoteAddress"];
  /** the audit trail's HTTP side (§7.1), when it is on */
  audit: HttpAudit | undefined;
  /** the users' tenant column (§6), when tenancy is on */
  tenantField: string | undefined;
  /** the user object as its owner's read of users shows it (§9.4); `subject` is who it is shown to */
  shownUser(user: Row, subject: Subject): Promise<Row>;
}

/** Paths (under `/api/auth`) where a stale or revoked credential is ignored rather than refused. */
const LOOKS_LIKE_EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export const CREDENTIAL_FREE_PATHS = ["/password/login", "/password/register", "/logout", "/strategies"];

/** The actor of an auth event: the user the session is for (and its account), from the request's address. */
function sessionActor(c: Context<AuthEnv>, user: Row, tenantField: string | undefined): AuditActor {
  const number = (v: unknown) => (typeof v === "number" ? v : null);
  return {
    ...actorOf(c.get("subject")),
    user_id: number(user.id),
    role: typeof user.role === "string" ? user.role : null,
    account_id: tenantField === undefined ? null : number(user[tenantField]),
  };
}

/** Who a new session's user object is shown to: that user, as its token will present it. */
function sessionSubject(c: Context<AuthEnv>, user: Row, tenantField: string | undefined): Subject {
  const role = typeof user.role === "string" ? user.role : undefined;
  const tenant = tenantField === undefined ? undefined : user[tenantField];
  return {
    role,
    user: { id: user.id as number, email: user.email, role: user.role },
    ...(typeof tenant === "number" ? { tenant } : {}),
    ...(c.get("subject")?.key ? { key: c.get("subject")!.key } : {}),
  };
}

export function authRoutes(options: AuthRoutesOptions): Hono<AuthEnv> {
  const { auth, maxBodyBytes, remoteAddress, audit, tenantField, shownUser } = options;
  const routes = new Hono<AuthEnv>();
  const { cookie, trustProxy, corsOrigins } = auth.settings;
  const cookieOptions = (c: Context) =>
    ({
      path: "/",
      httpOnly: true,
      sameSite: cookie.same_site,
      secure: cookie.secure ?? isHttps(c, trustProxy),
    }) as const;

  const startSession = async (c: Context<AuthEnv>, session: Session, status: 200 | 201 = 200) => {
    setCookie(c, cookie.name, session.token, { ...cookieOptions(c), maxAge: auth.settings.expiresSeconds });
    const user = await shownUser(session.user, sessionSubject(c, session.user, tenantField));
    return c.json({ ...session, user }, status);
  };

  /** The local user behind the request's credential; 401 without one. */
  const localUser = (c: Context<AuthEnv>): number => {
    const authenticated = c.get("authenticated");
    if (!authenticated) throw new UnauthorizedError();
    if (authenticated.userId === undefined)
      throw new BadRequestError("this account is managed by an external identity provider");
    return authenticated.userId;
  };

  /**
   * The body of a route that sets the session cookie without a credential (login, register). Login CSRF (§3.7):
   * a page elsewhere must not log the visitor into the attacker's account, so a foreign origin is 403, and a
   * body that is not application/json is 415 (what an HTML form or a no-cors fetch can send cross-site without a
   * preflight). Both come before any work: no rate-limit count, no hashing, no user created.
   */
  const sessionStartBody = (c: Context) => {
    refuseCrossSite(c, corsOrigins, trustProxy);
    return readJson(c, maxBodyBytes, { requireJsonType: true });
  };

  /** Record a login of the session's user (§7.1). */
  const noteLogin = (c: Context<AuthEnv>, session: Session) =>
    audit?.note(c, {
      action: "auth.login",
      entity: "users",
      row_id: Number(session.user.id),
      actor: sessionActor(c, session.user, tenantField),
    });

  // Register, password change and logout write the user's row: given the request's subject, the auth module
  // records their auth event with that write, in its transaction (§7.2), and the write's actor has the request.
  routes.post("/password/register", async (c) => {
    const body = await sessionStartBody(c);
    const session = await auth.register(body, clientAddress(c, trustProxy, remoteAddress), c.get("subject"));
    return startSession(c, session, 201);
  });

  routes.post("/password/login", async (c) => {
    const body = await sessionStartBody(c);
    let session: Session;
    try {
      session = await auth.login(body, clientAddress(c, trustProxy, remoteAddress), c.get("subject"));
    } catch (error) {
      if (error instanceof UnauthorizedError) c.set("loginFailed", true);
      if (error instanceof UnauthorizedError && audit) {
        // the email tried, as the trail shows emails (redacted under `audit.redact: ["users.email"]`); text that
        // is not an email is not kept: it is as likely a password typed into the wrong field
        const email = (body as Row | undefined)?.email;
        const tried =
          typeof email === "string" && LOOKS_LIKE_EMAIL.test(email.trim())
            ? JSON.stringify(audit.shown("users", "email", email.trim().slice(0, 254)))
            : "not an email address";
        await audit.note(c, { action: "auth.login_failed", entity: "users", reason: `${error.message}: ${tried}` });
      }
      throw error;
    }
    await noteLogin(c, session);
    return startSession(c, session);
  });

  routes.post("/password/change", async (c) => {
    const userId = localUser(c);
    const session = await auth.changePassword(userId, await readJson(c, maxBodyBytes), c.get("subject"));
    return startSession(c, session);
  });

  routes.get("/me", async (c) => {
    const authenticated = c.get("authenticated");
    if (!authenticated) throw new UnauthorizedError();
    if (authenticated.userId === undefined) return c.json({ user: authenticated.subject.user });
    const user = await auth.publicUser(authenticated.userId);
    if (!user) throw new UnauthorizedError("the user of this token no longer exists");
    return c.json({ user: await shownUser(user, authenticated.subject) });
  });

  /**
   * Whether a logout revokes the user's tokens or only clears the cookie (§3.7). A POST does: with the cookie
   * alone it has passed the CSRF check. A GET can be triggered cross-site (a link, an image), so with the
   * cookie alone it revokes only when the browser says it comes from our own (or an allowed) origin.
   */
  const mayRevoke = (c: Context) =>
    c.req.method === "POST" ||
    (c.req.method === "GET" &&
      (c.req.header("authorization") !== undefined || comesFromAllowedOrigin(c, corsOrigins, trustProxy)));

  // GET as well: bknd's client logs out with a GET.
  const logout = async (c: Context<AuthEnv>) => {
    // Hono answers a HEAD with the GET handler: a HEAD is a GET that changes nothing, not even the cookie (§3.7)
    if (c.req.method === "HEAD") return c.json({ ok: true });
    const userId = c.get("authenticated")?.userId;
    if (userId !== undefined && mayRevoke(c)) {
      await auth.logout(userId, c.get("subject"));
    }
    deleteCookie(c, cookie.name, cookieOptions(c));
    return c.json({ ok: true });
  };
  routes.post("/logout", logout);
  routes.get("/logout", logout);

  routes.get("/strategies", (c) => c.json(auth.strategies()));
  return routes;
}
