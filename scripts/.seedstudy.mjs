// scratch (not committed): time element.study({replicas:128, steps:1000}) for a given www
import { startServer, launchBrowser, withTimeout } from "../tests/e2e/harness.mjs";
const dir = process.argv[2];
const server = await startServer({ dir });
const b = await launchBrowser();
for (let i = 0; i < 2; i++) {
  const page = await b.context.newPage();
  await page.goto(`${server.url}index.html?backend=cpu&landscape=off`, { waitUntil: "load" });
  await page.waitForFunction(() => { const el = document.querySelector("flatminima-sandbox"); return el && el.metrics && el.metrics(); }, null, { timeout: 30_000 });
  const r = await withTimeout(page.evaluate(() => document.querySelector("flatminima-sandbox").study({ replicas: 128, steps: 1000 })), 300_000, "study");
  console.log(dir, "study()", (r.ms / 1000).toFixed(2), "s, right higher", r.paired.right_higher, "of", r.paired.pairs);
  await page.close();
}
await b.close(); server.close ? server.close() : server.stop?.();
process.exit(0);
