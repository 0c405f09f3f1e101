/**
 * The user object the auth routes answer (login, register, password change, `/me`): the caller's own users
 * row as its own read of users would show it (§4.8, §9.4), so a field the guard hides there is not handed
 * back here. Its identity (`id`, `email`, `role`, which its token carries anyway) is always shown.
 */
import type { Db } from "../db/connection.js";
import type { Access } from "../guard/access.js";
import type { Guard } from "../guard/guard.js";
import type { Row } from "./codec.js";
import { hideUnshown, shownFlags } from "./field-rules.js";

const IDENTITY = new Set(["id", "email", "role"]);

export async function ownUser(db: Db, access: Access, guard: Guard | undefined, user: Row): Promise<Row> {
  if (!guard || access.subject.trusted || typeof user.id !== "number") return user;
  const scope = access.find("data.entity.read", "users", user.id);
  const shown: Row = {};
  if (!scope) {
    // no read of users at all: every field a rule restricts for this role stays out
    const ruled = new Set(guard.ruledFields(access.role, "users"));
    for (const [k, v] of Object.entries(user)) if (IDENTITY.has(k) || !ruled.has(k)) shown[k] = v;
    return shown;
  }
  for (const [k, v] of Object.entries(user)) if (IDENTITY.has(k) || !scope.fields || scope.fields.has(k)) shown[k] = v;
  const flags = shownFlags(
    scope.rowFields,
    Object.keys(shown).filter((k) => !IDENTITY.has(k)),
    "users",
  );
  if (flags.length === 0) return shown;
  const row = await db.selectFrom("users").select(flags).where("id", "=", user.id).executeTakeFirst();
  if (row) return hideUnshown(Object.assign(shown, row), scope.rowFields);
  // a row the query cannot find shows none of its rule-bound fields
  for (const field of scope.rowFields?.keys() ?? []) delete shown[field];
  return shown;
}
