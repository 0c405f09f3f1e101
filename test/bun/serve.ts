/**
 * Run by Bun for the Bun tests: `bun test/bun/serve.ts <app> <connection url> [driver]`. Serves the app
 * (apps.ts) on 127.0.0.1 and a free port through citadel/adapter/bun, then prints one line,
 * `ready {"url":…,"users":…,"rows":…}`. A startup error is the adapter's own one line on stderr.
 */
import type { ConnectionConfig } from "citadel";
import { serve } from "../../adapters/bun/index.js";
import { type Seeded, testApp } from "./apps.js";

const [name = "", url, driver] = process.argv.slice(2);
const seeded: Seeded = { users: {}, rows: {} };
const connection: ConnectionConfig = { url, driver: (driver || undefined) as ConnectionConfig["driver"] };
const handle = serve({ ...testApp(name, seeded), connection, port: 0, hostname: "127.0.0.1" });
await handle.ready;
console.log(`ready ${JSON.stringify({ url: handle.url, ...seeded })}`);
