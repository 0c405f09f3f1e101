/**
 * `citadel openapi` (12.1, 12.5): the OpenAPI 3.1 document as `GET /api/system/openapi.json` serves it — asked of
 * that route itself, in-process, so the document and whose API it describes are decided in one place. Static: on
 * a private in-memory database, the config's own is never opened.
 */
import { randomBytes } from "node:crypto";
import type { CitadelApp } from "../app.js";
import type { Command } from "./commands.js";
import { print, withApp } from "./open.js";

const ROUTE = "/api/system/openapi.json";
/** The scratch user `--role` signs in as (a reserved domain: it never reaches anyone). */
const EMAIL = "openapi@citadel.invalid";

/** A token of a new user of `role` on the scratch database; an unknown role is an error naming the configured ones. */
async function tokenOf(app: CitadelApp, role: string): Promise<string> {
  const roles = Object.keys(app.config.auth.roles);
  if (!roles.includes(role))
    throw new Error(
      roles.length > 0
        ? `unknown role "${role}" (configured roles: ${roles.join(", ")})`
        : `unknown role "${role}": the config has no roles (config.auth.roles)`,
    );
  const auth = app.module.auth;
  const { min_length, max_length } = auth.settings.password;
  const password = randomBytes(max_length)
    .toString("base64url")
    .slice(0, Math.min(max_length, Math.max(min_length, 32)));
  const user = await auth.createUser({ email: EMAIL, password, role });
  return (await auth.sessionOf(Number(user.id))).token;
}

/** What the route answers a caller without a token, or a signed-in user of `role`. */
export async function openApiOf(app: CitadelApp, role: string | undefined): Promise<unknown> {
  const headers: Record<string, string> =
    role === undefined ? {} : { authorization: `Bearer ${await tokenOf(app, role)}` };
  const response = await app.fetch(new Request(`http://localhost${ROUTE}`, { headers }));
  const text = await response.text();
  if (!response.ok) {
    let message = text;
    try {
      message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text;
    } catch {}
    throw new Error(`${ROUTE} answered ${response.status}: ${message}`);
  }
  return JSON.parse(text);
}

export const OPENAPI_COMMANDS: Command[] = [
  {
    name: "openapi",
    summary: "Print the OpenAPI 3.1 document GET /api/system/openapi.json serves, as JSON",
    details:
      "Without --role: the API as a caller without a token sees it (the default role); with --role: as a signed-in\n" +
      "user of that role sees it. The document is the route's own answer, asked in-process of the app on a private\n" +
      "in-memory database (the config's own is never opened). An unknown role is exit 1 naming the configured ones.",
    options: ["config", "role"],
    required: ["config"],
    run: (values, io) =>
      withApp(values, io, async (app) => print(io, JSON.stringify(await openApiOf(app, values.role), null, 2)), {
        scratch: true,
      }),
  },
];
