/**
 * The rules example on file:rules.db (CITADEL_DB overrides, PORT overrides 7654):
 * `CITADEL_DEV=1 npx tsx examples/rules/server.ts`. An admin: `npm run -s citadel -- user create --config
 * examples/rules/config.ts --email admin@example.com --role admin`; everyone else registers (role `user`).
 */
import { serve } from "citadel/adapter/node";
import { app } from "./config.js";

serve(app);
