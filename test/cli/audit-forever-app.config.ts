/** The tenancy tests' app with the audit trail on and no retention_days: `audit prune` removes nothing. */
import type { CreateAppInput } from "citadel";
import { tenancyConfig } from "../tenancy/fixture.js";

const app: CreateAppInput = { config: tenancyConfig({ audit: { enabled: true } }) };
export default app;
