/** The API key tests' app as a CLI config module (`--config test/cli/keys-app.config.ts`); pass `--db` with it. */
import type { CreateAppInput } from "citadel";
import { keysConfig } from "../auth/api-keys-fixture.js";

const app: CreateAppInput = { config: keysConfig() };
export default app;
