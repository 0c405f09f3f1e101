/** The auth tests' app as a CLI config module (`--config test/cli/auth-app.config.ts`); pass `--db` with it. */
import type { CreateAppInput } from "citadel";
import { authConfig } from "../auth/helpers.js";

const app: CreateAppInput = { config: authConfig() };
export default app;
