/**
 * Monitoring (§7.5): the counters (monitor.ts), what counts as an incident (incidents.ts), and the Prometheus
 * exporter (prometheus.ts), loaded on first use and only where prom-client runs.
 */
import { type Monitor, runsNodeModules } from "./monitor.js";

export { type DenialLabels, type DenialReason, Monitor, type MonitorSources } from "./monitor.js";

/** The metrics page: its Content-Type and text. */
export interface Exporter {
  contentType: string;
  metrics(): Promise<string>;
}

/**
 * The path is a variable so that bundlers (esbuild, wrangler) do not follow it: prom-client needs Node's
 * modules at load, and an edge worker must neither carry nor load them (as src/runtime.ts does for drivers).
 */
const PROMETHEUS = "./prometheus.js";

/** The app's Prometheus exporter, or undefined on a runtime without Node's modules (an edge worker). */
export async function loadExporter(monitor: Monitor): Promise<Exporter | undefined> {
  if (!runsNodeModules()) return undefined;
  const { prometheusExporter } = (await import(/* @vite-ignore */ PROMETHEUS)) as typeof import("./prometheus.js");
  return prometheusExporter(monitor);
}
