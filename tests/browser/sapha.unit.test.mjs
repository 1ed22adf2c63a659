// Unit tests of hub/web/sapha.js against a scripted fake WebSocket: resume with
// `since`, de-duplication, backoff, gaps, fatal errors. No hub, no browser.
// Run: node --test tests/browser/sapha.unit.test.mjs
import test from 'node:test';
import assert from 'node:assert/strict';
import { SaphaClient, State, billTopic, isValidId, resolveUrl } from '../../hub/web/sapha.js';

/** A fake WebSocket: the test plays the hub through `hub.*`. */
function fakeSocketClass() {
  const sockets = [];
  class FakeWebSocket {
    constructor(url, protocol) {
      this.url = url;
      this.protocol = protocol;
      this.readyState = 0;
      this.sent = [];
      sockets.push(this);
      queueMicrotask(() => {
        this.readyState = 1;
        this.onopen && this.onopen({});
      });
    }
    send(text) { this.sent.push(JSON.parse(text)); }
    close(code = 1000, reason = '') {
      if (this.readyState >= 2) return;
      this.readyState = 3;
      queueMicrotask(() => this.onclose && this.onclose({ code, reason, wasClean: true }));
    }
    // Hub side.
    frame(obj) { this.onmessage && this.onmessage({ data: JSON.stringify(obj) }); }
    drop(code = 1006) {
      this.readyState = 3;
      this.onclose && this.onclose({ code, reason: '', wasClean: false });
    }
  }
  return { FakeWebSocket, sockets };
}

const tick = () => new Promise((r) => setTimeout(r, 0));
async function until(pred, what, ms = 2000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
const welcome = (seq, first = 1) => ({ type: 'welcome', session: 's', seq, first_seq: first, format: 'json', limits: {} });
const ev = (seq, id, topic = 'bill.b-1.stage') => ({ type: 'event', topic, seq, event_id: id, event: { event_id: id, kind: 'bill.stage_changed' } });

function client(opts = {}) {
  const { FakeWebSocket, sockets } = fakeSocketClass();
  const c = new SaphaClient({ url: 'ws://127.0.0.1:1/v1/ws', WebSocket: FakeWebSocket, initialDelayMs: 5, maxDelayMs: 20, heartbeatMs: 0, ...opts });
  const got = [];
  c.addEventListener('event', (e) => got.push(e.detail));
  return { c, sockets, got };
}

test('ids and urls', () => {
  assert.ok(isValidId('b-2566-0123'));
  assert.ok(!isValidId('>'));
  assert.ok(!isValidId('B-1'));
  assert.ok(!isValidId('a'.repeat(65)));
  assert.equal(billTopic('b-1'), 'bill.b-1');
  assert.throws(() => billTopic('b.1'), /not a bill id/);
  assert.equal(resolveUrl('http://h:8/'), 'ws://h:8/v1/ws?batch=true');
  assert.equal(resolveUrl('wss://h/v1/ws?topics=x&token=t'), 'wss://h/v1/ws?token=t&batch=true');
});

test('subscribes after the welcome, delivers, de-duplicates and resumes with since', async () => {
  const { c, sockets, got } = client({ topics: ['bill'] });
  c.start();
  await until(() => sockets.length === 1 && sockets[0].readyState === 1, 'open');
  const s1 = sockets[0];
  s1.frame(welcome(10));
  assert.deepEqual(s1.sent[0], { op: 'subscribe', id: s1.sent[0].id, topics: ['bill'] });
  s1.frame({ type: 'ack', id: s1.sent[0].id, op: 'subscribe', topics: ['bill'], subscriptions: 1, seq: 10 });
  assert.equal(c.state, State.LIVE);
  assert.equal(c.lastSeq, 10);
  s1.frame({ type: 'batch', events: [ev(11, 'e1'), ev(12, 'e2')] }); // as two event frames
  s1.drop();
  assert.equal(c.state, State.RECONNECTING);
  await until(() => sockets.length === 2 && sockets[1].readyState === 1, 'reconnect');
  const s2 = sockets[1];
  s2.frame(welcome(14));
  assert.equal(s2.sent[0].since, 12, 'resumes from the last seq seen');
  s2.frame({ type: 'ack', id: s2.sent[0].id, op: 'subscribe', topics: ['bill'], subscriptions: 1, since: 12, recovered: true, first_seq: 1, seq: 14 });
  assert.equal(c.state, State.CATCHING_UP);
  s2.frame(ev(13, 'e2')); // the same event again (say, re-published): dropped
  s2.frame(ev(14, 'e3'));
  s2.frame({ type: 'live', id: null, seq: 14 });
  assert.equal(c.state, State.LIVE);
  assert.deepEqual(got.map((d) => d.eventId), ['e1', 'e2', 'e3']);
  assert.equal(c.stats.duplicates, 1);
  assert.equal(got[2].replayed, true);
  c.close();
  assert.equal(c.state, State.CLOSED);
});

test('a lost history is reported as a gap', async () => {
  const { c, sockets } = client({ topics: ['sitting'], since: 5 });
  const gaps = [];
  c.addEventListener('gap', (e) => gaps.push(e.detail));
  c.start();
  await until(() => sockets[0] && sockets[0].readyState === 1, 'open');
  sockets[0].frame(welcome(900, 800));
  assert.equal(sockets[0].sent[0].since, 5);
  sockets[0].frame({ type: 'ack', id: sockets[0].sent[0].id, op: 'subscribe', topics: ['sitting'], subscriptions: 1, since: 5, recovered: false, first_seq: 800, seq: 900 });
  assert.deepEqual(gaps, [{ since: 5, firstSeq: 800, headSeq: 900, reset: false }]);
  assert.equal(c.lastSeq, 799);
  c.close();
});

test('a position past the end of the stream is reported as a reset gap', async () => {
  const { c, sockets } = client({ topics: ['sitting'], since: 50 });
  const gaps = [];
  c.addEventListener('gap', (e) => gaps.push(e.detail));
  c.start();
  await until(() => sockets[0] && sockets[0].readyState === 1, 'open');
  sockets[0].frame(welcome(5, 1));
  sockets[0].frame({ type: 'ack', id: sockets[0].sent[0].id, op: 'subscribe', topics: ['sitting'], subscriptions: 1, since: 50, recovered: false, first_seq: 1, seq: 5 });
  assert.deepEqual(gaps, [{ since: 50, firstSeq: 1, headSeq: 5, reset: true }]);
  assert.equal(c.lastSeq, 0, 'the replay from the first event is taken, not dropped as old');
  c.close();
});

test('backlog asks for the latest N events on a first connect', async () => {
  const { c, sockets } = client({ topics: ['sitting'], backlog: 100 });
  c.start();
  await until(() => sockets[0] && sockets[0].readyState === 1, 'open');
  sockets[0].frame(welcome(1000));
  assert.equal(sockets[0].sent[0].since, 900);
  c.close();
  const b = client({ topics: ['sitting'], backlog: 100 });
  b.c.start();
  await until(() => b.sockets[0] && b.sockets[0].readyState === 1, 'open');
  b.sockets[0].frame(welcome(30));
  assert.equal(b.sockets[0].sent[0].since, 0, 'never before the stream');
  b.c.close();
});

test('backoff grows, is jittered and capped, and resets once live', async () => {
  const { c } = client({ initialDelayMs: 100, maxDelayMs: 1000, jitter: 0.5 });
  for (let attempt = 0; attempt < 8; attempt++) {
    c._attempt = attempt;
    const d = c._backoff(false);
    const nominal = Math.min(1000, 100 * 2 ** attempt);
    assert.ok(d <= nominal && d >= nominal / 2, `attempt ${attempt}: ${d}`);
  }
  c._attempt = 7;
  assert.ok(c._backoff(true) <= 100, 'going away comes back quickly');
});

test('a refused initial subscription is fatal; a refused later one only fails its promise', async () => {
  const { c, sockets } = client({ topics: ['bill'] });
  const errors = [];
  c.addEventListener('error', (e) => errors.push(e.detail));
  c.start();
  await until(() => sockets[0] && sockets[0].readyState === 1, 'open');
  const s = sockets[0];
  s.frame(welcome(1));
  s.frame({ type: 'ack', id: s.sent[0].id, op: 'subscribe', topics: ['bill'], subscriptions: 1, seq: 1 });
  const p = c.subscribe(['sitting.nope']);
  await tick();
  const req = s.sent[1];
  s.frame({ type: 'error', id: req.id, code: 'invalid_topic', message: 'unknown chamber' });
  await assert.rejects(p, (e) => e.code === 'invalid_topic');
  assert.deepEqual(c.topics, ['bill']);
  assert.equal(c.state, State.LIVE);
  c.close();

  const d = client({ topics: ['bill.x.nope'] });
  d.c.start();
  await until(() => d.sockets[0] && d.sockets[0].readyState === 1, 'open');
  d.sockets[0].frame(welcome(1));
  d.sockets[0].frame({ type: 'error', id: d.sockets[0].sent[0].id, code: 'invalid_topic', message: 'bad' });
  assert.equal(d.c.state, State.CLOSED);
  assert.ok(errors.length === 1);
});

test('a subscribe made while disconnected is sent with the next connection', async () => {
  const { c, sockets } = client({ topics: ['sitting'] });
  c.start();
  await until(() => sockets[0] && sockets[0].readyState === 1, 'open');
  sockets[0].drop();
  const p = c.subscribe('bill.b-7');
  await until(() => sockets[1] && sockets[1].readyState === 1, 'reconnect');
  sockets[1].frame(welcome(3));
  assert.deepEqual(sockets[1].sent[0].topics, ['sitting', 'bill.b-7']);
  sockets[1].frame({ type: 'ack', id: sockets[1].sent[0].id, op: 'subscribe', topics: ['sitting', 'bill.b-7'], subscriptions: 2, seq: 3 });
  const ack = await p;
  assert.equal(ack.subscriptions, 2);
  c.close();
});

test('the async iterator yields deliveries and ends on close', async () => {
  const { c, sockets } = client({ topics: ['bill'] });
  c.start();
  await until(() => sockets[0] && sockets[0].readyState === 1, 'open');
  const s = sockets[0];
  s.frame(welcome(0));
  s.frame({ type: 'ack', id: s.sent[0].id, op: 'subscribe', topics: ['bill'], subscriptions: 1, seq: 0 });
  const seen = [];
  const loop = (async () => {
    for await (const d of c) seen.push(d.seq);
  })();
  s.frame(ev(1, 'a'));
  s.frame(ev(2, 'b'));
  await until(() => seen.length === 2, 'two deliveries');
  c.close();
  await loop;
  assert.deepEqual(seen, [1, 2]);
});

test('a silent connection is dropped by the heartbeat', async () => {
  const { c, sockets } = client({ topics: ['bill'], heartbeatMs: 20, heartbeatTimeoutMs: 20 });
  c.start();
  await until(() => sockets[0] && sockets[0].readyState === 1, 'open');
  sockets[0].frame(welcome(0));
  sockets[0].frame({ type: 'ack', id: sockets[0].sent[0].id, op: 'subscribe', topics: ['bill'], subscriptions: 1, seq: 0 });
  await until(() => sockets[0].sent.some((m) => m.op === 'ping'), 'a ping');
  await until(() => sockets.length === 2, 'a reconnect after no pong');
  c.close();
});

test('a resume sends the epoch its position belongs to, and adopts the stream epoch', async () => {
  const { c, sockets } = client({ topics: ['sitting'], since: 5, epoch: 'old' });
  c.start();
  await until(() => sockets[0] && sockets[0].readyState === 1, 'open');
  sockets[0].frame({ ...welcome(9, 1), epoch: 'new' });
  assert.equal(sockets[0].sent[0].since, 5);
  assert.equal(sockets[0].sent[0].epoch, 'old');
  assert.equal(c.epoch, 'new');
  c.close();
});

test('snapshotThenSubscribe reads the bill, then subscribes from its seq', async () => {
  const { snapshotThenSubscribe, httpBase } = await import('../../hub/web/sapha.js');
  assert.equal(httpBase('ws://h:8080/v1/ws'), 'http://h:8080');
  assert.equal(httpBase('https://hub.example'), 'https://hub.example');
  const { FakeWebSocket, sockets } = fakeSocketClass();
  const asked = [];
  const fetch = async (url) => {
    asked.push(url);
    return { ok: true, json: async () => ({ seq: 41, bill: { bill_id: 'b-1', stage: 'HOUSE_R1' } }) };
  };
  const { bill, seq, client } = await snapshotThenSubscribe({ url: 'ws://h:1', billId: 'b-1', fetch, WebSocket: FakeWebSocket, heartbeatMs: 0 });
  assert.deepEqual(asked, ['http://h:1/v1/bills/b-1']);
  assert.equal(bill.stage, 'HOUSE_R1');
  assert.equal(seq, 41);
  await until(() => sockets.length === 1, 'a socket');
  sockets[0].frame({ type: 'welcome', session: 's', seq: 50, first_seq: 1, format: 'json', limits: {}, server: 't', epoch: 'e' });
  await until(() => sockets[0].sent.length > 0, 'a subscribe');
  assert.deepEqual(sockets[0].sent[0].topics, ['bill.b-1']);
  assert.equal(sockets[0].sent[0].since, 41);
  client.close();
  await assert.rejects(
    snapshotThenSubscribe({ url: 'ws://h:1', billId: '>', fetch }),
    (e) => e.code === 'invalid_id',
  );
  const notFound = async () => ({ ok: false, status: 404, json: async () => ({ code: 'not_found', message: 'no bill' }) });
  await assert.rejects(
    snapshotThenSubscribe({ url: 'ws://h:1', billId: 'b-2', fetch: notFound }),
    (e) => e.code === 'not_found' && e.status === 404,
  );
});
