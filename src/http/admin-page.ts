/**
 * The admin page at `/_admin` (§12.6), when `config.admin.enabled`: a static page and its script, served from
 * here (no CDN, no build step), that signs in with the auth cookie and drives the guarded routes — the access
 * report's matrix with each filter's SQL, explain for a role or a user, the audit trail and its verification,
 * API keys, metrics and a read-only data browser. The page holds no secret and no token: every answer comes
 * from an `/api/system` or `/api/data` route, which decides for the signed-in user (`system.admin` for the
 * report). The script builds the page with `textContent` only, and a strict CSP forbids anything else.
 */
import { Hono } from "hono";

const HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Citadel admin</title>
<link rel="stylesheet" href="/_admin/app.css">
<script src="/_admin/app.js" defer></script>
</head>
<body>
<header><h1>Citadel admin</h1><span id="who"></span></header>
<main id="main"><p>Loading…</p></main>
</body>
</html>
`;

const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222}
header{display:flex;gap:1em;align-items:center;padding:.5em 1em;background:#223;color:#fff}
header h1{font-size:1.1em;margin:0}
main{padding:1em}
nav button{margin-right:.3em}
nav button.on{font-weight:bold}
table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}
td.allow{background:#dfd}td.filter{background:#ffd}td.deny{background:#fdd}
pre{background:#f6f6f6;padding:.5em;overflow:auto;max-height:30em}
.warn{color:#a40}.error{color:#b00}
form{margin:.5em 0}form label{margin-right:.5em}
`;

/** The client: plain DOM, textContent only; talks to the API with the auth cookie (same origin). */
const JS = String.raw`"use strict";
const main = document.getElementById("main");
const who = document.getElementById("who");
const ACTIONS = ["read", "create", "update", "delete"];
const PERMISSIONS = ["data.entity.read", "data.entity.create", "data.entity.update", "data.entity.delete"];

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

async function api(method, path, body) {
  const init = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const type = res.headers.get("content-type") || "";
  const data = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) {
    const message = data && data.error ? data.error.message : String(res.status);
    throw Object.assign(new Error(message), { status: res.status });
  }
  return data;
}

function show(...nodes) {
  main.replaceChildren(...nodes);
}

function failure(error) {
  return el("p", { class: "error", text: error.message });
}

function table(headers, rows) {
  return el(
    "table",
    {},
    el("tr", {}, ...headers.map((h) => el("th", { text: h }))),
    ...rows.map((cells) => el("tr", {}, ...cells.map((c) => (c instanceof Node ? c : el("td", { text: String(c) }))))),
  );
}

function signIn(message) {
  who.textContent = "";
  const email = el("input", { type: "email", name: "email", required: "" });
  const password = el("input", { type: "password", name: "password", required: "" });
  const status = el("p", { class: "error", text: message || "" });
  const form = el(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          await api("POST", "/api/auth/password/login", { email: email.value, password: password.value });
          start();
        } catch (error) {
          status.textContent = error.message;
        }
      },
    },
    el("label", { text: "Email " }, email),
    el("label", { text: "Password " }, password),
    el("button", { type: "submit", text: "Sign in" }),
  );
  show(el("h2", { text: "Sign in" }), form, status);
}

async function signOut() {
  await api("POST", "/api/auth/logout").catch(() => {});
  signIn();
}

let report;

async function start() {
  let me;
  try {
    me = (await api("GET", "/api/auth/me")).user;
  } catch {
    return signIn();
  }
  who.replaceChildren(
    el("span", { text: me.email + (me.role ? " (" + me.role + ")" : "") + " " }),
    el("button", { text: "Sign out", onclick: signOut }),
  );
  try {
    report = (await api("GET", "/api/system/report")).data;
  } catch (error) {
    return show(el("p", { class: "error", text: "Only admins (system.admin) may use this page: " + error.message }));
  }
  const tabs = { Access: access, Explain: explain, Audit: audit, Keys: keys, Metrics: metrics, Data: data };
  if (!report.principals.api_keys) delete tabs.Keys;
  const nav = el("nav");
  const body = el("section");
  const open = async (name) => {
    for (const b of nav.children) b.className = b.textContent === name ? "on" : "";
    body.replaceChildren(el("p", { text: "Loading…" }));
    try {
      body.replaceChildren(await tabs[name]());
    } catch (error) {
      body.replaceChildren(failure(error));
    }
  };
  for (const name of Object.keys(tabs)) nav.append(el("button", { text: name, onclick: () => open(name) }));
  show(nav, body);
  open("Access");
}

function access() {
  const rows = [];
  const filters = [];
  for (const entity of report.entities)
    for (const role of report.roles) {
      const cells = ACTIONS.map((a) => {
        const cell = report.decisions[role][entity][a];
        if (cell.where) filters.push([role, a, entity, cell.where + "  -- " + JSON.stringify(cell.parameters)]);
        return el("td", { class: cell.decision, text: cell.decision + (cell.per_request ? " ~" : "") });
      });
      rows.push([entity, role, ...cells]);
    }
  return el(
    "div",
    {},
    el("h2", { text: "Warnings" }),
    report.warnings.length === 0
      ? el("p", { text: "None." })
      : el("ul", {}, ...report.warnings.map((w) => el("li", { class: "warn", text: w.kind + ": " + (w.path ? w.path + ": " : "") + w.message }))),
    el("h2", { text: "Decisions" }),
    el("p", { text: "~: decided per request (claims or the row id), shown at its widest. Callers without a token act as " + (report.default_role || "no role") + "." }),
    table(["entity", "role", ...ACTIONS], rows),
    el("h2", { text: "Filters (SQL)" }),
    table(["role", "action", "entity", "where"], filters),
    el("h2", { text: "System permissions" }),
    table(["role", "permissions"], report.roles.map((r) => [r, report.system[r].join(", ") || "-"])),
  );
}

function select(name, values, blank) {
  return el("select", { name }, ...(blank ? [el("option", { value: "", text: blank })] : []), ...values.map((v) => el("option", { value: v, text: v })));
}

function explain() {
  const role = select("role", report.roles, "(the default role)");
  const user = el("input", { name: "user", type: "number", min: "1", placeholder: "or a user id" });
  const permission = select("permission", PERMISSIONS);
  const entity = select("entity", report.entities);
  const out = el("pre");
  const form = el(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        const q = new URLSearchParams({ permission: permission.value, entity: entity.value });
        if (user.value) q.set("user", user.value);
        else if (role.value) q.set("role", role.value);
        try {
          out.textContent = JSON.stringify((await api("GET", "/api/system/explain?" + q)).data, null, 2);
        } catch (error) {
          out.textContent = error.message;
        }
      },
    },
    role,
    user,
    permission,
    entity,
    el("button", { type: "submit", text: "Explain" }),
  );
  return el("div", {}, el("h2", { text: "Explain" }), form, out);
}

async function audit() {
  const result = el("p");
  const verify = el("button", {
    text: "Verify the chain",
    onclick: async () => {
      try {
        const v = (await api("GET", "/api/system/audit/verify")).data;
        result.textContent = v.ok ? "Intact: " + v.entries + " entries." : "BROKEN at entry " + v.broken.id + ": " + v.broken.problem;
        result.className = v.ok ? "" : "error";
      } catch (error) {
        result.textContent = error.message;
      }
    },
  });
  const entries = (await api("GET", "/api/system/audit?limit=50&sort=-id")).data;
  return el(
    "div",
    {},
    el("h2", { text: "Audit trail" }),
    verify,
    result,
    table(["id", "at", "action", "entity", "row", "actor", "reason"], entries.map((e) => [e.id, e.at, e.action, e.entity ?? "", e.row_id ?? "", JSON.stringify(e.actor ?? null), e.reason ?? ""])),
  );
}

async function keys() {
  const list = (await api("GET", "/api/system/keys")).data;
  const shown = el("pre");
  const name = el("input", { name: "name", required: "", placeholder: "name" });
  const kind = select("kind", ["publishable", "secret"]);
  const role = select("role", report.roles, "(the kind's role)");
  const form = el(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          const made = (await api("POST", "/api/system/keys", { name: name.value, kind: kind.value, ...(role.value ? { role: role.value } : {}) })).data;
          shown.textContent = "Copy it now, it is not shown again:\n" + made.key;
        } catch (error) {
          shown.textContent = error.message;
        }
      },
    },
    name,
    kind,
    role,
    el("button", { type: "submit", text: "Create key" }),
  );
  const rows = list.map((k) => [
    k.id,
    k.prefix,
    k.kind,
    k.role ?? "-",
    k.name,
    k.revoked_at ? "revoked" : "active",
    k.last_used_at ?? "-",
    el("td", {}, k.revoked_at ? null : el("button", { text: "Revoke", onclick: async () => { await api("DELETE", "/api/system/keys/" + k.id); shown.textContent = "Revoked key " + k.id + "."; } })),
  ]);
  return el("div", {}, el("h2", { text: "API keys" }), form, shown, table(["id", "prefix", "kind", "role", "name", "state", "last used", ""], rows));
}

async function metrics() {
  return el("div", {}, el("h2", { text: "Metrics" }), el("pre", { text: await api("GET", "/api/system/metrics") }));
}

function data() {
  const entity = select("entity", report.entities);
  const out = el("div");
  let offset = 0;
  const load = async () => {
    try {
      const page = await api("GET", "/api/data/" + encodeURIComponent(entity.value) + "?limit=50&offset=" + offset);
      const fields = [...new Set(page.data.flatMap((r) => Object.keys(r)))];
      out.replaceChildren(
        el("p", { text: "Rows " + (offset + 1) + "–" + (offset + page.data.length) + " of " + (page.meta.count ?? "?") }),
        table(fields, page.data.map((r) => fields.map((f) => (r[f] === undefined ? "" : typeof r[f] === "object" ? JSON.stringify(r[f]) : r[f])))),
      );
    } catch (error) {
      out.replaceChildren(failure(error));
    }
  };
  entity.addEventListener("change", () => { offset = 0; load(); });
  const prev = el("button", { text: "Previous", onclick: () => { offset = Math.max(0, offset - 50); load(); } });
  const next = el("button", { text: "Next", onclick: () => { offset += 50; load(); } });
  load();
  return el("div", {}, el("h2", { text: "Data (read-only)" }), entity, prev, next, out);
}

start();
`;

/** The routes under `/_admin`. */
export function adminPage(): Hono {
  const page = new Hono();
  page.get("/", (c) => c.body(HTML, 200, { ...HEADERS, "content-type": "text/html; charset=utf-8" }));
  page.get("/app.js", (c) => c.body(JS, 200, { ...HEADERS, "content-type": "text/javascript; charset=utf-8" }));
  page.get("/app.css", (c) => c.body(CSS, 200, { ...HEADERS, "content-type": "text/css; charset=utf-8" }));
  return page;
}

/** The client's script, for tests that check what it asks of the API. */
export const ADMIN_SCRIPT = JS;
