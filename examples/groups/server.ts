/**
 * The groups example on file:groups.db (CITADEL_DB overrides, PORT overrides 7654):
 * `npm run example:groups` (or `CITADEL_DEV=1 npx tsx examples/groups/server.ts`). An admin:
 * `npm run -s citadel -- user create --config examples/groups/config.ts --email admin@example.com --role admin`;
 * keys: `npm run -s citadel -- key create --config examples/groups/config.ts --name web --kind publishable`
 * (or `--kind secret`), or `POST /api/system/keys` as the admin.
 */
import { serve } from "citadel/adapter/node";
import { app } from "./config.js";

serve(app);
