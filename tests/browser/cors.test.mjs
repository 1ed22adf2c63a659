// CORS from a real second origin in headless Chromium: a newsroom's page, served
// here from another origin (http://localhost:<another port>), imports /sapha.js
// from the hub, reads the state API (a plain GET, a conditional GET with
// If-None-Match, which is preflighted, and an error answer), follows a bill with
// snapshotThenSubscribe (state API, then WebSocket), and opens an EventSource on
// /v1/sse. Every piece of data must arrive in the page. Started by
// scripts/browser-test.sh once the dashboard checks have filled the hub:
//
//   HUB_URL   http://127.0.0.1:<port> of the running hub (default origins: *)
//   BILL_ID   a bill the hub's state holds (default b-2564-ca-0001)
//   CHROMIUM  the browser (default /usr/bin/chromium)
//   ARTIFACTS where the screenshot goes (cors.png)
//
// Every wait has a deadline.
import { createServer } from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const HUB_URL = process.env.HUB_URL;
if (!HUB_URL) {
  console.error('cors test: HUB_URL is not set (run scripts/browser-test.sh)');
  process.exit(2);
}
const BILL_ID = process.env.BILL_ID ?? 'b-2564-ca-0001';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = process.env.ARTIFACTS ?? 'tests/artifacts';
const DEADLINE_MS = 30_000;

const fail = (msg) => {
  console.error(`cors test: FAIL: ${msg}`);
  process.exit(1);
};
setTimeout(() => fail(`the run passed its ${DEADLINE_MS / 1000} s deadline`), DEADLINE_MS + 10_000).unref();

const hubWs = HUB_URL.replace(/^http/, 'ws');
const page = `<!doctype html>
<meta charset="utf-8">
<title>A newsroom's page on another origin</title>
<pre id="out">running</pre>
<script type="module">
  const out = { origin: location.origin };
  const show = () => { document.getElementById('out').textContent = JSON.stringify(out, null, 2); };
  try {
    const { snapshotThenSubscribe } = await import(${JSON.stringify(`${HUB_URL}/sapha.js`)});
    out.imported = true;
    const r = await fetch(${JSON.stringify(`${HUB_URL}/v1/bills?limit=5`)});
    out.bills = { status: r.status, etag: r.headers.get('etag'), items: (await r.json()).items.length };
    // A conditional GET: If-None-Match is not a simple header, so it is preflighted.
    const again = await fetch(${JSON.stringify(`${HUB_URL}/v1/bills?limit=5`)}, { headers: { 'If-None-Match': out.bills.etag } });
    out.revalidated = again.status;
    const bad = await fetch(${JSON.stringify(`${HUB_URL}/v1/bills?limit=0`)});
    out.error = { status: bad.status, code: (await bad.json()).code };
    out.followed = await new Promise((resolve, reject) => {
      snapshotThenSubscribe({
        url: ${JSON.stringify(`${hubWs}/v1/ws`)},
        billId: ${JSON.stringify(BILL_ID)},
        onState(state) { if (state === 'live') resolve({ state }); },
      }).then(({ bill, seq }) => { out.snapshot = { billId: bill.bill_id, seq }; show(); }, reject);
    });
    out.sse = await new Promise((resolve, reject) => {
      const es = new EventSource(${JSON.stringify(`${HUB_URL}/v1/sse?topics=bill.>`)});
      es.addEventListener('welcome', (e) => { es.close(); resolve({ welcome: JSON.parse(e.data).type }); });
      es.onerror = () => { es.close(); reject(new Error('EventSource failed')); };
    });
    out.done = true;
  } catch (e) {
    out.failed = String(e);
  }
  show();
  window.__result = out;
</script>
`;

const server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(page);
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
// Another port and another host name: another origin than the hub's.
const pageUrl = `http://localhost:${server.address().port}/`;
if (new URL(pageUrl).origin === new URL(HUB_URL).origin) fail('the page must be on another origin');

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
let status = 0;
try {
  const context = await browser.newContext();
  const tab = await context.newPage();
  const consoleErrors = [];
  tab.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  await tab.goto(pageUrl);
  await tab.waitForFunction(() => window.__result, null, { timeout: DEADLINE_MS });
  const got = await tab.evaluate(() => window.__result);
  mkdirSync(ARTIFACTS, { recursive: true });
  await tab.screenshot({ path: join(ARTIFACTS, 'cors.png') });
  console.log('cors test: the page saw', JSON.stringify(got));
  const checks = [
    ['the page is on another origin', got.origin !== new URL(HUB_URL).origin],
    ['nothing failed', !got.failed],
    ['/sapha.js imported from the hub', got.imported === true],
    ['GET /v1/bills answered with its data', got.bills?.status === 200 && got.bills.items > 0],
    ['the ETag is readable', typeof got.bills?.etag === 'string' && got.bills.etag.length > 2],
    ['the preflighted conditional GET answered 304', got.revalidated === 304],
    ['the JSON error is readable', got.error?.status === 400 && got.error.code === 'bad_parameter'],
    ['snapshotThenSubscribe read the bill', got.snapshot?.billId === BILL_ID],
    ['and went live on the WebSocket', got.followed?.state === 'live'],
    ['the EventSource got its welcome', got.sse?.welcome === 'welcome'],
  ];
  for (const [what, ok] of checks) {
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
    if (!ok) status = 1;
  }
  if (status !== 0) console.error('console errors:', consoleErrors);
} finally {
  await browser.close();
  server.close();
}
process.exit(status);
