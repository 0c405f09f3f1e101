/** The static access report (§12.2) of an app, as `citadel check` builds it: on a private in-memory database. */
import { type AccessReport, type CreateAppInput, createApp } from "citadel";

export async function reportOf(input: CreateAppInput): Promise<AccessReport> {
  const app = await createApp({ ...input, connection: { url: ":memory:" }, options: { log: () => {} } });
  try {
    return app.accessReport();
  } finally {
    await app.close();
  }
}
