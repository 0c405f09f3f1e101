/** The tenancy tests' app with the audit trail on, kept 30 days (`--config test/cli/audit-app.config.ts`); pass `--db`. */
import type { CreateAppInput } from "citadel";
import { tenancyConfig } from "../tenancy/fixture.js";

export const auditConfig = () => tenancyConfig({ audit: { enabled: true, retention_days: 30 } });

const app: CreateAppInput = { config: auditConfig() };
export default app;
