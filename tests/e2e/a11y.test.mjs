// Accessibility: an axe-core audit (the npm package, pinned in package.json) of
// the student page with its settings panel and of two lessons after their run (one
// with a side's other solutions in its tables and panels), at a
// desktop's and a phone's width; no serious or critical violation may remain.
// Then the keyboard: Tab alone reaches every control of the sandbox, and each
// shows a visible focus ring.

import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { ROOT, useServerAndBrowser, newWatchedPage, waitForSandbox, poll } from "./harness.mjs";

const AXE = path.join(ROOT, "node_modules", "axe-core", "axe.min.js");
const env = useServerAndBrowser();

/** axe's violations of impact serious or critical, one line each (shadow roots included). */
async function seriousViolations(page) {
  await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => {
    // @ts-ignore: injected above
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")) }));
  });
  return violations.filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.slice(0, 3).join("; ")}`);
}

for (const width of [1280, 375]) {
  test(`a11y: the page with its settings panel and a lesson after its run pass axe at ${width} px`, { timeout: 90_000 }, async () => {
    const { page, problems } = await newWatchedPage(env.browser.context);
    await page.setViewportSize({ width, height: 900 });
    await page.goto(env.server.url + "?controls", { waitUntil: "load" });
    await waitForSandbox(page);
    await page.evaluate(() => document.querySelector("flatminima-sandbox").step(200));
    assert.deepEqual(await seriousViolations(page), [], "the student page");

    await page.goto(env.server.url + "lessons/sgd-vs-sam.html", { waitUntil: "load" });
    await page.locator('input[name="prediction"]').first().check();
    await page.getByRole("button", { name: "Commit my prediction" }).click();
    await page.getByRole("button", { name: /Run the experiment/ }).click();
    await poll(() => page.evaluate(() => document.querySelector(".check-text")?.textContent.length > 0),
      { ms: 60_000, every: 250, what: "the lesson's check" });
    assert.deepEqual(await seriousViolations(page), [], "a lesson after its run");

    // A lesson whose sandbox shows a side's other solutions (SWA columns, an ensemble's panel and column).
    await page.goto(env.server.url + "lessons/averaging.html", { waitUntil: "load" });
    await page.locator('input[name="prediction"]').first().check();
    await page.getByRole("button", { name: "Commit my prediction" }).click();
    await page.getByRole("button", { name: /Run the experiment/ }).click();
    await poll(() => page.evaluate(() => document.querySelector(".check-text")?.textContent.length > 0),
      { ms: 90_000, every: 250, what: "the averaging lesson's check" });
    assert.deepEqual(await seriousViolations(page), [], "the averaging lesson after its run");
    assert.deepEqual(problems, [], "console errors or page errors");
    await page.close();
  });
}

test("a11y: Tab reaches every control of the sandbox, each with a visible focus ring", { timeout: 60_000 }, async () => {
  const { page, problems } = await newWatchedPage(env.browser.context);
  await page.goto(env.server.url + "?controls", { waitUntil: "load" });
  await waitForSandbox(page);
  // Every enabled, shown control inside the element's shadow root.
  const controls = await page.evaluate(() => {
    const root = document.querySelector("flatminima-sandbox").shadowRoot;
    return [...root.querySelectorAll("button, input, select, textarea, [tabindex]")]
      // Shown ones: checkVisibility() leaves out the closed Export menu's content (reached once opened).
      .filter((el) => !el.disabled && el.tabIndex >= 0 && el.checkVisibility())
      .map((el, i) => { el.dataset.a11yId = String(i); return String(i); });
  });
  assert.ok(controls.length >= 10, `controls found: ${controls.length}`);
  const reached = new Set();
  const unringed = [];
  for (let i = 0; i < controls.length * 2 + 20 && reached.size < controls.length; i++) {
    await page.keyboard.press("Tab");
    const focus = await page.evaluate(() => {
      const el = document.querySelector("flatminima-sandbox").shadowRoot.activeElement;
      if (!el || !el.dataset.a11yId) return null;
      const style = getComputedStyle(el);
      const ring = (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0) || style.boxShadow !== "none";
      return { id: el.dataset.a11yId, ring, name: el.getAttribute("name") || el.getAttribute("aria-label") || el.textContent.trim().slice(0, 30) };
    });
    if (!focus) continue;
    reached.add(focus.id);
    if (!focus.ring) unringed.push(focus.name);
  }
  assert.equal(reached.size, controls.length, `Tab reached ${reached.size} of ${controls.length} controls`);
  assert.deepEqual([...new Set(unringed)], [], "controls without a visible focus ring");
  assert.deepEqual(problems, [], "console errors or page errors");
  await page.close();
});
