// Drives the live dashboard in real headless Chromium against a real hub fed by
// the scenario player. Started by scripts/browser-test.sh, which owns NATS and
// the hub and passes everything in the environment:
//
//   HUB_URL       http://127.0.0.1:<port> of the running hub
//   HUB_CMD       JSON argv that starts the hub (to restart it mid-test)
//   HUB_PID_FILE  file holding the hub's pid; rewritten after a restart
//   PLAY_LIVE     JSON argv: the player for the joint and Senate sittings (paced)
//   PLAY_OFFLINE  JSON argv: the player for some bills (while the hub is down)
//   ARTIFACTS     where screenshots go (tests/artifacts): dashboard.png,
//                 dashboard-th.png, dashboard-phone.png (390 x 844),
//                 dashboard-browser.png (the bill browser) and
//                 dashboard-midsitting.png (a page opened mid-sitting), and
//                 dashboard-push.png (a followed bill with notifications on;
//                 only when the hub answers GET /v1/push/key)
//   CHROMIUM      the browser (default /usr/bin/chromium)
//   SAPHA_TEST_PUSH_SUBSCRIPTION  (optional) a PushSubscription's JSON, from a
//                 local RFC 8030 push service, that the page is handed instead of
//                 subscribing with the browser vendor's push service (see the Web
//                 Push section). When set, the Web Push checks must run and pass.
//
// Every wait has a deadline; the whole run has one too (RUN_DEADLINE_MS).
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { createECDH, randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) {
    console.error(`browser test: ${k} is not set (run scripts/browser-test.sh)`);
    process.exit(2);
  }
  return v;
};
const HUB_URL = env('HUB_URL');
const HUB_CMD = JSON.parse(env('HUB_CMD'));
const HUB_PID_FILE = env('HUB_PID_FILE');
const PLAY_LIVE = JSON.parse(env('PLAY_LIVE'));
const PLAY_OFFLINE = JSON.parse(env('PLAY_OFFLINE'));
const ARTIFACTS = env('ARTIFACTS');
const LOG_DIR = env('LOG_DIR', ARTIFACTS);
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const OFFLINE_EVENTS = Number(env('OFFLINE_EVENTS'));
const LIVE_EVENTS = Number(env('LIVE_EVENTS'));
const RUN_DEADLINE_MS = Number(env('RUN_DEADLINE_MS', '150000'));
/** A second hub on the same stream, on another port (another origin), for `?hub=`. */
const HUB2_URL = env('HUB2_URL');
/** `sapha demo` with its defaults: what the README tells a visitor to open. */
const DEMO_URL = env('DEMO_URL');

const FOLLOWED = 'b-2565-0087';
const AMENDMENT = 'b-2564-ca-0001';
const JOINT_VOTE = 'joint-2564-1-10/vote-1';
const SENATE_SECRET_VOTE = 'senate-2566-2-28/vote-3';
const PHONE = { width: 390, height: 844 };
/** The Bangkok calendar date of an instant, as YYYY-MM-DD (what the page's data-day holds). */
const bangkokDay = (ms) => new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Bangkok', year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(ms));

mkdirSync(ARTIFACTS, { recursive: true });
const started = Date.now();
const deadline = setTimeout(() => {
  console.error(`browser test: FAIL: the run passed its ${RUN_DEADLINE_MS / 1000} s deadline`);
  process.exit(1);
}, RUN_DEADLINE_MS);
deadline.unref();

const log = (...a) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s]`, ...a);

/** Runs argv to completion; rejects on a non-zero exit or after `ms`. The promise's `child` is the process. */
function run(argv, name, ms) {
  let child;
  const done = new Promise((resolve, reject) => {
    const out = openSync(join(LOG_DIR, `${name}.log`), 'w');
    child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', out, out] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not finish within ${ms / 1000} s`));
    }, ms);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${name} exited with ${code}; see ${join(LOG_DIR, `${name}.log`)}`));
    });
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
  done.child = child;
  return done;
}

async function until(pred, what, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function hubReady() {
  try {
    const r = await fetch(`${HUB_URL}/readyz`);
    return r.ok;
  } catch {
    return false;
  }
}

const results = [];
async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    log(`ok    ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    results.push({ name, ok: false, error: e.message });
    log(`FAIL  ${name}: ${e.message}`);
  }
}
const assert = (cond, msg) => {
  if (!cond) throw new Error(msg);
};

// ---- the browser -------------------------------------------------------------------

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-quic'],
  timeout: 30000,
});
const context = await browser.newContext({ viewport: { width: 1400, height: 1050 }, deviceScaleFactor: 1, locale: 'en-GB', timezoneId: 'Europe/London' });
const page = await context.newPage();
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(e.message));
// While the test stops the hub on purpose, a reconnect attempt that finds it gone is expected.
let hubDownOnPurpose = false;
page.on('console', (m) => {
  if (hubDownOnPurpose && m.type() === 'error' && /ERR_CONNECTION_REFUSED/.test(m.text())) return;
  // A followed bill the hub does not know yet is a 404 of the state API: expected (the card says so).
  if (m.type() === 'error' && /status of 404/.test(m.text()) && /\/v1\/bills\/[a-z0-9_-]+$/.test(m.location().url || '')) return;
  if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`);
});

// An in-page recorder: every 25 ms it notes what the dashboard shows, so the
// checks below read a history of the page instead of racing the player.
await page.addInitScript(() => {
  const rec = { votes: [], stages: {}, quorum: [], inOffice: [], thresholds: [], quorumTimes: [], voteTimes: [], speakers: [], agenda: [], today: [], sittingDates: [], billsTitles: [], states: [], inCamera: false, foreignVotes: [], headings: [], noVote: [] };
  window.__rec = rec;
  const last = {};
  const note = (key, list, value) => {
    if (value !== undefined && value !== null && last[key] !== value) {
      last[key] = value;
      list.push(value);
    }
  };
  setInterval(() => {
    const card = document.querySelector('[data-testid="vote-card"]');
    if (card) {
      const total = (o) => card.querySelector(`[data-total-option="${o}"]`)?.textContent ?? '-';
      const group = (g) => card.querySelector(`[data-group-total="${g}"]`)?.textContent ?? '-';
      const cell = (c) => card.querySelector(`[data-cell="${c}"]`)?.dataset.value ?? '-';
      const width = card.querySelector('.tally [data-total-option="aye"]')?.parentElement.querySelector('.seg')?.style.width ?? '-';
      note('vote', rec.votes, JSON.stringify({
        vote: card.dataset.vote, status: card.dataset.status,
        totals: ['aye', 'no', 'abstain'].map(total).join('/'),
        groups: ['house', 'senate'].map(group).join('/'),
        cells: ['house:aye', 'house:no', 'house:abstain', 'senate:aye', 'senate:no', 'senate:abstain'].map(cell).join('/'),
        ayeWidth: width,
      }));
    }
    for (const el of document.querySelectorAll('[data-bill]')) {
      const where = el.closest('#follow-list') ? 'follow' : 'today';
      const key = `${where}:${el.dataset.bill}`;
      rec.stages[key] ??= [];
      note(`stage:${key}`, rec.stages[key], el.dataset.stage ? `${el.dataset.stage}@${el.dataset.progress}` : null);
    }
    const q = document.querySelector('[data-testid="quorum"]');
    note('quorum', rec.quorum, q?.dataset.present ? `${q.dataset.present}/${q.dataset.required}` : null);
    note('inOffice', rec.inOffice, document.querySelector('[data-testid="in-office"]')?.textContent ?? null);
    note('thresholds', rec.thresholds, document.querySelector('[data-testid="threshold"]')?.textContent ?? null);
    note('speaker', rec.speakers, document.querySelector('[data-testid="speaker"]')?.textContent);
    note('agenda', rec.agenda, document.querySelector('[data-testid="agenda-item"]')?.textContent);
    note('today', rec.today, document.getElementById('today-date')?.dataset.day);
    const sd = document.querySelector('[data-testid="sitting-date"]');
    note('sittingDate', rec.sittingDates, sd ? `${sd.dataset.day}|${sd.dataset.kind}|${sd.textContent}` : null);
    const bt = document.getElementById('bills-title');
    note('billsTitle', rec.billsTitles, bt?.dataset.day ? `${bt.dataset.day}|${bt.textContent}` : null);
    const qt = document.querySelector('[data-testid="quorum-time"]');
    note('quorumTime', rec.quorumTimes, qt && q ? `${q.dataset.present}/${q.dataset.required}@${qt.dataset.time}|${qt.textContent}` : null);
    const vt = card && card.querySelector('[data-testid="vote-time"]');
    note('voteTime', rec.voteTimes, vt ? `${card.dataset.vote}|${card.dataset.status}|${vt.textContent}` : null);
    note('state', rec.states, document.getElementById('conn')?.dataset.state);
    // The vote card belongs to the sitting the sitting panel shows; the panel's
    // heading says whether that sitting is in progress, over or to come.
    const cur = document.getElementById('sitting-body')?.dataset.sitting;
    const vk = card?.dataset.vote;
    if (cur && vk && !vk.startsWith(`${cur}/`)) note('foreign', rec.foreignVotes, `${cur} shows ${vk}`);
    const hd = document.getElementById('sitting-h');
    const ph = document.querySelector('[data-testid="sitting-phase"]')?.dataset.phase;
    note('heading', rec.headings, `${cur}|${ph}|${hd?.dataset.tense}|${hd?.textContent}`);
    if (cur && document.querySelector('[data-testid="no-vote"]')) note('novote', rec.noVote, cur);
    if (document.querySelector('[data-testid="in-camera"]')) rec.inCamera = true;
  }, 25);
});

const rec = () => page.evaluate(() => window.__rec);
const seen = () => page.evaluate(() => window.sapha.state.seenEvents.size);

await page.goto(`${HUB_URL}/?lang=en`, { waitUntil: 'load', timeout: 20000 });

await check('the page loads sapha.js and goes live', async () => {
  await page.waitForSelector('#conn[data-state="live"]', { timeout: 15000 });
  const ct = await (await fetch(`${HUB_URL}/sapha.js`)).headers.get('content-type');
  assert(ct && ct.startsWith('text/javascript'), `/sapha.js is served as ${ct}`);
});

await check('the follow box rejects a bad id and subscribes to bill.<id>', async () => {
  for (const bad of ['>', 'bill.*', 'b-2566-0123.>', 'B 2565', 'ร่าง-1']) {
    await page.fill('#follow-input', bad);
    await page.click('#follow form button, #follow-form button');
    await page.waitForSelector('#follow-error:not([hidden])', { timeout: 3000 });
    const msg = await page.textContent('#follow-error');
    assert(/not a bill id/.test(msg), `no validation message for '${bad}': ${msg}`);
  }
  // The input stops at 64 characters; the function behind it checks the length too.
  assert(!(await page.evaluate(() => window.sapha.follow('a'.repeat(65)))), 'a 65-character id was accepted');
  const topics = await page.evaluate(() => [...window.sapha.client.topics, ...window.sapha.state.followSub.topics]);
  assert(topics.every((t) => !t.includes('>') || t === '>'), `a bad id widened the subscription: ${topics}`);
  await page.fill('#follow-input', FOLLOWED);
  await page.press('#follow-input', 'Enter');
  await page.waitForSelector(`#follow-list [data-bill="${FOLLOWED}"]`, { timeout: 3000 });
  assert(await page.isHidden('#follow-error'), 'the error stays after a good id');
  // Followed bills have a connection of their own (subscribed with `since`).
  await until(() => page.evaluate((id) => window.sapha.followClient?.topics.includes(`bill.${id}`), FOLLOWED), `the subscription to bill.${FOLLOWED}`, 5000);
  // Not yet in the stream: the hub answers 404 and the card says it waits.
  await page.waitForSelector(`#follow-list [data-bill="${FOLLOWED}"] .empty`, { timeout: 3000 });
});

// ---- a phone, alongside ------------------------------------------------------------------

// A second page at phone width, in Thai (the default, and the language whose long
// unspaced runs overflowed), watches the same replay. Every 100 ms it notes how
// far anything sticks out past 390 px: the document, and every element of the
// sitting and vote cards (what the page shows changes with every event, so one
// look at the end would miss most of it). A mobile browser widens its layout
// viewport to fit content that overflows, so innerWidth is watched as well.
const phoneContext = await browser.newContext({ viewport: PHONE, deviceScaleFactor: 1, isMobile: true, hasTouch: true, locale: 'en-GB', timezoneId: 'Europe/London' });
await phoneContext.addInitScript((width) => {
  const worst = { doc: 0, card: 0, what: '', samples: 0, sittings: new Set(), innerWidth: 0 };
  window.__phone = worst;
  setInterval(() => {
    const vw = width;
    worst.innerWidth = Math.max(worst.innerWidth, window.innerWidth);
    const doc = document.documentElement.scrollWidth - vw;
    if (doc > worst.doc) worst.doc = doc;
    for (const el of document.querySelectorAll('#sitting *, #vote *')) {
      const over = el.getBoundingClientRect().right - vw;
      if (over > worst.card) {
        worst.card = over;
        worst.what = `${el.tagName.toLowerCase()}.${el.className} "${(el.textContent || '').slice(0, 60)}"`;
      }
    }
    const sd = document.querySelector('[data-testid="sitting-date"]');
    if (sd) worst.sittings.add(sd.dataset.day);
    worst.samples += 1;
  }, 100);
}, PHONE.width);
const phone = await phoneContext.newPage();
phone.on('pageerror', (e) => pageErrors.push(`phone: ${e.message}`));
await phone.goto(`${HUB_URL}/?lang=th`, { waitUntil: 'load', timeout: 20000 });
await phone.waitForSelector('#conn[data-state="live"]', { timeout: 15000 });

// ---- play the sittings live ------------------------------------------------------------

log('playing the joint sitting of 10 Sep 2021 and Senate sitting no. 28 of 28 Feb 2023');
const player = run(PLAY_LIVE, 'player-live', 90000);
let playerError = null;
player.catch((e) => { playerError = e; });

// The screenshot for the README: the joint vote, counted and decided.
const shot = page.waitForFunction((key) => {
  const c = document.querySelector('[data-testid="vote-card"]');
  return c && c.dataset.vote === key && c.dataset.status === 'decided';
}, JOINT_VOTE, { timeout: 60000 }).then(async () => {
  // The sitting closes a fraction of a second after the result: show the bars
  // at their final length at once rather than wait for their transition.
  // (Through the CSSOM: the page's Content-Security-Policy refuses inline <style>.)
  await page.evaluate(() => {
    for (const el of document.querySelectorAll('.seg, .fill')) el.style.transition = 'none';
  });
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
  log(`screenshot: ${join(ARTIFACTS, 'dashboard.png')}`);
}).catch((e) => log(`no screenshot of the joint vote: ${e.message}`));
// The same moment on the phone.
const phoneShot = phone.waitForFunction((key) => {
  const c = document.querySelector('[data-testid="vote-card"]');
  return c && c.dataset.vote === key && c.dataset.status === 'decided';
}, JOINT_VOTE, { timeout: 60000 }).then(async () => {
  await phone.screenshot({ path: join(ARTIFACTS, 'dashboard-phone.png'), fullPage: true });
  log(`screenshot: ${join(ARTIFACTS, 'dashboard-phone.png')}`);
  return true;
}).catch((e) => { log(`no phone screenshot of the joint vote: ${e.message}`); return false; });

// ---- a page opened mid-sitting ---------------------------------------------------------

// While the joint vote is being counted the player is paused (SIGSTOP), so no new
// event comes; a second page opened then, with no backlog, must show the agenda
// item, the quorum and the vote at once, from GET /v1/sittings/live.
const AMENDMENT_Q = 'มาตรา 83';
let mid = null;
await check('a page opened mid-sitting shows the agenda item, quorum and vote at once (no backlog, no new event)', async () => {
  await page.waitForFunction((key) => {
    const c = document.querySelector('[data-testid="vote-card"]');
    return c && c.dataset.vote === key && c.dataset.status === 'counting';
  }, JOINT_VOTE, { timeout: 60000, polling: 20 });
  process.kill(player.child.pid, 'SIGSTOP');
  log('player paused while the joint vote is counted');
  try {
    await page.waitForTimeout(500);
    const want = await page.evaluate(() => ({
      agenda: document.querySelector('[data-testid="agenda-item"]')?.textContent,
      quorum: document.querySelector('[data-testid="quorum"]')?.dataset.present + '/' + document.querySelector('[data-testid="quorum"]')?.dataset.required,
      vote: document.querySelector('[data-testid="vote-card"]')?.dataset.vote,
      status: document.querySelector('[data-testid="vote-card"]')?.dataset.status,
      phase: document.querySelector('[data-testid="sitting-phase"]')?.dataset.phase,
      seen: window.sapha.state.seenEvents.size,
    }));
    assert(want.phase === 'opened' && want.status === 'counting', `the main page is not mid-sitting: ${JSON.stringify(want)}`);
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 1050 }, deviceScaleFactor: 1, locale: 'en-GB', timezoneId: 'Europe/London' });
    const p2 = await ctx.newPage();
    p2.on('pageerror', (e) => pageErrors.push(`mid-sitting page: ${e.message}`));
    const t0 = Date.now();
    await p2.goto(`${HUB_URL}/?lang=en&backlog=0`, { waitUntil: 'load', timeout: 20000 });
    await p2.waitForSelector('[data-testid="quorum"][data-present]', { timeout: 5000 });
    const got = await p2.evaluate(() => ({
      agenda: document.querySelector('[data-testid="agenda-item"]')?.textContent,
      quorum: document.querySelector('[data-testid="quorum"]')?.dataset.present + '/' + document.querySelector('[data-testid="quorum"]')?.dataset.required,
      vote: document.querySelector('[data-testid="vote-card"]')?.dataset.vote,
      status: document.querySelector('[data-testid="vote-card"]')?.dataset.status,
      phase: document.querySelector('[data-testid="sitting-phase"]')?.dataset.phase,
      chair: document.querySelector('#sitting .facts')?.textContent.includes('In the chair'),
      seen: window.sapha.state.seenEvents.size,
    }));
    log(`mid-sitting page shows ${JSON.stringify(got)} ${Date.now() - t0} ms after it was opened`);
    assert(got.seen === 0, `the second page got ${got.seen} events: it should need none`);
    assert(/third reading/i.test(got.agenda || ''), `the agenda item is not the third reading: ${got.agenda}`);
    assert(got.agenda === want.agenda, `agenda "${got.agenda}" differs from the live page's "${want.agenda}"`);
    assert(got.quorum === '692/365' && got.quorum === want.quorum, `quorum ${got.quorum}, the live page ${want.quorum}`);
    assert(got.vote === JOINT_VOTE && got.status === 'counting', `the vote being counted did not show: ${got.vote} ${got.status}`);
    assert(got.phase === 'opened' && got.chair, `the sitting's phase or chair did not show: ${JSON.stringify(got)}`);
    await p2.screenshot({ path: join(ARTIFACTS, 'dashboard-midsitting.png'), fullPage: true });
    log(`screenshot: ${join(ARTIFACTS, 'dashboard-midsitting.png')}`);

    // Following from a search result: the timeline shows at once (still no event).
    await p2.click('#bill-search');
    await p2.keyboard.type(AMENDMENT_Q, { delay: 30 });
    await p2.waitForSelector(`#browse-results [data-result="${AMENDMENT}"]`, { timeout: 5000 });
    const mark = await p2.textContent(`#browse-results [data-result="${AMENDMENT}"] mark`);
    assert(mark === AMENDMENT_Q, `the match marked is "${mark}", not "${AMENDMENT_Q}"`);
    const { seq: seqBefore } = await (await fetch(`${HUB_URL}/v1/bills/${AMENDMENT}`)).json();
    await p2.click(`#browse-results [data-follow="${AMENDMENT}"]`);
    await p2.waitForSelector(`#follow-list [data-bill="${AMENDMENT}"] [data-testid="timeline"]`, { timeout: 3000 });
    const tl = await p2.evaluate((id) => ({
      steps: [...document.querySelectorAll(`#follow-list [data-bill="${id}"] [data-testid="timeline"] li`)].map((li) => li.dataset.to),
      stage: document.querySelector(`#follow-list [data-bill="${id}"]`).dataset.stage,
      sub: window.sapha.state.followSub,
      seen: window.sapha.state.seenEvents.size,
      button: document.querySelector(`#browse-results [data-follow="${id}"]`)?.getAttribute('aria-pressed'),
    }), AMENDMENT);
    log(`followed ${AMENDMENT} from a result: timeline ${tl.steps.join(' → ')}; subscribed ${JSON.stringify(tl.sub)}`);
    assert(tl.seen === 0, `the timeline needed ${tl.seen} events`);
    assert(tl.steps[0] === 'PROPOSED' && tl.steps.includes('JOINT_R3') && tl.stage === 'JOINT_R3', `the timeline is ${tl.steps} at ${tl.stage}`);
    assert(tl.sub.topics.includes(`bill.${AMENDMENT}`) && tl.sub.since === seqBefore, `not subscribed to bill.${AMENDMENT} with since=${seqBefore}: ${JSON.stringify(tl.sub)}`);
    assert(tl.button === 'true', 'the result\'s follow button does not say it is followed');
    mid = { ctx, page: p2 };
  } finally {
    process.kill(player.child.pid, 'SIGCONT');
    log('player resumed');
  }
});

await check('the player publishes the scenarios', async () => {
  await player;
  await until(async () => (await seen()) >= LIVE_EVENTS, `${LIVE_EVENTS} events on the page`, 15000);
});
await shot;
const phoneShotTaken = await phoneShot;

await check('in English every date is in the Common Era (as the English titles are), and the feed names each bill by its title', async () => {
  const card = await page.textContent('#sitting');
  // (The sitting id, senate-2566-2-28, is an id, not a date.)
  assert(/2023/.test(card) && !/(?<![-0-9])25[0-9]{2}(?![-0-9])|\bBE\b|B\.E\./.test(card), `the English sitting card mixes eras: ${card}`);
  const all = await page.evaluate(() => document.querySelector('main').innerText);
  assert(!/\b25[0-9]{2} BE\b/.test(all), `a Buddhist Era date on the English page: ${(all.match(/.{0,40}\b25[0-9]{2} BE\b/) || [])[0]}`);
  const feed = await page.evaluate(() => [...document.querySelectorAll('#feed-list li')].map((li) => li.textContent));
  const bare = feed.filter((l) => /\bb-[0-9]{4}-[a-z0-9-]+:/.test(l));
  assert(bare.length === 0, `feed lines name a bill by its id only: ${bare.slice(0, 2)}`);
  assert(feed.some((l) => /Draft (Public Health Act|Constitutional Amendment)/.test(l)), `no feed line names a bill by its title: ${feed.slice(0, 4)}`);
});

await check("the vote card shows only the shown sitting's votes, under a heading that says whether it is in progress", async () => {
  await page.waitForFunction(() => document.getElementById('sitting-h').dataset.tense === 'closed', null, { timeout: 5000 });
  await page.waitForTimeout(100); // two samples of the recorder
  const r = await rec();
  assert(r.foreignVotes.length === 0, `the vote card showed another sitting's vote: ${r.foreignVotes.slice(0, 3)}`);
  const wrong = r.headings.filter((x) => {
    const [, phase, tense] = x.split('|');
    const want = ['closed', 'cancelled'].includes(phase) ? 'closed' : ['scheduled', 'agenda_published', 'undefined', ''].includes(phase) ? 'next' : 'live';
    return phase !== 'undefined' && tense !== want;
  });
  assert(wrong.length === 0, `the sitting heading did not match the sitting's phase: ${wrong.slice(0, 3)}`);
  for (const want of ['senate-2566-2-28|opened|live|Sitting in progress', 'senate-2566-2-28|closed|closed|Latest sitting', 'joint-2564-1-10|opened|live|Sitting in progress']) {
    assert(r.headings.includes(want), `never showed "${want}": ${r.headings.slice(-6)}`);
  }
  assert(r.noVote.includes('senate-2566-2-28'), `the Senate sitting, before its first vote, did not say it had none (it showed ${r.noVote})`);
  // Now: the Senate sitting closed; its last vote on the card; the earlier ones name their sitting and date.
  const now = await page.evaluate(() => ({
    heading: document.getElementById('sitting-h').textContent,
    vote: document.querySelector('[data-testid="vote-card"]')?.dataset.vote,
    earlier: [...document.querySelectorAll('#vote-earlier li')].map((li) => ({ sitting: li.dataset.sitting, where: li.querySelector('[data-testid="earlier-where"]')?.textContent })),
  }));
  assert(now.heading === 'Latest sitting', `after the sitting closed the heading reads "${now.heading}"`);
  assert(now.vote === SENATE_SECRET_VOTE, `the vote card shows ${now.vote}, not the Senate's last vote`);
  const joint = now.earlier.find((e) => e.sitting === 'joint-2564-1-10');
  assert(joint && /Joint sitting/.test(joint.where) && /10 Sept? 2021/.test(joint.where), `the joint vote among the earlier votes reads ${JSON.stringify(joint)}`);
  assert(now.earlier.filter((e) => e.sitting === 'senate-2566-2-28').every((e) => /^this sitting · 28 Feb 2023/.test(e.where)), `the Senate's earlier votes read ${JSON.stringify(now.earlier)}`);
});

await check('the bill followed mid-sitting then moves live (APPROVED and on, from its since)', async () => {
  assert(mid, 'no mid-sitting page');
  await mid.page.waitForFunction((id) => document.querySelector(`#follow-list [data-bill="${id}"]`)?.dataset.stage === 'ENACTED', AMENDMENT, { timeout: 10000 });
  const r = await mid.page.evaluate((id) => ({
    steps: [...document.querySelectorAll(`#follow-list [data-bill="${id}"] [data-testid="timeline"] li`)].map((li) => li.dataset.to),
    delivered: window.sapha.followClient.stats.delivered,
    duplicates: window.sapha.followClient.stats.duplicates,
  }), AMENDMENT);
  assert(r.steps.includes('APPROVED') && new Set(r.steps).size === r.steps.length, `the timeline is ${r.steps}`);
  assert(r.delivered >= 4, `the follow connection delivered ${r.delivered} events`);
  await mid.ctx.close();
});

await check('at phone width (390 x 844, Thai) nothing overflows to the right and the header is compact', async () => {
  // The bill browser and the list of sittings too, with Thai results on show.
  await phone.fill('#bill-search', 'สาธารณสุข');
  await phone.waitForSelector(`#browse-results [data-result="${FOLLOWED}"]`, { timeout: 5000 });
  await phone.waitForSelector('#sittings-list [data-sitting]', { timeout: 5000 });
  const browse = await phone.evaluate(() => {
    let worst = 0;
    let what = '';
    for (const el of document.querySelectorAll('#browser *, #follow *, #sittings *')) {
      const over = el.getBoundingClientRect().right - window.innerWidth;
      if (over > worst) { worst = over; what = `${el.tagName.toLowerCase()}.${el.className} "${(el.textContent || '').slice(0, 60)}"`; }
    }
    return { worst, what };
  });
  assert(browse.worst <= 0.5, `the bill browser or sittings list stuck out ${browse.worst.toFixed(1)} px: ${browse.what}`);
  const w = await phone.evaluate(() => ({ ...window.__phone, sittings: [...window.__phone.sittings] }));
  assert(w.samples > 50, `the phone page took only ${w.samples} samples`);
  assert(w.sittings.includes('2021-09-10') && w.sittings.includes('2023-02-28'), `the phone page did not show both sittings: ${w.sittings}`);
  assert(w.innerWidth === PHONE.width, `the layout viewport widened to ${w.innerWidth} px to fit the page`);
  assert(w.doc <= 0, `the document was ${w.doc} px wider than the viewport`);
  assert(w.card <= 0.5, `an element of the sitting or vote card stuck out ${w.card.toFixed(1)} px to the right: ${w.what}`);
  const now = await phone.evaluate(() => {
    const vw = window.innerWidth;
    const right = Math.max(...[...document.querySelectorAll('#sitting *')].map((el) => el.getBoundingClientRect().right));
    return {
      scrollWidth: document.documentElement.scrollWidth, innerWidth: vw, right,
      header: document.querySelector('header.top').getBoundingClientRect().height, innerHeight: window.innerHeight,
    };
  });
  assert(now.innerWidth === PHONE.width, `the phone viewport is ${now.innerWidth} px wide`);
  assert(now.scrollWidth <= now.innerWidth, `scrollWidth ${now.scrollWidth} > innerWidth ${now.innerWidth}`);
  assert(now.right <= now.innerWidth, `the sitting card reaches ${now.right} px, past ${now.innerWidth}`);
  // "สมัยสามัญ ครั้งที่ 2 ปีที่ 4": each phrase on one line ("ปี" / "ที่ 4" broke apart).
  const broken = await phone.evaluate(() => [...document.querySelectorAll('#sittings-list .nowrap')]
    .filter((el) => el.getClientRects().length !== 1).map((el) => el.textContent));
  const phrases = await phone.evaluate(() => [...document.querySelectorAll('#sittings-list .nowrap')].map((el) => el.textContent));
  assert(phrases.includes('ปีที่ 4') && phrases.includes('ครั้งที่ 2'), `the session phrases are not kept whole: ${phrases}`);
  assert(broken.length === 0, `phrases broken across lines at 390 px: ${broken}`);
  assert(now.header < 0.2 * now.innerHeight, `the header is ${now.header} px high, ${(100 * now.header / now.innerHeight).toFixed(0)}% of the screen`);
  log(`phone: header ${now.header} px (${(100 * now.header / now.innerHeight).toFixed(0)}% of ${now.innerHeight}), widest overflow ${w.card.toFixed(1)} px`);
  if (!phoneShotTaken) {
    await phone.screenshot({ path: join(ARTIFACTS, 'dashboard-phone.png'), fullPage: true });
    log(`screenshot (at the end of the replay): ${join(ARTIFACTS, 'dashboard-phone.png')}`);
  }
  await phone.locator('#browser').screenshot({ path: join(ARTIFACTS, 'dashboard-browser-phone.png') });
});
await phoneContext.close();

await check('the sitting panel shows the agenda item, who has the floor, the quorum and in camera', async () => {
  const r = await rec();
  assert(r.quorum.includes('692/365'), `the joint sitting's quorum 692/365 never showed: ${r.quorum}`);
  assert(r.quorum.includes('203/125'), `the Senate's quorum 203/125 never showed: ${r.quorum}`);
  // s.120: the quorum is half of the members in office (730 on 10 Sep 2021: Daily News 256036).
  assert(r.inOffice.some((s) => /of 730 members in office/.test(s)), `the members in office never showed: ${r.inOffice}`);
  assert(r.speakers.some((s) => /Senator \(speaker 1\)/.test(s)), `no speaker showed: ${r.speakers.slice(0, 5)}`);
  assert(r.agenda.some((s) => /third reading/i.test(s)), `the amendment's agenda item never showed: ${r.agenda.slice(0, 5)}`);
  assert(r.inCamera, 'the Senate going in camera never showed');
});

await check('a counted vote is checked against its threshold (s.256 (6), members in office)', async () => {
  const r = await rec();
  // 472 ayes against more than half of 730 in office; 149 senators against 1/3 of 250.
  const joint = 'Threshold check: met · all 472 ≥ 366 · Senators 149 ≥ 84';
  assert(r.thresholds.includes(joint), `the joint vote's threshold check never showed "${joint}": ${r.thresholds}`);
  // The Senate's secret ballot: at least half of the 250 senators in office.
  assert(r.thresholds.includes('Threshold check: met · all 168 ≥ 125'), `the Senate ballot's check never showed: ${r.thresholds}`);
});

await check('the quorum and the vote each show when they were taken (HH:MM, Bangkok)', async () => {
  const r = await rec();
  // 02:41 UTC, 02:33 UTC and 06:02 UTC are 09:41, 09:33 and 13:02 in Bangkok.
  for (const want of ['692/365@09:41', '203/125@09:33', '189/125@13:02']) {
    const line = r.quorumTimes.find((q) => q.startsWith(`${want}|`));
    assert(line, `the quorum check ${want} never showed its time: ${r.quorumTimes}`);
    assert(line.split('|')[1] === `counted at ${want.split('@')[1]}`, `the quorum's time reads "${line.split('|')[1]}"`);
  }
  // The joint vote was open 03:20–05:40 UTC; the Senate's secret ballot 07:42–08:10 UTC.
  for (const [vote, want] of [[JOINT_VOTE, 'voted 10:20–12:40'], [SENATE_SECRET_VOTE, 'voted 14:42–15:10']]) {
    assert(r.voteTimes.some((v) => v.startsWith(`${vote}|`) && v.endsWith(`|${want}`)), `${vote} never showed "${want}": ${r.voteTimes.filter((v) => v.startsWith(vote))}`);
  }
  assert(r.voteTimes.some((v) => v.startsWith(`${JOINT_VOTE}|counting|voting since 10:20`)), `the joint vote never showed when counting began: ${r.voteTimes.filter((v) => v.startsWith(JOINT_VOTE))}`);
});

await check('each panel is dated by its own events; the header shows the calendar date', async () => {
  const r = await rec();
  // Once open, a sitting is dated by the day it opened; before that (scheduled,
  // agenda published) by its newest event, and says so.
  const opened = [...new Set(r.sittingDates.filter((d) => d.split('|')[1] === 'opened').map((d) => d.split('|')[0]))];
  assert(opened.join(',') === '2021-09-10,2023-02-28', `the open sittings were dated ${opened}, not 2021-09-10 then 2023-02-28`);
  assert(r.sittingDates.some((d) => /^2021-09-10\|opened\|sitting of Friday,? 10 September 2021$/.test(d)), `the joint sitting's date never read "sitting of Friday 10 September 2021": ${r.sittingDates}`);
  const before = r.sittingDates.filter((d) => d.split('|')[1] !== 'opened');
  assert(before.every((d) => /^\d{4}-\d\d-\d\d\|updated\|not opened yet · last news /.test(d)), `a sitting not yet open was dated without saying so: ${before}`);
  const sittingDays = r.sittingDates.map((d) => d.split('|')[0]);
  assert(sittingDays.every((d, i) => i === 0 || d >= sittingDays[i - 1]), `the sitting panel's day went back: ${sittingDays}`);
  // The bills panel names the day of the bills it lists: the amendment's third reading on 10 Sep 2021.
  assert(r.billsTitles.some((d) => /^2021-09-10\|Bills that moved on 10 Sept? 2021$/.test(d)), `the bills panel never read "Bills that moved on 10 Sep 2021": ${r.billsTitles.slice(0, 8)}`);
  // Played in order, its day only moves forward.
  const billDays = r.billsTitles.map((d) => d.split('|')[0]);
  assert(billDays.every((d, i) => i === 0 || d >= billDays[i - 1]), `the bills panel's day went back: ${billDays}`);
  // Every bill it lists moved on the day it names.
  const listed = await page.evaluate(() => {
    const day = document.getElementById('bills-title').dataset.day;
    const key = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Bangkok', year: 'numeric', month: '2-digit', day: '2-digit' });
    return [...document.querySelectorAll('#bills-list [data-bill]')].map((el) => {
      const b = window.sapha.state.bills.get(el.dataset.bill);
      return { id: el.dataset.bill, day, ok: b.moves.some((m) => key.format(new Date(m.at)) === day) };
    });
  });
  assert(listed.length > 0 && listed.every((b) => b.ok), `a listed bill did not move on the day named: ${JSON.stringify(listed.filter((b) => !b.ok))}`);
  const today = bangkokDay(Date.now());
  assert(r.today.length > 0 && r.today.every((d) => d === today || d === bangkokDay(started)), `the header's date followed the events: ${r.today}`);
});

await check('the vote tallies change from zero to 472 / 33 / 187, by option and by House', async () => {
  const votes = (await rec()).votes.map((v) => JSON.parse(v)).filter((v) => v.vote === JOINT_VOTE);
  const zero = votes.findIndex((v) => v.status === 'counting' && v.totals === '0/0/0' && v.groups === '0/0');
  const final = votes.findIndex((v) => v.totals === '472/33/187');
  assert(zero >= 0, `the vote never showed as being counted from zero: ${JSON.stringify(votes.slice(0, 3))}`);
  assert(final > zero, `the tallies never reached 472/33/187 after zero: ${JSON.stringify(votes.slice(-3))}`);
  const f = votes[final];
  assert(f.groups === '467/225', `by House: expected MPs 467, senators 225, got ${f.groups}`);
  assert(f.cells === '323/23/121/149/10/66', `by option and House: got ${f.cells}`);
  assert(f.ayeWidth !== '0%' && f.ayeWidth !== '-', `the aye bar did not grow: ${f.ayeWidth}`);
  assert(votes.some((v) => v.status === 'decided' && v.totals === '472/33/187'), 'the result (passed) never showed');
});

await check("a bill's stage advances (followed, and among the bills that moved on the day)", async () => {
  const r = await rec();
  const order = (list) => list.map((s) => Number(s.split('@')[1]));
  const followed = r.stages[`follow:${FOLLOWED}`] || [];
  assert(followed.length >= 2, `the followed bill's stage never changed: ${followed}`);
  assert(followed.at(-1).startsWith('HOUSE_SENATE_AMENDMENTS@'), `the followed bill ended at ${followed.at(-1)}, not HOUSE_SENATE_AMENDMENTS`);
  const p = order(followed);
  assert(p.every((x, i) => i === 0 || x >= p[i - 1]) && p.at(-1) > p[0], `progress did not advance: ${followed}`);
  const today = r.stages[`today:${AMENDMENT}`] || [];
  assert(today.some((s) => s.startsWith('APPROVED@')), `the amendment never showed at APPROVED among the bills that moved on the day: ${today}`);
});

// ---- the bill browser and the list of sittings -------------------------------------------

await check('the bill browser finds bills by Thai title as one types, with the match marked', async () => {
  await page.fill('#bill-search', '');
  await page.click('#bill-search');
  await page.keyboard.type('สาธารณสุข', { delay: 40 });
  await page.waitForSelector(`#browse-results[data-query="สาธารณสุข"] [data-result="${FOLLOWED}"]`, { timeout: 5000 });
  const r = await page.evaluate((id) => {
    const li = document.querySelector(`#browse-results [data-result="${id}"]`);
    return { mark: li.querySelector('mark')?.textContent, title: li.querySelector('[data-testid="result-title"]').textContent,
      followed: li.querySelector('[data-follow]').getAttribute('aria-pressed'), status: document.getElementById('browse-status').textContent };
  }, FOLLOWED);
  const api = await (await fetch(`${HUB_URL}/v1/bills?q=${encodeURIComponent('สาธารณสุข')}&limit=20`)).json();
  const item = api.items.find((i) => i.bill_id === FOLLOWED);
  assert(r.mark === 'สาธารณสุข', `the match marked is "${r.mark}"`);
  assert(item && r.title.startsWith(item.title.th), `the title shown "${r.title}" is not the Thai title "${item && item.title.th}"`);
  assert(r.followed === 'true', 'the followed bill is not shown as followed');
  assert(r.status.includes(String(api.total)), `the count "${r.status}" does not say ${api.total}`);
  // English works too, case aside.
  await page.fill('#bill-search', 'PUBLIC HEALTH');
  await page.waitForSelector(`#browse-results[data-query="PUBLIC HEALTH"] [data-result="${FOLLOWED}"] mark`, { timeout: 5000 });
  await page.fill('#bill-search', AMENDMENT_Q);
  await page.waitForSelector(`#browse-results[data-query="${AMENDMENT_Q}"] [data-result="${AMENDMENT}"]`, { timeout: 5000 });
  // One result: "1 bill", not "1 bills".
  const one = await page.textContent('#browse-status');
  assert(one === '1 bill', `one result reads "${one}"`);
  await page.fill('#bill-search', 'สาธารณสุข');
  await page.waitForSelector(`#browse-results[data-query="สาธารณสุข"] [data-result="${FOLLOWED}"]`, { timeout: 5000 });
  await page.locator('#browser').scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-browser.png'), fullPage: true });
  log(`screenshot: ${join(ARTIFACTS, 'dashboard-browser.png')}`);
});

const STAGE_LISTS = { committee: 'HOUSE_COMMITTEE,SENATE_COMMITTEE,PARLIAMENT_COMMITTEE,JOINT_COMMITTEE', assent: 'PRESENTED_FOR_ASSENT' };
/** Waits until the stage list `preset` shows what GET /v1/bills?stage=... answers; returns how many. */
async function stageListMatches(preset, ms) {
  const stages = STAGE_LISTS[preset];
  let last = '';
  await until(async () => {
    const shown = await page.evaluate((p) => {
      const list = document.getElementById('browse-results');
      if (document.querySelector(`[data-preset="${p}"]`).getAttribute('aria-pressed') !== 'true' || list.dataset.preset !== p || list.getAttribute('aria-busy') !== 'false') return null;
      return [...list.querySelectorAll('[data-result]')].map((li) => `${li.dataset.result}:${li.dataset.stage}`);
    }, preset);
    const api = await (await fetch(`${HUB_URL}/v1/bills?stage=${stages}&sort=moved_desc&limit=20`)).json();
    const want = api.items.map((i) => `${i.bill_id}:${i.stage}`);
    last = `shows ${shown && shown.slice(0, 5)}, the API ${want.slice(0, 5)}`;
    return shown && JSON.stringify(shown) === JSON.stringify(want) && shown.every((x) => stages.split(',').includes(x.split(':')[1])) ? { n: api.total } : null;
  }, `the ${preset} list to match the API (${last})`, ms);
  return (await page.evaluate(() => document.querySelectorAll('#browse-results [data-result]').length));
}

await check('the stage lists (in committee now, awaiting royal assent) match GET /v1/bills?stage=...', async () => {
  await page.click('[data-preset="assent"]');
  log(`awaiting royal assent: ${await stageListMatches('assent', 5000)} bills`);
  await page.click('[data-preset="committee"]');
  // Left on show: the bills played during the restart put some in committee.
  log(`in committee now: ${await stageListMatches('committee', 5000)} bills`);
});

await check('the list of sittings: newest first, with day, chamber, number and session, and status', async () => {
  await page.waitForFunction(() => document.querySelectorAll('#sittings-list [data-sitting]').length >= 2
    && [...document.querySelectorAll('#sittings-list [data-sitting]')].every((li) => li.dataset.status === 'closed'), null, { timeout: 5000 });
  const rows = await page.evaluate(() => [...document.querySelectorAll('#sittings-list [data-sitting]')].map((li) => ({ id: li.dataset.sitting, day: li.dataset.day, text: li.textContent })));
  assert(rows[0].id === 'senate-2566-2-28' && rows[1].id === 'joint-2564-1-10', `the sittings are not newest first: ${rows.map((r) => r.id)}`);
  assert(/28 Feb 2023/.test(rows[0].text) && /Senate/.test(rows[0].text) && /no\. 28/.test(rows[0].text) && /ordinary session 2, year 4/.test(rows[0].text) && /closed/.test(rows[0].text),
    `the Senate sitting reads "${rows[0].text}"`);
  assert(/10 Sept? 2021/.test(rows[1].text) && /Joint sitting/.test(rows[1].text) && /ordinary session 1, year 3/.test(rows[1].text), `the joint sitting reads "${rows[1].text}"`);
});

// ---- ?hub=: the stream and the state API of another hub ------------------------------------

// The page comes from the first hub; `?hub=` points it at the second, on another
// port (another origin). Its WebSocket, state API (search, sittings, a followed
// bill's timeline) and follow API are all that hub's. The page's own CSP must let
// those requests go; the other hub's CORS must let the page read the answers.
await check('?hub= (another hub, another origin): search, the sittings and a followed bill come from that hub, and the badge tells the truth', async () => {
  const hub2 = new URL(HUB2_URL);
  const cors = (await fetch(`${HUB2_URL}/v1/bills?limit=1`, { headers: { origin: new URL(HUB_URL).origin } })).headers.get('access-control-allow-origin');
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 1050 }, deviceScaleFactor: 1, locale: 'en-GB', timezoneId: 'Europe/London' });
  const p = await ctx.newPage();
  const errors = [];
  const requests = new Set();
  p.on('pageerror', (e) => errors.push(e.message));
  p.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  p.on('request', (r) => requests.add(new URL(r.url()).host));
  try {
    await p.goto(`${HUB_URL}/?lang=en&backlog=0&hub=${encodeURIComponent(`ws://${hub2.host}/v1/ws`)}`, { waitUntil: 'load', timeout: 20000 });
    await p.waitForSelector('#conn[data-state="live"]', { timeout: 15000 });
    const csp = errors.filter((e) => /Content Security Policy/i.test(e));
    assert(csp.length === 0, `the page's own CSP blocked its requests to the other hub: ${csp[0]}`);
    if (!cors) {
      // That hub sends no CORS headers (issue 21 item 4 is not in this build):
      // the answers cannot be read, and the page must say so rather than just "Live".
      log(`SKIP  ?hub=: reading the other hub's answers (it sends no Access-Control-Allow-Origin); checking that the page says the state API is unreachable`);
      await p.waitForSelector('#conn[data-state="live"][data-api="down"]', { timeout: 10000 });
      const said = await p.evaluate(() => ({ badge: document.querySelector('#conn .text').textContent, notice: document.getElementById('notice').hidden ? null : document.getElementById('notice').textContent }));
      assert(/state API cannot be reached/.test(said.badge), `the badge reads "${said.badge}"`);
      assert(said.notice && said.notice.includes(hub2.host), `no notice names the other hub: ${said.notice}`);
      return;
    }
    await p.waitForSelector('#sittings-list [data-sitting="senate-2566-2-28"]', { timeout: 10000 });
    await p.fill('#bill-search', 'สาธารณสุข');
    await p.waitForSelector(`#browse-results[data-query="สาธารณสุข"] [data-result="${FOLLOWED}"]`, { timeout: 10000 });
    await p.click(`#browse-results [data-follow="${FOLLOWED}"]`);
    await p.waitForSelector(`#follow-list [data-bill="${FOLLOWED}"] [data-testid="timeline"]`, { timeout: 10000 });
    const said = await p.evaluate(() => ({ api: document.getElementById('conn').dataset.api, badge: document.querySelector('#conn .text').textContent, notice: document.getElementById('notice').hidden }));
    assert(said.api === 'ok' && said.badge === 'Live' && said.notice, `the badge or the notice says the state API is down: ${JSON.stringify(said)}`);
    assert(requests.has(hub2.host), `no request went to the other hub (${[...requests]})`);
    const apiOnFirst = await p.evaluate(() => performance.getEntriesByType('resource').map((e) => e.name).filter((u) => u.includes('/v1/') && !u.startsWith(window.sapha.apiBase || '-')));
    assert(apiOnFirst.length === 0, `state API requests went to the page's own hub: ${apiOnFirst.slice(0, 3)}`);
    assert(errors.length === 0, `errors on the ?hub= page: ${errors.slice(0, 3).join(' | ')}`);
  } finally {
    await ctx.close();
  }
});

// ---- /?bill= on a phone: the bill at the top ---------------------------------------------------

await check('/?bill=<id> on a phone (390 x 844) keeps the bill at the top while the panels above it fill in', async () => {
  const ctx = await browser.newContext({ viewport: PHONE, deviceScaleFactor: 1, isMobile: true, hasTouch: true, locale: 'en-GB', timezoneId: 'Europe/London' });
  const p = await ctx.newPage();
  p.on('pageerror', (e) => pageErrors.push(`phone ?bill= page: ${e.message}`));
  try {
    await p.goto(`${HUB_URL}/?lang=th&bill=${FOLLOWED}`, { waitUntil: 'load', timeout: 20000 });
    // Everything above the followed bills has filled in: the sitting, its vote,
    // the bill browser, the list of sittings, the bills of the day.
    await p.waitForSelector(`#follow-list [data-bill="${FOLLOWED}"][data-opened] [data-testid="timeline"]`, { timeout: 10000 });
    await p.waitForSelector('#conn[data-state="live"]', { timeout: 15000 });
    await p.waitForSelector('#sittings-list [data-sitting]', { timeout: 10000 });
    await p.waitForSelector('[data-testid="vote-card"]', { timeout: 10000 });
    await until(() => p.evaluate((n) => window.sapha.state.seenEvents.size >= n, LIVE_EVENTS), 'the backlog on the phone page', 15000);
    const where = () => p.evaluate((id) => {
      const el = document.querySelector(`#follow-list [data-bill="${id}"]`);
      return { top: el.getBoundingClientRect().top, scrollY: window.scrollY, above: el.offsetTop };
    }, FOLLOWED);
    let last = null;
    await until(async () => { last = await where(); return last.top >= 0 && last.top <= 16; }, 'the bill at the top', 5000)
      .catch((e) => { throw new Error(`${e.message}: it is ${JSON.stringify(last)}`); });
    assert(last.above > PHONE.height, `the bill is not below the first screen anyway (${last.above} px): the check proves nothing`);
    await p.screenshot({ path: join(ARTIFACTS, 'dashboard-phone-bill.png') });
    log(`screenshot: ${join(ARTIFACTS, 'dashboard-phone-bill.png')}; the bill is ${last.above} px down the page, at ${last.top} px on screen`);
    // Once the reader scrolls, the page lets go.
    await p.mouse.wheel(0, -400);
    await until(async () => (await where()).top > 100, 'the page to let the reader scroll up', 5000);
  } finally {
    await ctx.close();
  }
});

// ---- a hub restart while events keep coming ------------------------------------------

await check('after a hub restart it reconnects and resumes with no gap and no duplicate', async () => {
  assert(!playerError, `the live player failed: ${playerError && playerError.message}`);
  const before = await seen();
  const oldPid = Number(readFileSync(HUB_PID_FILE, 'utf8').trim());
  hubDownOnPurpose = true;
  process.kill(oldPid, 'SIGTERM');
  await until(() => page.evaluate(() => window.sapha.client.state !== 'live'), 'the page to notice the hub is gone', 15000);
  await until(() => { try { process.kill(oldPid, 0); return false; } catch { return true; } }, 'the old hub to exit', 15000);
  // Events published while no hub is running: the page must get them on resume.
  await run(PLAY_OFFLINE, 'player-offline', 30000);
  const hub = spawn(HUB_CMD[0], HUB_CMD.slice(1), { stdio: ['ignore', openSync(join(LOG_DIR, 'hub-restarted.log'), 'w'), openSync(join(LOG_DIR, 'hub-restarted.log'), 'a')] });
  writeFileSync(HUB_PID_FILE, `${hub.pid}\n`);
  hub.unref();
  await until(hubReady, 'the restarted hub to be ready', 20000);
  await page.waitForSelector('#conn[data-state="live"]', { timeout: 30000 });
  // Let the page's other connection (followed bills) reconnect too before errors count again.
  await new Promise((r) => setTimeout(r, 3000));
  hubDownOnPurpose = false;
  await until(async () => (await seen()) >= before + OFFLINE_EVENTS, `${OFFLINE_EVENTS} more events after the restart`, 20000);
  const s = await page.evaluate(() => ({ ...window.sapha.client.stats, seen: window.sapha.state.seenEvents.size, lastSeq: window.sapha.client.lastSeq }));
  assert(s.seen === before + OFFLINE_EVENTS, `expected ${before + OFFLINE_EVENTS} events, the page has ${s.seen}`);
  assert(s.delivered === s.seen, `the client delivered ${s.delivered} events for ${s.seen} distinct ones`);
  assert(s.gaps === 0, 'the hub reported lost history');
  assert(s.reconnects >= 1, 'no reconnect was counted');
  assert(s.lastSeq === LIVE_EVENTS + OFFLINE_EVENTS, `lastSeq is ${s.lastSeq}, not ${LIVE_EVENTS + OFFLINE_EVENTS}`);
  const states = (await rec()).states;
  assert(states.includes('reconnecting') || states.includes('connecting'), `the indicator never left live: ${states}`);
});

await check('the committee list refreshes by itself as bills move (after the restart)', async () => {
  const n = await stageListMatches('committee', 10000);
  assert(n > 0, 'no bill is in committee after the bills played during the restart');
  log(`in committee now, after the restart: ${n} bills`);
});

await check('search: พ.ร.บ. typed key by key never says "no match", พรบ finds the same bills, and "more" shows the next page', async () => {
  await page.fill('#bill-search', '');
  await page.click('#bill-search');
  const statuses = [];
  for (const c of 'พ.ร.บ.') {
    await page.keyboard.type(c);
    const typed = await page.inputValue('#bill-search');
    await page.waitForFunction((q) => {
      const list = document.getElementById('browse-results');
      return list.dataset.query === q && list.getAttribute('aria-busy') === 'false';
    }, typed, { timeout: 5000 });
    statuses.push(`${typed}: ${await page.textContent('#browse-status')}`);
  }
  assert(statuses.every((x) => !/No bill matches/.test(x)), `typing พ.ร.บ. said no match on the way: ${statuses.join(' | ')}`);
  const api = async (q) => (await (await fetch(`${HUB_URL}/v1/bills?q=${encodeURIComponent(q)}&limit=1`)).json()).total;
  const total = await api('พ.ร.บ.');
  assert(total > 20 && (await api('พรบ')) === total && (await api('พ.ร.บ')) === total, `พ.ร.บ. finds ${total}, พรบ ${await api('พรบ')}, พ.ร.บ ${await api('พ.ร.บ')}`);
  await page.fill('#bill-search', 'พรบ');
  await page.waitForFunction(() => document.getElementById('browse-results').dataset.query === 'พรบ' && document.getElementById('browse-results').getAttribute('aria-busy') === 'false', null, { timeout: 5000 });
  const ids = () => page.evaluate(() => [...document.querySelectorAll('#browse-results [data-result]')].map((li) => li.dataset.result));
  assert((await ids()).length === 20, `the first page shows ${(await ids()).length}`);
  assert(await page.isVisible('#browse-more'), 'no "more" button under 20 of more results');
  await page.click('#browse-more');
  const want = Math.min(total, 40);
  await until(async () => (await ids()).length === want, `${want} results after "more"`, 5000);
  const shown = await ids();
  assert(new Set(shown).size === shown.length, `a result is shown twice: ${shown}`);
  assert((total > 40) === (await page.isVisible('#browse-more')), `the "more" button with ${shown.length} of ${total} shown`);
});

await check('results with the same title are told apart (who introduced each, and its id spelled out)', async () => {
  const all = (await (await fetch(`${HUB_URL}/v1/bills?limit=200`)).json()).items;
  const count = new Map();
  for (const b of all) count.set(b.title.th, (count.get(b.title.th) || 0) + 1);
  const [title] = [...count].find(([, n]) => n > 1) || [];
  assert(title, 'no two bills share a title in this run: the check proves nothing');
  // The distinctive part of the title (without "ร่างพระราชบัญญัติ" and the trailing "(ฉบับที่ ..) พ.ศ. ....").
  const q = title.replace(/^ร่างพระราชบัญญัติ/, '').replace(/\s*\(ฉบับที่.*$|\s*พ\.ศ\..*$/, '');
  await page.fill('#bill-search', q);
  await page.waitForFunction((x) => document.getElementById('browse-results').dataset.query === x && document.getElementById('browse-results').getAttribute('aria-busy') === 'false', q, { timeout: 5000 });
  const rows = await page.evaluate(() => [...document.querySelectorAll('#browse-results [data-result]')].map((li) => ({
    id: li.dataset.result, title: li.querySelector('[data-testid="result-title"]').textContent,
    alike: li.querySelector('[data-testid="result-alike"]')?.textContent || null, proposer: li.querySelector('[data-testid="result-proposer"]')?.textContent || null })));
  const same = rows.filter((r) => rows.filter((x) => x.title === r.title).length > 1);
  assert(same.length >= 2, `"${q}" shows no two results alike: ${JSON.stringify(rows)}`);
  assert(same.every((r) => r.alike && r.alike.includes(r.id) && r.proposer), `results alike are not told apart: ${JSON.stringify(same)}`);
  assert(rows.filter((r) => !same.includes(r)).every((r) => !r.alike), 'a result with a title of its own says it is alike');
});

await check('the Thai toggle switches the page, with Buddhist Era dates in Bangkok time', async () => {
  await page.click('.lang button[data-lang="th"]');
  await until(() => page.evaluate(() => document.documentElement.lang === 'th'), 'lang=th', 3000);
  const today = await page.textContent('#today-date');
  assert(/พ\.ศ\. 25\d\d/.test(today), `the date is not in the Buddhist Era: ${today}`);
  const heading = await page.textContent('#bills-h');
  assert(/ร่างกฎหมายที่มีความคืบหน้าเมื่อ .*25\d\d/.test(heading), `the bills heading is not in Thai with its day: ${heading}`);
  const sitting = await page.textContent('[data-testid="sitting-date"]');
  assert(/28 กุมภาพันธ์ พ\.ศ\. 2566/.test(sitting), `the sitting's date is not 28 กุมภาพันธ์ พ.ศ. 2566: ${sitting}`);
  const qt = await page.textContent('[data-testid="quorum-time"]');
  assert(/13:02 น\./.test(qt), `the quorum's time is not in Thai: ${qt}`);
  const conn = await page.textContent('#conn .text');
  assert(conn === 'สด', `the indicator is not in Thai: ${conn}`);
  const thai = await page.evaluate(() => document.body.innerText);
  assert(!/\bhub\b/i.test(thai), `the Thai page says "hub": ${(thai.match(/.{0,30}\bhub\b.{0,30}/i) || [])[0]}`);
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-th.png'), fullPage: true });
  log(`screenshot: ${join(ARTIFACTS, 'dashboard-th.png')}`);
});

// ---- Web Push: follow a bill, get its notification, click it ------------------------------
//
// What is real here: the hub and its follow API, the dashboard, the service
// worker (/sw.js) in Chromium, its `push` event (delivered by DevTools'
// ServiceWorker.deliverPushMessage, the way a push service's message arrives)
// and the notifications Chromium shows. What stands in: the browser vendor's
// push service. Headless Chromium here has no internet and cannot subscribe with
// it, so PushManager.prototype.subscribe is replaced (in this test only) by one
// that returns SAPHA_TEST_PUSH_SUBSCRIPTION, a subscription of a local RFC 8030
// push service that the harness runs. Nothing else is faked.
//
// A hub without a notifier answers GET /v1/push/key with 503 (and a hub without
// the follow API, 404): then the follow-API checks are skipped with the reason,
// and only the service worker and what the page says are checked. With
// SAPHA_TEST_PUSH_SUBSCRIPTION set, the same answer is a failure.
const PUSH_SUBSCRIPTION = process.env.SAPHA_TEST_PUSH_SUBSCRIPTION || '';
const HUB_ORIGIN = new URL(HUB_URL).origin;
const keyAnswer = await fetch(`${HUB_URL}/v1/push/key`).then(async (r) => ({ status: r.status, body: await r.json().catch(() => null) }), (e) => ({ status: 0, body: { message: e.message } }));
const VAPID_KEY = keyAnswer.status === 200 && keyAnswer.body ? keyAnswer.body.vapid_public_key : null;
/** GET /v1/followers/{id} with the follower's secret: status and body. */
async function getFollower(f) {
  const r = await fetch(`${HUB_URL}/v1/followers/${encodeURIComponent(f.id)}`, { headers: { authorization: `Bearer ${f.secret}` } });
  return { status: r.status, body: await r.json().catch(() => null) };
}
/** A subscription's JSON with a real P-256 key and auth secret, to a port nothing listens on (delivery not tested). */
function placeholderSubscription() {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return JSON.stringify({ endpoint: 'http://127.0.0.1:9/push/sapha-browser-test', expirationTime: null,
    keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') } });
}

let pushRun = null;
if (!VAPID_KEY) {
  const why = `GET /v1/push/key answered ${keyAnswer.status} ${keyAnswer.body && keyAnswer.body.code ? keyAnswer.body.code : ''}`.trim();
  if (PUSH_SUBSCRIPTION) {
    await check('Web Push: the hub has a notifier (SAPHA_TEST_PUSH_SUBSCRIPTION is set)', async () => {
      throw new Error(`${why}: the Web Push checks cannot run`);
    });
  } else {
    log(`SKIP  Web Push: follow API checks (${why}: this hub sends no notifications)`);
    await check('Web Push: with no notifier, a followed bill says notifications are off on this hub', async () => {
      // The main page, in Thai by now, follows FOLLOWED since the start.
      await page.waitForSelector(`#follow-list [data-bill="${FOLLOWED}"] [data-push="off"]`, { timeout: 5000 });
      const note = await page.textContent(`#follow-list [data-bill="${FOLLOWED}"] [data-push]`);
      assert(note.includes('เซิร์ฟเวอร์นี้ไม่ได้เปิดบริการแจ้งเตือน'), `the note reads "${note}"`);
    });
  }
} else {
  if (!PUSH_SUBSCRIPTION) log('Web Push: SAPHA_TEST_PUSH_SUBSCRIPTION is not set: the page gets a placeholder subscription (a real key, an endpoint nothing listens on); the notifier\'s delivery is not tested');
  pushRun = { subscription: PUSH_SUBSCRIPTION || placeholderSubscription() };
}

// The page and its DevTools session: a context of its own (its own storage and
// service worker), in Thai, with the notifications permission granted.
const pushCtx = await browser.newContext({ viewport: { width: 1400, height: 1050 }, deviceScaleFactor: 1, locale: 'th-TH', timezoneId: 'Asia/Bangkok' });
await pushCtx.grantPermissions(['notifications'], { origin: HUB_ORIGIN });
if (pushRun) {
  await pushCtx.addInitScript((subJson) => {
    // Stands in for the browser vendor's push service (see above): the page gets
    // the harness's subscription. The arguments are kept for the test to check.
    const sub = JSON.parse(subJson);
    PushManager.prototype.subscribe = async function subscribe(options) {
      const key = options && options.applicationServerKey ? new Uint8Array(options.applicationServerKey) : null;
      window.__pushSubscribe = {
        userVisibleOnly: options && options.userVisibleOnly,
        key: key ? btoa(String.fromCharCode(...key)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '') : null,
      };
      return { endpoint: sub.endpoint, expirationTime: null, options: { userVisibleOnly: true, applicationServerKey: key && key.buffer },
        toJSON: () => sub, unsubscribe: async () => true, getKey: () => null };
    };
  }, pushRun.subscription);
}
const pushPage = await pushCtx.newPage();
pushPage.on('pageerror', (e) => pageErrors.push(`push page: ${e.message}`));
pushPage.on('console', (m) => {
  if (m.type() === 'error' && /status of (404|503)/.test(m.text()) && /\/v1\/(push\/key|bills\/[a-z0-9_-]+)$/.test(m.location().url || '')) return;
  // The last check deletes the follower on purpose: the page's next request for it is a 404 (unknown_follower).
  if (m.type() === 'error' && /status of 404/.test(m.text()) && /\/v1\/followers\/[^/]+(\/bills\/[a-z0-9_-]+)?$/.test(m.location().url || '')) return;
  if (m.type() === 'error' || (m.type() === 'warning' && /notifications/.test(m.text()))) pageErrors.push(`push page console: ${m.text()}`);
});
const cdp = await pushCtx.newCDPSession(pushPage);
const registrations = new Map();
cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => {
  for (const r of e.registrations) registrations.set(r.scopeURL, r);
});
await cdp.send('ServiceWorker.enable');
await pushPage.goto(`${HUB_URL}/?lang=th&backlog=0`, { waitUntil: 'load', timeout: 20000 });
await pushPage.waitForSelector('#conn[data-state="live"]', { timeout: 15000 });
const follower = () => pushPage.evaluate(() => JSON.parse(localStorage.getItem('sapha.follower') || 'null'));

if (pushRun) {
  await check('Web Push: Follow registers this browser with the follow API, and the bill says notifications are on', async () => {
    await pushPage.fill('#follow-input', FOLLOWED);
    await pushPage.click('#follow-form button');
    await pushPage.waitForSelector(`#follow-list [data-bill="${FOLLOWED}"] [data-push="on"]`, { timeout: 10000 });
    const note = await pushPage.textContent(`#follow-list [data-bill="${FOLLOWED}"] [data-push]`);
    assert(note.includes('แจ้งเตือนเปิดอยู่'), `the note reads "${note}"`);
    const args = await pushPage.evaluate(() => window.__pushSubscribe);
    assert(args && args.userVisibleOnly === true, `subscribe was not asked for userVisibleOnly: ${JSON.stringify(args)}`);
    assert(args.key === VAPID_KEY, `subscribe got the key ${args.key}, not the hub's ${VAPID_KEY}`);
    const f = await follower();
    assert(f && f.id && f.secret, `no follower in localStorage: ${JSON.stringify(f)}`);
    const got = await getFollower(f);
    assert(got.status === 200, `GET /v1/followers/${f.id} answered ${got.status} ${JSON.stringify(got.body)}`);
    assert(got.body.bills.includes(FOLLOWED), `the hub's follower has ${got.body.bills}, not ${FOLLOWED}`);
    assert(got.body.lang === 'th', `the follower's language is ${got.body.lang}, not th`);
    pushRun.follower = f;
  });
}

// The whole path, when the harness runs a notifier and a local push service:
// the followed bill moves (a real stage change published into NATS), the
// notifier encrypts a message for this browser's subscription, the push service
// decrypts it as the browser would, and that very payload is what the service
// worker is given below.
const PUSH_RECEIVED_URL = process.env.SAPHA_TEST_PUSH_RECEIVED_URL || '';
const PLAY_PUSH = process.env.PLAY_PUSH ? JSON.parse(process.env.PLAY_PUSH) : null;
if (pushRun && pushRun.follower && PUSH_RECEIVED_URL && PLAY_PUSH) {
  await check('Web Push: the bill moves, and the notifier\'s encrypted message reaches the push service for this browser', async () => {
    await run(PLAY_PUSH, 'push-move', 20000);
    const got = await until(async () => {
      const r = await fetch(PUSH_RECEIVED_URL).then((x) => x.json());
      const m = r.received.map((x) => ({ ...x, payload: JSON.parse(x.payload) })).find((x) => x.payload.bill_id === FOLLOWED);
      return m || null;
    }, 'the push message at the local push service', 15000);
    assert(got.payload.lang === 'th', `the message's language is ${got.payload.lang}`);
    assert(got.payload.to_stage === 'JOINT_COMMITTEE', `to_stage ${got.payload.to_stage}`);
    assert(got.topic === FOLLOWED && got.urgency === 'normal' && got.ttl > 0, `headers: topic ${got.topic}, urgency ${got.urgency}, ttl ${got.ttl}`);
    assert(got.payload.url === `${HUB_URL}/?bill=${FOLLOWED}`, `url ${got.payload.url}`);
    log(`push service decrypted: "${got.payload.title.th}" / "${got.payload.body.th}"`);
    pushRun.delivered = got.payload;
  });
}

await check('Web Push: the service worker shows a pushed bill move in the page\'s language', async () => {
  // With no follow API the page registers no worker: register it as the page would.
  if (!pushRun || !pushRun.follower) await pushPage.evaluate(() => navigator.serviceWorker.register('/sw.js').then(() => navigator.serviceWorker.ready));
  const reg = await until(() => registrations.get(`${HUB_ORIGIN}/`), 'the service worker registration (DevTools)', 10000);
  // The payload the notifier sent (decrypted by the local push service) when
  // the harness runs one; otherwise one of the documented shape.
  const payload = (pushRun && pushRun.delivered) || { v: 1, lang: 'th', title: { th: 'ร่างที่ติดตามเข้าสู่วาระที่ 3', en: 'A followed bill is at its third reading' },
    body: { th: `${FOLLOWED}: วุฒิสภา วาระที่ 3`, en: `${FOLLOWED}: Senate third reading` }, bill_id: FOLLOWED, to_stage: 'SENATE_R3',
    event_id: 'browser-test-push-1', seq: 1, correction: false, url: `/?bill=${FOLLOWED}`, tag: `bill-${FOLLOWED}` };
  const deliver = () => cdp.send('ServiceWorker.deliverPushMessage', { origin: HUB_ORIGIN, registrationId: reg.registrationId, data: JSON.stringify(payload) });
  const notifications = (tag) => pushPage.evaluate((t) => navigator.serviceWorker.ready.then((r) => r.getNotifications({ tag: t }))
    .then((ns) => ns.map((n) => ({ title: n.title, body: n.body, tag: n.tag, lang: n.lang, data: n.data }))), tag);
  // On a loaded box the DevTools delivery has gone missing (about one run in
  // nine, before and after issue 21): deliver once more before failing, and
  // say so in the log. The same payload twice shows one notification (its tag).
  await deliver();
  let shown = await until(async () => (await notifications(payload.tag))[0], 'the notification', 5000).catch(() => null);
  if (!shown) {
    log('the DevTools push delivery went missing; delivering it once more');
    await deliver();
    shown = await until(async () => (await notifications(payload.tag))[0], 'the notification (second delivery)', 10000);
  }
  assert(shown.title === payload.title.th && shown.body === payload.body.th, `the notification reads "${shown.title}" / "${shown.body}"`);
  assert(shown.lang === 'th' && shown.tag === payload.tag, `lang ${shown.lang}, tag ${shown.tag}`);
  // The worker keeps only same-origin links, as a path.
  assert(new URL(shown.data.url, HUB_URL).href === new URL(payload.url, HUB_URL).href && shown.data.bill_id === FOLLOWED && shown.data.event_id === payload.event_id, `data ${JSON.stringify(shown.data)}`);
  // A message that is not JSON still shows a (generic) notification: Chrome requires one per push.
  // Wait for that notification itself (not for a count). On a loaded CI box the
  // DevTools delivery has once gone missing: deliver a second time before failing,
  // and say so in the log.
  const generic = async () => {
    const ns = await pushPage.evaluate(() => navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((x) => x.map((n) => ({ title: n.title, url: n.data && n.data.url }))));
    return ns.find((n) => n.title.startsWith('Sapha')) || null;
  };
  const deliverNotJson = () => cdp.send('ServiceWorker.deliverPushMessage', { origin: HUB_ORIGIN, registrationId: reg.registrationId, data: 'not json' });
  await deliverNotJson();
  let fallback = await until(generic, 'the generic notification', 10000).catch(() => null);
  if (!fallback) {
    log('the generic notification did not show within 10 s: delivering the non-JSON push once more');
    await deliverNotJson();
    fallback = await until(generic, 'the generic notification (second delivery)', 10000);
  }
  assert(fallback.url === '/', `the generic notification opens ${fallback.url}, not /`);
  log(`notification shown: "${shown.title}" / "${shown.body}" (${shown.tag}, ${shown.data.url})`);
});

await check('Web Push: clicking the notification closes it and opens the bill in the open dashboard', async () => {
  // The worker's own `notificationclick` listener, run in the worker with the
  // notification Chromium shows. Not exercised: a real OS click (so focus() is
  // refused, and the listener carries on) and clients.openWindow (no tab open).
  await pushPage.evaluate(() => window.scrollTo(0, 0));
  const worker = await until(() => pushCtx.serviceWorkers().find((w) => w.url() === `${HUB_ORIGIN}/sw.js`), 'the service worker (Playwright)', 5000);
  const tag = `bill-${FOLLOWED}`;
  const dispatched = await worker.evaluate(async (t) => {
    const [n] = await self.registration.getNotifications({ tag: t });
    if (!n) return false;
    self.dispatchEvent(new NotificationEvent('notificationclick', { notification: n }));
    return true;
  }, tag);
  assert(dispatched, 'no notification to click');
  await pushPage.waitForSelector(`#follow-list [data-bill="${FOLLOWED}"][data-opened]`, { timeout: 5000 });
  const r = await pushPage.evaluate((t) => navigator.serviceWorker.ready.then((reg) => reg.getNotifications({ tag: t })).then((ns) => ({
    left: ns.length, scrolled: window.scrollY, followed: window.sapha.state.followed,
  })), tag);
  assert(r.left === 0, 'the clicked notification was not closed');
  assert(r.followed.includes(FOLLOWED), `the bill is not followed: ${r.followed}`);
  const box = await pushPage.locator(`#follow-list [data-bill="${FOLLOWED}"]`).boundingBox();
  assert(box && box.y < 1050 && box.y + Math.min(box.height, 200) > 0, `the opened bill is not in view: ${JSON.stringify(box)}`);
  if (pushRun) {
    await pushPage.locator(`#follow-list [data-bill="${FOLLOWED}"]`).screenshot({ path: join(ARTIFACTS, 'dashboard-push.png') });
    log(`screenshot: ${join(ARTIFACTS, 'dashboard-push.png')}`);
  }
});

await check('Web Push: /?bill=<id> (the click target) opens that bill', async () => {
  const p3 = await pushCtx.newPage();
  try {
    await p3.goto(`${HUB_URL}/?bill=${AMENDMENT}&backlog=0`, { waitUntil: 'load', timeout: 20000 });
    await p3.waitForSelector(`#follow-list [data-bill="${AMENDMENT}"][data-opened] [data-testid="timeline"]`, { timeout: 5000 });
    // Opened from a link, not a click in the page: followed here, no notification asked for.
    const f = await p3.evaluate(() => JSON.parse(localStorage.getItem('sapha.follower') || 'null'));
    if (f) {
      const got = await getFollower(f);
      assert(!got.body.bills.includes(AMENDMENT), `opening /?bill= turned notifications on: ${got.body.bills}`);
    }
  } finally {
    await p3.close();
  }
  // The page the test goes on with learns of the new bill on its next load.
  await pushPage.reload({ waitUntil: 'load' });
  await pushPage.waitForSelector(`#follow-list [data-bill="${AMENDMENT}"]`, { timeout: 5000 });
});

if (pushRun && pushRun.follower) {
  await check('Web Push: later follows add the bill (PUT), unfollowing removes it (DELETE), the language follows the page (PATCH)', async () => {
    const f = pushRun.follower;
    // AMENDMENT is followed (from /?bill=) without notifications: its button turns them on.
    await pushPage.click(`#follow-list [data-push-on="${AMENDMENT}"]`);
    await pushPage.waitForSelector(`#follow-list [data-bill="${AMENDMENT}"] [data-push="on"]`, { timeout: 10000 });
    let got = await getFollower(f);
    assert(got.body.bills.includes(AMENDMENT) && got.body.bills.includes(FOLLOWED), `after PUT the follower has ${got.body.bills}`);
    assert((await follower()).id === f.id, 'a second follower was registered');
    await pushPage.click(`#follow-list [data-bill="${AMENDMENT}"] .unfollow`);
    await until(async () => !(await getFollower(f)).body.bills.includes(AMENDMENT), `${AMENDMENT} removed from the follower`, 5000);
    await pushPage.click('.lang button[data-lang="en"]');
    await until(async () => (await getFollower(f)).body.lang === 'en', "the follower's language to become en", 5000);
    await pushPage.waitForSelector(`#follow-list [data-bill="${FOLLOWED}"] [data-push="on"]`, { timeout: 3000 });
    assert((await pushPage.textContent(`#follow-list [data-bill="${FOLLOWED}"] [data-push]`)).includes('notifications on'), 'the note is not in English');
    // The hub forgets the follower (DELETE): the next follow registers a new one.
    const del = await fetch(`${HUB_URL}/v1/followers/${encodeURIComponent(f.id)}`, { method: 'DELETE', headers: { authorization: `Bearer ${f.secret}` } });
    assert(del.status === 204, `DELETE /v1/followers/${f.id} answered ${del.status}`);
    got = await getFollower(f);
    assert(got.status === 404 && got.body && got.body.code === 'unknown_follower', `after DELETE: ${got.status} ${JSON.stringify(got.body)}`);
    await pushPage.fill('#follow-input', AMENDMENT);
    await pushPage.click('#follow-form button');
    await pushPage.waitForSelector(`#follow-list [data-bill="${AMENDMENT}"] [data-push="on"]`, { timeout: 10000 });
    const f2 = await follower();
    assert(f2 && f2.id !== f.id, `no new follower after the hub forgot the old one: ${JSON.stringify(f2)}`);
    got = await getFollower(f2);
    assert(got.status === 200 && got.body.bills.includes(AMENDMENT) && got.body.lang === 'en', `the new follower: ${JSON.stringify(got.body)}`);
    await fetch(`${HUB_URL}/v1/followers/${encodeURIComponent(f2.id)}`, { method: 'DELETE', headers: { authorization: `Bearer ${f2.secret}` } });
  });
}
await pushCtx.close();

// ---- the demo, as a first visitor sees it ------------------------------------------------

await check('sapha demo: within seconds every bill, ภาษี found, a sitting in progress with its vote; no console error, no /v1/push/key', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 1050 }, deviceScaleFactor: 1, locale: 'en-GB', timezoneId: 'Europe/London' });
  const p = await ctx.newPage();
  const errors = [];
  const asked = [];
  p.on('pageerror', (e) => errors.push(e.message));
  p.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  p.on('request', (r) => asked.push(new URL(r.url()).pathname));
  try {
    await p.goto(`${DEMO_URL}/?lang=en`, { waitUntil: 'load', timeout: 20000 });
    await p.waitForSelector('#conn[data-state="live"]', { timeout: 15000 });
    // A sitting in progress, with its vote on the card.
    await p.waitForFunction(() => {
      const cur = document.getElementById('sitting-body').dataset.sitting;
      const card = document.querySelector('[data-testid="vote-card"]');
      return document.getElementById('sitting-h').dataset.tense === 'live' && card && cur && card.dataset.vote.startsWith(`${cur}/`);
    }, null, { timeout: 20000 });
    await p.fill('#bill-search', 'ภาษี');
    await p.waitForFunction(() => document.getElementById('browse-results').dataset.query === 'ภาษี' && document.querySelectorAll('#browse-results [data-result]').length > 0, null, { timeout: 5000 });
    const bills = (await (await fetch(`${DEMO_URL}/v1/bills?limit=1`)).json()).total;
    assert(bills === 202, `the demo's state has ${bills} bills, not all 202`);
    assert(!asked.includes('/v1/push/key'), 'a first visit asked for /v1/push/key (the demo has no notifier: a 503 on every load)');
    assert(errors.length === 0, `console errors on the demo page: ${errors.slice(0, 3).join(' | ')}`);
    await p.screenshot({ path: join(ARTIFACTS, 'dashboard-demo.png'), fullPage: true });
    log(`screenshot: ${join(ARTIFACTS, 'dashboard-demo.png')}`);
  } finally {
    await ctx.close();
  }
});

await check('no script errors on the page', async () => {
  assert(pageErrors.length === 0, pageErrors.slice(0, 5).join(' | '));
});

await browser.close();
const failed = results.filter((r) => !r.ok);
for (const f of failed) console.log(`failed: ${f.name}: ${f.error}`);
console.log(`${results.length - failed.length} passed, ${failed.length} failed`);
process.exit(failed.length ? 1 : 0);
