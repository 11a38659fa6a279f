// Classroom mode: a teacher's page locks some settings (`locked`) and hides
// others (`hidden-settings`), as TensorFlow Playground's classroom links do. A
// locked control is disabled and says so, a hidden one is gone (and a group with
// nothing left disappears), the author's values stay in force, and an unknown
// name is reported by name.

import { test } from "node:test";
import assert from "node:assert/strict";
import { useServerAndBrowser, newWatchedPage, waitForSandbox, metrics, sandboxText, poll } from "./harness.mjs";

const env = useServerAndBrowser();
const PAGE = "classroom/lesson.html";
const HTML = `<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>A class</title></head>
<body><flatminima-sandbox controls lr="0.05" rho="0.5" locked="lr, rho" hidden-settings="momentum,schedule,weight-decay,label-smoothing,warp"></flatminima-sandbox>
<script type="module" src="/flatminima-sandbox.min.js"></script></body></html>`;

test("classroom: locked settings keep the author's values, hidden ones have no control, unknown names are named", { timeout: 30_000 }, async () => {
  const { page, problems } = await newWatchedPage(env.browser.context);
  await page.route(env.server.url + PAGE, (route) => route.fulfill({ status: 200, contentType: "text/html; charset=utf-8", body: HTML }));
  await page.goto(env.server.url + PAGE, { waitUntil: "load" });
  await waitForSandbox(page);
  await poll(() => page.evaluate(() => !!document.querySelector("flatminima-sandbox").shadowRoot.querySelector('[data-for="lr"] input')),
    { what: "the controls panel" });
  const state = await page.evaluate(() => {
    const root = document.querySelector("flatminima-sandbox").shadowRoot;
    const row = (name) => root.querySelector(`[data-for="${name}"]`);
    const inputs = (name) => [...row(name).querySelectorAll("input, select")];
    return {
      lrDisabled: inputs("lr").every((i) => i.disabled),
      rhoDisabled: inputs("rho").every((i) => i.disabled),
      lrLabel: getComputedStyle(row("lr").querySelector(".fm-field-label"), "::after").content,
      seedEnabled: inputs("seed").every((i) => !i.disabled),
      hidden: ["momentum", "schedule", "weight-decay"].map((n) => row(n).hidden || row(n).getClientRects().length === 0),
      shown: row("dataset").getClientRects().length > 0,
    };
  });
  assert.deepEqual(state.hidden, [true, true, true], "hidden settings have no visible control");
  assert.ok(state.lrDisabled && state.rhoDisabled, "locked controls are disabled");
  assert.match(state.lrLabel, /locked/, "and say so");
  assert.ok(state.seedEnabled && state.shown, "the other controls work as before");
  const m = await metrics(page);
  assert.equal(m.left.lr, 0.05, "the author's learning rate is in force");
  assert.match(await sandboxText(page), /hidden-settings: no setting named "warp"/);
  assert.deepEqual(problems, [], "console errors or page errors");
  await page.close();
});
