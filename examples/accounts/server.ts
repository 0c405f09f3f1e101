/**
 * The accounts example on file:accounts.db (CITADEL_DB overrides, PORT overrides 7654):
 * `CITADEL_DEV=1 npx tsx examples/accounts/server.ts`. Signing up (`POST /api/auth/password/register` with
 * `{ email, password, account: { name } }`) makes an account and its admin; the admin adds editors and viewers
 * (`POST /api/data/users` with `role`, then `npx citadel user set-password --config examples/accounts/config.ts`).
 * The platform's superadmin: `npx citadel user create --config examples/accounts/config.ts --email root@example.com
 * --role superadmin`. The audit trail: `npx citadel audit verify --config examples/accounts/config.ts`.
 */
import { serve } from "citadel/adapter/node";
import { app } from "./config.js";

serve(app);
