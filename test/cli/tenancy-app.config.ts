/** The tenancy tests' app (§6) as a CLI config module (`--config test/cli/tenancy-app.config.ts`); pass `--db` with it. */
import type { CreateAppInput } from "citadel";
import { tenancyConfig } from "../tenancy/fixture.js";

const app: CreateAppInput = { config: tenancyConfig() };
export default app;
