/**
 * What a key may be created with (§5.5), checked before anything is written: the body of
 * `POST /api/system/keys` and of the CLI's `key create`, and the origin and address rules a key carries.
 */
import { fieldError } from "../errors.js";
import { type KeyKind, looksLikeKey } from "./key-material.js";
import { type AuthSettings, requireKnownRole } from "./settings.js";

export interface KeyInput {
  name: string;
  kind: KeyKind;
  role: string | null;
  /** the account the key belongs to (§6), checked to exist by the caller */
  tenant: number | null;
  expires_at: string | null;
  allowed_origins: string[] | null;
  allowed_ips: string[] | null;
}

const FIELDS = ["name", "kind", "role", "tenant", "expires_at", "allowed_origins", "allowed_ips"];
const MAX_NAME = 200;
const MAX_LIST = 100;
/** The longest grace a rotation may give the old key: 30 days. */
export const MAX_GRACE_SECONDS = 30 * 86_400;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The body, refusing fields other than `allowed`; a key pasted as a field name is not echoed back. */
function requireBody(body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (!isObject(body)) throw fieldError("body", "expected a JSON object");
  for (const field of Object.keys(body))
    if (!allowed.includes(field))
      throw looksLikeKey(field)
        ? fieldError("body", `unknown field (expected only ${allowed.join(", ")})`)
        : fieldError(field, "unknown field");
  return body;
}

const given = (value: unknown) => value !== undefined && value !== null;

function stringList(body: Record<string, unknown>, field: string, check: (s: string) => boolean, what: string) {
  const value = body[field];
  if (!given(value)) return null;
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_LIST)
    throw fieldError(field, `expected a list of 1 to ${MAX_LIST} ${what}s`);
  // the value is not echoed: a key pasted into the wrong field must not come back in an error
  value.forEach((item, i) => {
    if (typeof item !== "string" || !check(item)) throw fieldError(field, `item ${i} is not an ${what}`);
  });
  return [...new Set(value as string[])];
}

function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.origin === value;
  } catch {
    return false;
  }
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6 = /^[0-9a-f:]+$/;

/** IPv4 and IPv6 addresses, and IPv4 ranges in CIDR notation (`10.0.0.0/8`). */
function isAddressRule(value: string): boolean {
  const [address = "", bits, ...rest] = value.split("/");
  if (rest.length > 0) return false;
  if (IPV4.test(address)) return bits === undefined || (/^\d{1,2}$/.test(bits) && Number(bits) <= 32);
  return bits === undefined && address.includes(":") && IPV6.test(address.toLowerCase());
}

/** A client address as rules compare it: lowercase, an IPv4-mapped IPv6 address as plain IPv4. */
const normalAddress = (address: string) => address.toLowerCase().replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, "");

const ipv4Number = (address: string) => address.split(".").reduce((n, part) => n * 256 + Number(part), 0);

/** Whether the client address is one of the rules (exact addresses, IPv4 CIDR ranges). */
export function addressAllowed(client: string, rules: readonly string[]): boolean {
  const address = normalAddress(client);
  return rules.some((rule) => {
    const [base = "", bits] = rule.split("/");
    if (bits === undefined) return normalAddress(base) === address;
    if (!IPV4.test(address)) return false;
    const size = 2 ** (32 - Number(bits));
    return Math.floor(ipv4Number(address) / size) === Math.floor(ipv4Number(base) / size);
  });
}

function expiry(value: unknown, now: number): string | null {
  if (!given(value)) return null;
  const at = typeof value === "string" ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(at)) throw fieldError("expires_at", "expected a date and time, e.g. 2030-01-01T00:00:00Z");
  if (at <= now) throw fieldError("expires_at", "must be in the future");
  return new Date(at).toISOString();
}

/** The checked body of a key creation; throws a 400 naming the first field that is wrong. */
export function keyInput(
  body: unknown,
  settings: Pick<AuthSettings, "roles">,
  now: number,
  tenancy: boolean,
): KeyInput {
  const input = requireBody(body, FIELDS);
  const { name, kind, role } = input;
  if (typeof name !== "string" || name.trim() === "" || name.length > MAX_NAME)
    throw fieldError("name", `expected a string of 1 to ${MAX_NAME} characters`);
  if (kind !== "publishable" && kind !== "secret") throw fieldError("kind", 'must be "publishable" or "secret"');
  if (given(role) && typeof role !== "string") throw fieldError("role", "expected a role name");
  // refused rather than stored unused: a key that looks tenant-scoped but is not would be worse than none
  if (given(input.tenant) && !tenancy) throw fieldError("tenant", "tenant isolation is not enabled (config.tenancy)");
  const tenant = input.tenant;
  if (given(tenant) && !(typeof tenant === "number" && Number.isSafeInteger(tenant) && tenant > 0))
    throw fieldError("tenant", "expected an account id");
  const origins = stringList(input, "allowed_origins", isOrigin, "origin (e.g. https://app.example.com)");
  const ips = stringList(input, "allowed_ips", isAddressRule, "IP address or IPv4 CIDR range");
  if (origins && kind !== "publishable")
    throw fieldError("allowed_origins", "only publishable keys have allowed origins");
  if (ips && kind !== "secret") throw fieldError("allowed_ips", "only secret keys have allowed IPs");
  return {
    name: name.trim(),
    kind,
    role: given(role) ? requireKnownRole(settings, role as string) : null,
    tenant: given(tenant) ? (tenant as number) : null,
    expires_at: expiry(input.expires_at, now),
    allowed_origins: origins,
    allowed_ips: ips,
  };
}

/** `{ grace_seconds? }` of a rotation: 0 (the old key stops at once) unless given. */
export function graceSeconds(body: unknown): number {
  if (body === undefined || body === null) return 0;
  const input = requireBody(body, ["grace_seconds"]);
  const value = input.grace_seconds ?? 0;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 || value > MAX_GRACE_SECONDS)
    throw fieldError("grace_seconds", `expected a whole number of seconds from 0 to ${MAX_GRACE_SECONDS}`);
  return value;
}
