/**
 * The RLS example on file:rls.db (CITADEL_DB overrides, PORT overrides 7654):
 * `CITADEL_DEV=1 npx tsx examples/rls/server.ts`. Keys: `npx citadel key create --config examples/rls/config.ts
 * --name web --kind publishable` (the anon key) or `--kind secret` (the service key).
 */
import { serve } from "citadel/adapter/node";
import { app } from "./config.js";

serve(app);
