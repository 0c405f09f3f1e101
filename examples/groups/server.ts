/**
 * The groups example on file:groups.db (CITADEL_DB overrides, PORT overrides 7654). Its encrypted fields need a key
 * (§10.1; the server refuses to start without one), and the CLI needs the same key:
 * `CITADEL_DEV=1 CITADEL_ENCRYPTION_KEYS="k1:$(openssl rand -base64 32)" npx tsx examples/groups/server.ts`
 * runs it once; to keep the data across restarts, export one key and keep it (values sealed under a key the server
 * no longer has answer 409). An admin: `npm run -s citadel -- user create --config examples/groups/config.ts
 * --email admin@example.com --role admin`; keys: `npm run -s citadel -- key create --config
 * examples/groups/config.ts --name web --kind publishable` (or `--kind secret`), or `POST /api/system/keys` as
 * the admin.
 */
import { serve } from "citadel/adapter/node";
import { app } from "./config.js";

serve(app);
