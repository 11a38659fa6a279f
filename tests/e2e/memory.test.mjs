// Memory: 100 resets (and 50 restarts from new settings) leak nothing. Two
// measures:
// - live bytes (element.wasmLiveBytes(): what Rust has allocated and not
//   freed), read right after a reset, when the state is the same every time:
//   a leak of more than a few hundred bytes per cycle shows up;
// - the heap size (element.wasmMemoryBytes(), or the WebAssembly.Memory the
//   page instantiated, captured by wrapping WebAssembly.instantiate*). A wasm
//   memory never shrinks, and the landscape and sharpness views free and
//   allocate megabyte buffers (the dense Hessian) while the cycles run, so
//   fragmentation may add a step to the high-water mark; it must stay bounded.

import { test } from "node:test";
import assert from "node:assert/strict";
import { useServerAndBrowser, newWatchedPage, waitForSandbox, metricsProblems } from "./harness.mjs";

// --expose-gc: collect JS garbage (and wasm-bindgen's finalizers) before reading the heap.
const env = useServerAndBrowser({ extraFlags: ["--js-flags=--expose-gc", "--enable-precise-memory-info"] });

/** Runs before the page's scripts: remembers every wasm memory the page creates. */
function captureWasmMemory() {
  const memories = (window.__e2eWasmMemories = []);
  const remember = (result) => {
    const instance = result && (result.instance || result);
    const exports = instance && instance.exports;
    if (exports) for (const v of Object.values(exports)) if (v instanceof WebAssembly.Memory) memories.push(v);
    return result;
  };
  for (const name of ["instantiate", "instantiateStreaming"]) {
    const original = WebAssembly[name];
    if (original) WebAssembly[name] = function (...args) { return original.apply(this, args).then(remember); };
  }
}

/** Heap size in bytes and where it came from, and live bytes right after a reset. */
function heap(page) {
  return page.evaluate(async () => {
    if (window.gc) { window.gc(); await new Promise((r) => setTimeout(r, 0)); window.gc(); }
    const el = document.querySelector("flatminima-sandbox");
    await el.reset();
    const live = typeof el.wasmLiveBytes === "function" ? el.wasmLiveBytes() : null;
    const js = performance.memory ? performance.memory.usedJSHeapSize : null;
    for (const name of ["wasmMemoryBytes", "wasmHeapBytes", "memoryBytes"]) {
      if (typeof el[name] === "function") return { bytes: el[name](), source: `element.${name}()`, js, live };
    }
    const mems = window.__e2eWasmMemories || [];
    if (mems.length) return { bytes: mems.reduce((s, m) => s + m.buffer.byteLength, 0), source: `WebAssembly.Memory (${mems.length})`, js, live };
    return { bytes: null, source: "none", js, live };
  });
}

/** `n` cycles of: 20 steps every third cycle, `action`, an animation frame every 10 cycles. */
function cycles(page, n, action) {
  return page.evaluate(async ([count, act]) => {
    const el = document.querySelector("flatminima-sandbox");
    for (let i = 0; i < count; i++) {
      if (i % 3 === 0) el.step(20);
      if (act === "reset") el.reset();
      else el.setAttribute("seed", String(2 + (i % 50)));
      if (i % 10 === 9) await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
    }
  }, [n, action]);
}

test("(i) 100 resets and 50 restarts do not grow the wasm heap", { timeout: 60_000 }, async () => {
  const { page, problems } = await newWatchedPage(env.browser.context);
  await page.addInitScript(captureWasmMemory);
  await page.goto(env.server.url + "index.html", { waitUntil: "load" });
  await waitForSandbox(page);
  await page.evaluate(() => document.querySelector("flatminima-sandbox").pause());

  // Warm up: the heap reaches its high-water mark (measured: 2 more pages within
  // the first ~45 cycles, then flat for 550 resets and 300 restarts).
  await cycles(page, 60, "reset");
  const h0 = await heap(page);
  assert.ok(h0.bytes > 0, "cannot read the wasm heap: expose element.wasmMemoryBytes() (the wasm memory's buffer.byteLength)");

  await cycles(page, 100, "reset");
  const h1 = await heap(page);
  await cycles(page, 50, "seed");
  const h2 = await heap(page);
  const mb = (x) => (x == null ? "n/a" : (x / 1048576).toFixed(2) + " MiB");
  const kb = (x) => (x == null ? "n/a" : (x / 1024).toFixed(1) + " KiB");
  console.log(`# wasm heap (${h0.source}): ${mb(h0.bytes)} after warm-up, ${mb(h1.bytes)} after 100 resets, ${mb(h2.bytes)} after 50 restarts; ` +
    `live after a reset ${kb(h0.live)} -> ${kb(h1.live)} -> ${kb(h2.live)}; JS heap used ${mb(h0.js)} -> ${mb(h1.js)} -> ${mb(h2.js)}`);
  assert.ok(h0.live > 0, "cannot read live bytes: expose element.wasmLiveBytes()");
  // The same state after each reset, except caches whose size follows the numbers (metrics text).
  const SLACK = 16 * 1024;
  assert.ok(Math.abs(h1.live - h0.live) <= SLACK, `100 resets leaked: ${kb(h0.live)} -> ${kb(h1.live)} live`);
  // Restarts use other seeds (other data): the same shapes, so the same sizes.
  assert.ok(Math.abs(h2.live - h1.live) <= SLACK, `50 restarts leaked: ${kb(h1.live)} -> ${kb(h2.live)} live`);
  const HEAP_SLACK = 2 * 1048576;
  assert.ok(h1.bytes - h0.bytes <= HEAP_SLACK && h2.bytes - h0.bytes <= HEAP_SLACK,
    `the wasm heap kept growing: ${mb(h0.bytes)} -> ${mb(h1.bytes)} -> ${mb(h2.bytes)}`);
  assert.deepEqual(await metricsProblems(page), []);
  await page.close();
  assert.deepEqual(problems, [], "console errors or page errors");
});
