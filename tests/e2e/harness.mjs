// Shared set-up for the end-to-end tests (and scripts/bench-browser.mjs):
// serve www/ with scripts/serve.py on a free port, drive Debian's chromium
// through playwright-core, collect console errors and page errors.
//
// Never `npx playwright install` (downloads fail here); the browser is
// /usr/bin/chromium (override with CHROMIUM=/path).

import { spawn } from "node:child_process";
import { before, after } from "node:test";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

export const BASE_FLAGS = [
  "--no-sandbox",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  "--enable-unsafe-swiftshader",
];

/** Rejects after `ms` with a message naming `what`, so nothing spins for minutes. */
export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Starts `python3 scripts/serve.py --port 0 --quiet` and resolves to
 * `{ url, stop }` once its first stdout line ("Serving flatminima on URL") arrives.
 */
/**
 * Registers a test file's `before`/`after` hooks: one static server and one
 * browser shared by its tests. Returns `{ server, browser }`, filled in by `before`.
 */
export function useServerAndBrowser(launchOptions = {}) {
  const env = { server: null, browser: null };
  before(async () => {
    env.server = await startServer();
    env.browser = await launchBrowser(launchOptions);
  }, { timeout: 60_000 });
  after(async () => {
    await env.browser?.close();
    await env.server?.stop();
  }, { timeout: 20_000 });
  return env;
}

export async function startServer({ dir } = {}) {
  // The wasm module and the minified element the pages load (both written by `make build`).
  for (const file of [path.join("pkg", "flatminima_bg.wasm"), "flatminima-sandbox.min.js"]) {
    if (!existsSync(path.join(dir || path.join(ROOT, "www"), file))) {
      throw new Error(`${dir || "www"}/${file} is missing: run \`make build\` first`);
    }
  }
  const args = [path.join(ROOT, "scripts", "serve.py"), "--port", "0", "--host", "127.0.0.1", "--quiet"];
  if (dir) args.push("--dir", dir);
  const proc = spawn("python3", args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d) => { stderr += d; });
  const firstLine = new Promise((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout });
    rl.once("line", (line) => resolve(line));
    proc.once("exit", (code) => reject(new Error(`serve.py exited (${code}) before printing its URL: ${stderr}`)));
    proc.once("error", reject);
  });
  const line = await withTimeout(firstLine, 10_000, "serve.py to print its URL");
  const m = /Serving flatminima on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(line);
  if (!m) {
    proc.kill("SIGTERM");
    throw new Error(`unexpected first line from serve.py: ${JSON.stringify(line)}`);
  }
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    await withTimeout(exited, 5_000, "serve.py to exit").catch(() => proc.kill("SIGKILL"));
  };
  return { url: m[1], stop, proc };
}

/** Launches headless chromium with the base flags and a fresh user-data-dir. */
export async function launchBrowser({ extraFlags = [] } = {}) {
  const userDataDir = mkdtempSync(path.join(tmpdir(), "flatminima-e2e-"));
  const context = await withTimeout(
    chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...BASE_FLAGS, ...extraFlags],
      viewport: { width: 1280, height: 1000 },
      timeout: 30_000,
    }),
    40_000,
    "chromium to start",
  );
  context.setDefaultTimeout(10_000);
  context.setDefaultNavigationTimeout(15_000);
  const close = async () => {
    await withTimeout(context.close(), 10_000, "chromium to close").catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  };
  return { context, close };
}

/**
 * A new page whose console errors, page errors (uncaught exceptions),
 * failed requests and HTTP errors are collected into `problems`.
 */
export async function newWatchedPage(context) {
  const page = await context.newPage();
  const problems = [];
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const at = msg.location() && msg.location().url;
    problems.push(`console.error: ${msg.text()}${at ? ` (at ${at})` : ""}`);
  });
  page.on("pageerror", (err) => problems.push(`pageerror: ${err && (err.stack || err.message || err)}`));
  page.on("requestfailed", (req) => {
    problems.push(`request failed: ${req.url()} (${req.failure() && req.failure().errorText})`);
  });
  page.on("response", (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()}: ${res.url()}`);
  });
  page.on("crash", () => problems.push("page crashed"));
  return { page, problems };
}

/** A temp dir, removed by the returned function. */
export function tempDir(prefix = "flatminima-") {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// ---------------------------------------------------------------------------
// Helpers that run in the page, against the element's public contract.

/**
 * Waits until the first <flatminima-sandbox> is defined and metrics() returns
 * an object with both sides (i.e. the wasm module is loaded and a run exists).
 */
export async function waitForSandbox(page, { selector = "flatminima-sandbox", timeout = 15_000 } = {}) {
  await page.waitForFunction(
    (sel) => {
      const el = document.querySelector(sel);
      if (!el || !customElements.get("flatminima-sandbox") || typeof el.metrics !== "function") return false;
      try {
        const m = el.metrics();
        return !!(m && m.left && m.right);
      } catch {
        return false;
      }
    },
    selector,
    { timeout, polling: 50 },
  );
}

/**
 * Waits until the element's worker has applied everything asked of it so far
 * (`el.settled()`): then metrics(), landscape() and settingsQuery() reflect it.
 */
export function settle(page, selector = "flatminima-sandbox") {
  return page.evaluate((sel) => document.querySelector(sel).settled(), selector);
}

/** `el.metrics()` of the first sandbox, as the page returns it (structured clone). */
export function metrics(page, selector = "flatminima-sandbox") {
  return page.evaluate((sel) => document.querySelector(sel).metrics(), selector);
}

/**
 * Checks that metrics() is plain JSON (survives a JSON round trip unchanged)
 * and holds no NaN or infinite number anywhere. Returns a list of problems.
 */
export function metricsProblems(page, selector = "flatminima-sandbox") {
  return page.evaluate((sel) => {
    const m = document.querySelector(sel).metrics();
    const out = [];
    const walk = (v, at) => {
      if (typeof v === "number" && !Number.isFinite(v)) out.push(`${at} is ${v}`);
      else if (typeof v === "function" || typeof v === "bigint" || typeof v === "symbol" || v === undefined) {
        out.push(`${at} is not JSON (${typeof v})`);
      } else if (v && typeof v === "object") {
        const proto = Object.getPrototypeOf(v);
        if (!Array.isArray(v) && proto !== Object.prototype && proto !== null) out.push(`${at} is a ${proto.constructor?.name}, not a plain object`);
        for (const [k, x] of Object.entries(v)) walk(x, `${at}.${k}`);
      }
    };
    walk(m, "metrics()");
    for (const side of ["left", "right"]) {
      const s = m && m[side];
      if (!s) { out.push(`metrics().${side} is missing`); continue; }
      for (const k of ["label", "step", "train_loss", "train_acc", "id_loss", "id_acc", "ood_loss", "ood_acc", "diverged"]) {
        if (!(k in s)) out.push(`metrics().${side}.${k} is missing`);
      }
      if (typeof s.diverged !== "boolean") out.push(`metrics().${side}.diverged is not a boolean`);
      if (typeof s.label !== "string" || !s.label) out.push(`metrics().${side}.label is not a non-empty string`);
      for (const k of ["train_acc", "id_acc", "ood_acc"]) {
        if (typeof s[k] === "number" && (s[k] < 0 || s[k] > 1)) out.push(`metrics().${side}.${k} = ${s[k]} is outside [0, 1]`);
      }
    }
    return out;
  }, selector);
}

/**
 * The element's visible text, shadow DOM included (innerText of the host and
 * of every open shadow root, recursively), so messages can be matched.
 */
export function sandboxText(page, selector = "flatminima-sandbox") {
  return page.evaluate((sel) => {
    const parts = [];
    const visit = (root) => {
      for (const node of root.querySelectorAll("*")) {
        if (node.shadowRoot) {
          for (const child of node.shadowRoot.children) {
            if (child.tagName !== "STYLE" && child.tagName !== "SCRIPT") parts.push(child.innerText || "");
          }
          visit(node.shadowRoot);
        }
      }
    };
    const el = document.querySelector(sel);
    parts.push(el.innerText || "");
    if (el.shadowRoot) {
      for (const child of el.shadowRoot.children) {
        if (child.tagName !== "STYLE" && child.tagName !== "SCRIPT") parts.push(child.innerText || "");
      }
      visit(el.shadowRoot);
    }
    visit(el);
    return parts.join("\n");
  }, selector);
}

/**
 * Every <canvas> inside the element (light DOM and open shadow roots), in
 * document order, with its size and a pixel summary: `blank` (every pixel
 * equal), `distinct` (distinct colours in a sample), `hash` (of all pixels).
 */
export function canvasSnapshots(page, selector = "flatminima-sandbox") {
  return page.evaluate((sel) => {
    const found = [];
    const collect = (root) => {
      for (const node of root.querySelectorAll("*")) {
        if (node.tagName === "CANVAS") found.push(node);
        if (node.shadowRoot) collect(node.shadowRoot);
      }
    };
    const el = document.querySelector(sel);
    if (el.shadowRoot) collect(el.shadowRoot);
    collect(el);
    return found.map((c, index) => {
      const w = c.width, h = c.height;
      const rect = c.getBoundingClientRect();
      const info = {
        index, w, h, cssW: Math.round(rect.width), cssH: Math.round(rect.height),
        id: c.id, cls: String(c.className || ""), label: c.getAttribute("aria-label") || c.title || "",
        side: c.closest("[data-side]")?.getAttribute("data-side") || "",
        blank: true, distinct: 0, hash: 0,
      };
      if (!w || !h) return info;
      const off = document.createElement("canvas");
      off.width = w; off.height = h;
      const ctx = off.getContext("2d", { willReadFrequently: true });
      ctx.drawImage(c, 0, 0);
      const data = ctx.getImageData(0, 0, w, h).data;
      let hash = 2166136261 >>> 0;
      const first = data[0] | (data[1] << 8) | (data[2] << 16) | (data[3] << 24);
      let blank = true;
      const colours = new Set();
      for (let i = 0; i < data.length; i += 4) {
        const px = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
        if (px !== first) blank = false;
        hash = Math.imul(hash ^ px, 16777619) >>> 0;
        if ((i & 0x3c) === 0 && colours.size < 4096) colours.add(px);
      }
      Object.assign(info, { blank, distinct: colours.size, hash });
      return info;
    });
  }, selector);
}

/**
 * The decision-boundary panels: the two largest canvases (by pixel area) in
 * the element, ordered left to right on screen. Returns their indices into
 * canvasSnapshots(). With `data-side` markers, those win.
 */
export function panelIndices(snaps) {
  const bySide = ["left", "right"].map((s) => snaps.find((c) => c.side === s && c.w * c.h > 0));
  if (bySide.every(Boolean)) return bySide.map((c) => c.index);
  return [...snaps].filter((c) => c.w * c.h > 0).sort((a, b) => b.w * b.h - a.w * a.h).slice(0, 2).map((c) => c.index);
}

/** Polls `fn()` (async) until it returns a truthy value or `ms` pass; returns the last value. */
export async function poll(fn, { ms = 5_000, every = 100, what = "condition" } = {}) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}; last value ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

// ---------------------------------------------------------------------------
// Controls. The element's controls are found by the setting's name: a
// <select>/<input> with name="SETTING" or any element with data-setting="SETTING"
// (Playwright's CSS engine pierces open shadow roots).

/** The control of `setting` inside the first sandbox (a Locator). */
export function control(page, setting, selector = "flatminima-sandbox") {
  const s = JSON.stringify(setting);
  return page
    .locator(selector)
    .first()
    .locator(`select[name=${s}], input[name=${s}], textarea[name=${s}], [data-setting=${s}]`)
    .first();
}

/** The current value of `setting`'s control (checkboxes give "true"/"false"). */
export async function controlValue(page, setting) {
  return control(page, setting).evaluate((el) => {
    const input = el.matches("input, select, textarea") ? el : el.querySelector("input, select, textarea");
    if (!input) return null;
    if (input.type === "checkbox") return String(input.checked);
    return input.value;
  });
}

/**
 * Sets `setting`'s control as a user would: picks the option of a <select>,
 * types into a text/number field, drags a range slider (value + input + change).
 */
export async function setControl(page, setting, value) {
  const loc = control(page, setting);
  await loc.waitFor({ state: "attached", timeout: 5_000 });
  const kind = await loc.evaluate((el) => {
    const input = el.matches("input, select, textarea") ? el : el.querySelector("input, select, textarea");
    return input ? (input.tagName === "SELECT" ? "select" : input.type || "text") : "none";
  });
  if (kind === "select") {
    await loc.selectOption(String(value));
  } else if (kind === "checkbox") {
    await loc.setChecked(Boolean(value) && value !== "false");
  } else if (kind === "range" || kind === "none") {
    await loc.evaluate((el, v) => {
      const input = el.matches("input") ? el : el.querySelector("input");
      input.value = v;
      input.dispatchEvent(new Event("input", { bubbles: true, composed: true }));
      input.dispatchEvent(new Event("change", { bubbles: true, composed: true }));
    }, String(value));
  } else {
    await loc.fill(String(value));
    await loc.press("Enter");
    await loc.evaluate((el) => el.dispatchEvent(new Event("change", { bubbles: true, composed: true })));
  }
}

/** A button of the first sandbox by its accessible name (e.g. /^play/i). */
export function button(page, name, selector = "flatminima-sandbox") {
  return page.locator(selector).first().getByRole("button", { name }).first();
}

/** Lines of `after` that were not in `before` (trimmed, non-empty). */
export function newLines(before, after) {
  const seen = new Set(before.split("\n").map((l) => l.trim()));
  return after.split("\n").map((l) => l.trim()).filter((l) => l && !seen.has(l));
}
