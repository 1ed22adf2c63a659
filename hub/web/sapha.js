// sapha.js: the JavaScript client of Sapha's hub. One dependency-free ES module
// for browsers and apps (Node 22+ has a global WebSocket; pass one in otherwise).
//
// It behaves like the Rust client: it connects, subscribes to topic filters,
// delivers each event once (de-duplicated by event id, with a bounded memory),
// reconnects by itself with exponential backoff and jitter, and resumes from the
// last stream sequence it saw, so that a dropped connection loses nothing. When
// the hub no longer has the history to resume from, it says so (a `gap`).
//
// The protocol is the hub's JSON WebSocket protocol (docs/PROTOCOL.md); the
// guide for app developers is docs/JS_CLIENT.md.
//
//   import { connect } from '/sapha.js';
//   const client = connect({ topics: ['sitting', 'bill.*.stage'], onEvent: (ev, meta) => ... });

/** The version of this module. */
export const VERSION = '1.0.0';

/** Ids of bills and sittings: ASCII `[a-z0-9_-]`, 1 to 64 bytes. */
export const ID_PATTERN = /^[a-z0-9_-]{1,64}$/;

/** Connection states, in the order a healthy connection goes through them. */
export const State = Object.freeze({
  /** Created, `start()` not called yet. */
  IDLE: 'idle',
  /** Opening the socket and waiting for the hub's welcome and our subscription's ack. */
  CONNECTING: 'connecting',
  /** Subscribed with `since`: the hub is replaying what was missed. */
  CATCHING_UP: 'catching_up',
  /** Every new event is delivered as it happens. */
  LIVE: 'live',
  /** The connection dropped; waiting for the backoff delay before the next attempt. */
  RECONNECTING: 'reconnecting',
  /** `close()` was called, or a fatal error happened. Final. */
  CLOSED: 'closed',
});

/** Close codes the hub sends (docs/PROTOCOL.md). */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL: 1002,
  ABNORMAL: 1006,
  TOO_BIG: 1009,
  SLOW_CONSUMER: 4001,
  IDLE_TIMEOUT: 4002,
});

const DEFAULTS = Object.freeze({
  topics: [],
  since: undefined,
  backlog: 0,
  dedupeWindow: 4096,
  initialDelayMs: 500,
  maxDelayMs: 30000,
  backoffFactor: 2,
  jitter: 0.5,
  maxAttempts: Infinity,
  connectTimeoutMs: 10000,
  heartbeatMs: 25000,
  heartbeatTimeoutMs: 10000,
  requestTimeoutMs: 10000,
  iteratorBuffer: 10000,
  autoStart: true,
});

/** An error reported by the client or by the hub. `code` is stable; see docs/JS_CLIENT.md. */
export class SaphaError extends Error {
  constructor(code, message, extra = {}) {
    super(message);
    this.name = 'SaphaError';
    /** A stable machine-readable code: a hub error code or one of the client's own. */
    this.code = code;
    /** The id of the request this error answers, if any. */
    this.requestId = extra.requestId;
    /** True when the client gave up and closed (it will not reconnect). */
    this.fatal = Boolean(extra.fatal);
    if (extra.topic !== undefined) this.topic = extra.topic;
    /** The HTTP status, for an error of the state API. */
    if (extra.status !== undefined) this.status = extra.status;
  }
}

/** Whether `id` is a valid bill or sitting id. Check user input with it before building a topic. */
export function isValidId(id) {
  return typeof id === 'string' && ID_PATTERN.test(id);
}

/** The topic of every event of one bill (`bill.<id>`); throws a SaphaError for an invalid id. */
export function billTopic(id) {
  if (!isValidId(id)) {
    throw new SaphaError('invalid_id', `'${String(id).slice(0, 80)}' is not a bill id: use a-z, 0-9, '_' and '-', 1 to 64 characters`);
  }
  return `bill.${id}`;
}

/** The topic of a sitting's events; `category` is optional (`vote`, `floor`, ...). */
export function sittingTopic(chamber, id, category) {
  if (!['senate', 'house', 'joint', '*'].includes(chamber)) {
    throw new SaphaError('invalid_topic', `unknown chamber '${chamber}': expected senate, house, joint or *`);
  }
  if (id !== '*' && !isValidId(id)) throw new SaphaError('invalid_id', `'${id}' is not a sitting id`);
  return category ? `sitting.${chamber}.${id}.${category}` : `sitting.${chamber}.${id}`;
}

const TOKEN = /^(?:[a-z0-9_-]{1,64}|\*|>)$/;

/** A light local check of a topic filter; the hub checks the rest (and says why). */
function checkTopic(topic) {
  if (typeof topic !== 'string' || topic.length === 0 || topic.length > 256) {
    throw new SaphaError('invalid_topic', 'a topic filter is a non-empty string of at most 256 bytes', { topic });
  }
  const tokens = topic.split('.');
  tokens.forEach((t, i) => {
    if (!TOKEN.test(t)) throw new SaphaError('invalid_topic', `token '${t}' of '${topic}' is not an id, '*' or '>'`, { topic });
    if (t === '>' && i !== tokens.length - 1) throw new SaphaError('invalid_topic', `'>' must be the last token of '${topic}'`, { topic });
  });
  return topic;
}

/** The WebSocket URL: an explicit `ws(s)://` URL, an `http(s)://` base, or this page's origin. */
export function resolveUrl(url) {
  let base = url;
  if (!base) {
    if (typeof location === 'undefined') throw new SaphaError('bad_option', 'url is required outside a browser');
    base = location.origin;
  }
  const u = new URL(base, typeof location !== 'undefined' ? location.href : undefined);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new SaphaError('bad_option', `url must be ws(s):// or http(s)://, not ${u.protocol}`);
  if (u.pathname === '' || u.pathname === '/') u.pathname = '/v1/ws';
  // Topics and the resume point are sent in the subscribe request, never in the URL.
  u.searchParams.delete('topics');
  u.searchParams.delete('since');
  // This client reads `batch` frames (several events in one), so it asks for them.
  u.searchParams.set('batch', 'true');
  return u.toString();
}

/** Remembers the last `capacity` event ids, forgetting the oldest first. */
class RecentIds {
  constructor(capacity) {
    this.capacity = Math.max(1, capacity | 0);
    this.ids = new Set();
  }
  /** True if `id` was seen; otherwise remembers it and returns false. */
  seen(id) {
    if (this.ids.has(id)) return true;
    this.ids.add(id);
    if (this.ids.size > this.capacity) {
      // A Set iterates in insertion order: the first one is the oldest.
      this.ids.delete(this.ids.values().next().value);
    }
    return false;
  }
  get size() {
    return this.ids.size;
  }
}

function makeEvent(type, detail) {
  if (typeof CustomEvent === 'function') return new CustomEvent(type, { detail });
  const e = new Event(type);
  e.detail = detail;
  return e;
}

/**
 * A connection to a Sapha hub that survives network failures.
 *
 * Events: `event`, `state`, `welcome`, `ack`, `live`, `gap`, `error`, `close`
 * (each a CustomEvent; the payload is in `detail`). It is also an async iterable
 * of deliveries: `for await (const { event, seq, topic } of client) ...`.
 */
export class SaphaClient extends EventTarget {
  constructor(options = {}) {
    super();
    const o = { ...DEFAULTS, ...options };
    this.options = o;
    this.url = resolveUrl(o.url);
    this._WebSocket = o.WebSocket || (typeof WebSocket !== 'undefined' ? WebSocket : undefined);
    if (!this._WebSocket) throw new SaphaError('bad_option', 'no WebSocket implementation: pass options.WebSocket (for example the `ws` package)');
    /** The topic filters this client holds; kept across reconnects. */
    this._topics = new Set((o.topics || []).map(checkTopic));
    /** The last stream sequence delivered (or known to be passed); the resume point. */
    this.lastSeq = typeof o.since === 'number' ? o.since : undefined;
    /** The stream epoch `lastSeq` belongs to (from the hub's welcome; `epoch` option to resume a saved one). */
    this.epoch = typeof o.epoch === 'string' && o.epoch ? o.epoch : undefined;
    this._firstSince = o.since;
    this.state = State.IDLE;
    /** The hub session id and limits from the latest welcome. */
    this.session = undefined;
    this.limits = undefined;
    /** Counters, for a status line or debugging. */
    this.stats = { delivered: 0, duplicates: 0, connects: 0, reconnects: 0, gaps: 0, errors: 0 };
    this._recent = new RecentIds(o.dedupeWindow);
    this._attempt = 0;
    this._ws = null;
    this._gen = 0;
    this._nextId = 1;
    this._pending = new Map();
    this._awaitingResubscribe = [];
    this._initialId = null;
    this._timers = new Set();
    this._heartbeat = null;
    this._lastFrameAt = 0;
    this._iterators = new Set();
    this._onOnline = () => {
      if (this.state === State.RECONNECTING) this._open();
    };
    for (const [name, key] of [['event', 'onEvent'], ['state', 'onState'], ['gap', 'onGap'], ['error', 'onError'], ['live', 'onLive'], ['welcome', 'onWelcome'], ['close', 'onClose']]) {
      const fn = o[key];
      if (typeof fn !== 'function') continue;
      this.addEventListener(name, (e) => {
        const d = e.detail;
        if (name === 'event') fn(d.event, d);
        else if (name === 'state') fn(d.state, d);
        else fn(d);
      });
    }
  }

  /** The topic filters currently held. */
  get topics() {
    return [...this._topics];
  }

  /** Whether events are being delivered live right now. */
  get connected() {
    return this.state === State.LIVE;
  }

  /** Opens the connection (`connect()` does this for you). Returns `this`. */
  start() {
    if (this.state !== State.IDLE) return this;
    if (typeof addEventListener === 'function' && typeof window !== 'undefined') {
      window.addEventListener('online', this._onOnline);
    }
    this._open();
    return this;
  }

  /** Closes the connection for good; pending requests fail with `closed`. */
  close() {
    if (this.state === State.CLOSED) return;
    this._teardown(CloseCode.NORMAL, 'client closed');
    this._failPending(new SaphaError('closed', 'the client was closed'));
    for (const it of this._iterators) it.end();
    if (typeof window !== 'undefined' && typeof window.removeEventListener === 'function') {
      window.removeEventListener('online', this._onOnline);
    }
    this._setState(State.CLOSED, { code: CloseCode.NORMAL, reason: 'client closed', byClient: true });
    this._emit('close', { code: CloseCode.NORMAL, reason: 'client closed', willReconnect: false });
  }

  /** Drops the current socket and reconnects at once, resuming from `lastSeq`. */
  reconnect() {
    if (this.state === State.CLOSED || this.state === State.IDLE) return;
    this._teardown(CloseCode.NORMAL, 'client reconnecting');
    this._attempt = 0;
    this._afterDrop({ code: CloseCode.NORMAL, reason: 'reconnect requested', wasClean: true }, 0);
  }

  /**
   * Adds topic filters. Resolves with the hub's ack once they are active (after
   * the next reconnect if the client is not connected now); rejects with a
   * SaphaError (code `invalid_topic`, `too_many_subscriptions`, ...) and drops them.
   */
  subscribe(topics) {
    const list = (Array.isArray(topics) ? topics : [topics]).map(checkTopic);
    const fresh = list.filter((t) => !this._topics.has(t));
    if (fresh.length === 0) return Promise.resolve({ op: 'subscribe', topics: list, subscriptions: this._topics.size });
    fresh.forEach((t) => this._topics.add(t));
    if (this.state === State.CLOSED) return Promise.reject(new SaphaError('closed', 'the client was closed'));
    const live = this.state === State.LIVE || this.state === State.CATCHING_UP;
    if (!live || !this._ws) {
      // The next connection subscribes to every held topic at once.
      return new Promise((resolve, reject) => this._awaitingResubscribe.push({ resolve, reject, topics: fresh }));
    }
    return this._request({ op: 'subscribe', topics: fresh }, { topics: fresh }).catch((err) => {
      if (err.code !== 'disconnected') fresh.forEach((t) => this._topics.delete(t));
      throw err;
    });
  }

  /** Removes topic filters (ones not held are ignored). Resolves with the ack. */
  unsubscribe(topics) {
    const list = (Array.isArray(topics) ? topics : [topics]).map(checkTopic);
    list.forEach((t) => this._topics.delete(t));
    if (this.state !== State.LIVE && this.state !== State.CATCHING_UP) {
      return Promise.resolve({ op: 'unsubscribe', topics: list, subscriptions: this._topics.size });
    }
    return this._request({ op: 'unsubscribe', topics: list }).catch((err) => {
      // The next connection will not hold them anyway.
      if (err.code === 'disconnected') return { op: 'unsubscribe', topics: list, subscriptions: this._topics.size };
      throw err;
    });
  }

  /** Sends an application-level ping; resolves with the round-trip time in ms and the hub's seq. */
  async ping() {
    const t0 = Date.now();
    const ack = await this._request({ op: 'ping' });
    return { rttMs: Date.now() - t0, seq: ack.seq };
  }

  /** An async iterator over deliveries (`{event, seq, topic, eventId, replayed}`). */
  [Symbol.asyncIterator]() {
    return this.deliveries();
  }

  /**
   * An async iterator over deliveries, with its own bounded buffer. If the loop
   * falls more than `buffer` deliveries behind, the iterator throws a SaphaError
   * `iterator_overflow` (its `lastSeq` says where to resume) instead of losing events quietly.
   */
  deliveries({ buffer = this.options.iteratorBuffer } = {}) {
    const queue = [];
    let wake = null;
    let done = false;
    let failure = null;
    let lastTaken = this.lastSeq;
    const self = this;
    const it = {
      push(d) {
        if (done) return;
        if (queue.length >= buffer) {
          failure = new SaphaError('iterator_overflow', `the loop fell ${buffer} deliveries behind; resume from lastSeq ${lastTaken}`);
          failure.lastSeq = lastTaken;
          queue.length = 0;
          it.end();
          return;
        }
        queue.push(d);
        if (wake) { const w = wake; wake = null; w(); }
      },
      end() {
        done = true;
        self._iterators.delete(it);
        if (wake) { const w = wake; wake = null; w(); }
      },
    };
    this._iterators.add(it);
    return {
      async next() {
        for (;;) {
          if (queue.length > 0) {
            const value = queue.shift();
            lastTaken = value.seq;
            return { value, done: false };
          }
          if (failure) { const f = failure; failure = null; throw f; }
          if (done) return { value: undefined, done: true };
          await new Promise((r) => { wake = r; });
        }
      },
      async return() {
        it.end();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  // ---- internals ----------------------------------------------------------

  _emit(type, detail) {
    this.dispatchEvent(makeEvent(type, detail));
  }

  _setState(state, info = {}) {
    if (this.state === state) return;
    const previous = this.state;
    this.state = state;
    this._emit('state', { state, previous, ...info });
  }

  _later(ms, fn) {
    const t = setTimeout(() => { this._timers.delete(t); fn(); }, ms);
    this._timers.add(t);
    return t;
  }

  _clearTimers() {
    for (const t of this._timers) clearTimeout(t);
    this._timers.clear();
    if (this._heartbeat) { clearInterval(this._heartbeat); this._heartbeat = null; }
  }

  _open() {
    this._clearTimers();
    const gen = ++this._gen;
    this._setState(State.CONNECTING, { attempt: this._attempt });
    let ws;
    try {
      ws = new this._WebSocket(this.url, 'sapha.v1.json');
    } catch (e) {
      this._afterDrop({ code: CloseCode.ABNORMAL, reason: `cannot open: ${e && e.message}`, wasClean: false });
      return;
    }
    this._ws = ws;
    this._welcomed = false;
    this._initialId = null;
    this.stats.connects += 1;
    // The welcome and the subscription's ack must come within connectTimeoutMs.
    this._later(this.options.connectTimeoutMs, () => {
      if (gen === this._gen && this.state === State.CONNECTING) {
        this._drop(gen, { code: CloseCode.ABNORMAL, reason: 'timed out waiting for the hub', wasClean: false });
      }
    });
    ws.onmessage = (m) => {
      if (gen !== this._gen) return;
      this._lastFrameAt = Date.now();
      if (typeof m.data !== 'string') return; // JSON protocol only
      let frame;
      try {
        frame = JSON.parse(m.data);
      } catch {
        this._error(new SaphaError('bad_frame', 'the hub sent a frame that is not json'));
        return;
      }
      this._onFrame(gen, frame);
    };
    ws.onclose = (e) => {
      if (gen !== this._gen) return;
      this._drop(gen, { code: e.code || CloseCode.ABNORMAL, reason: e.reason || '', wasClean: Boolean(e.wasClean) });
    };
    ws.onerror = () => {
      // A close event always follows; it carries the code.
    };
  }

  /** The socket `gen` is gone: clean up and schedule the next attempt. */
  _drop(gen, info) {
    if (gen !== this._gen || this.state === State.CLOSED) return;
    this._teardown(CloseCode.NORMAL, 'dropping');
    this._afterDrop(info);
  }

  _teardown(code, reason) {
    this._gen += 1;
    this._clearTimers();
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        if (ws.readyState === 0 || ws.readyState === 1) ws.close(code, reason);
      } catch { /* already closing */ }
    }
    // Requests in flight die with their socket; subscriptions are redone on reconnect.
    for (const [id, p] of this._pending) {
      this._pending.delete(id);
      if (p.topics) this._awaitingResubscribe.push(p);
      else p.reject(new SaphaError('disconnected', 'the connection dropped before the hub answered', { requestId: id }));
    }
  }

  _afterDrop(info, forcedDelay) {
    if (this.state === State.CLOSED) return;
    const willReconnect = this._attempt < this.options.maxAttempts;
    this._emit('close', { ...info, willReconnect });
    if (!willReconnect) {
      const err = new SaphaError('gave_up', `no connection after ${this._attempt} attempts`, { fatal: true });
      this._error(err);
      this._failPending(err);
      for (const it of this._iterators) it.end();
      this._setState(State.CLOSED, info);
      return;
    }
    // "Going away" is a hub restarting: come back quickly (still jittered, so
    // that thousands of clients do not all return in the same millisecond).
    const delay = forcedDelay !== undefined ? forcedDelay : this._backoff(info.code === CloseCode.GOING_AWAY);
    this._attempt += 1;
    this.stats.reconnects += 1;
    this._setState(State.RECONNECTING, { ...info, attempt: this._attempt, delayMs: delay });
    this._later(delay, () => this._open());
  }

  /** Exponential backoff with jitter: a random delay in [(1 - jitter) * d, d]. */
  _backoff(quick) {
    const o = this.options;
    const exp = quick ? 0 : this._attempt;
    const d = Math.min(o.maxDelayMs, o.initialDelayMs * Math.pow(o.backoffFactor, exp));
    const j = Math.min(1, Math.max(0, o.jitter));
    return Math.round(d * (1 - j * Math.random()));
  }

  _send(obj) {
    if (!this._ws || this._ws.readyState !== 1) return false;
    this._ws.send(JSON.stringify(obj));
    return true;
  }

  _request(body, extra = {}) {
    return new Promise((resolve, reject) => {
      const id = `r${this._nextId++}`;
      const entry = { resolve, reject, ...extra };
      if (!this._send({ ...body, id })) {
        if (extra.topics) this._awaitingResubscribe.push(entry);
        else reject(new SaphaError('disconnected', 'not connected'));
        return;
      }
      this._pending.set(id, entry);
      const gen = this._gen;
      this._later(this.options.requestTimeoutMs, () => {
        if (!this._pending.has(id)) return;
        this._pending.delete(id);
        reject(new SaphaError('timeout', `the hub did not answer ${body.op} within ${this.options.requestTimeoutMs} ms`, { requestId: id }));
        // A hub that stops answering is as good as gone.
        if (gen === this._gen) this._drop(gen, { code: CloseCode.ABNORMAL, reason: 'request timed out', wasClean: false });
      });
    });
  }

  _failPending(err) {
    for (const [, p] of this._pending) p.reject(err);
    this._pending.clear();
    for (const p of this._awaitingResubscribe) p.reject(err);
    this._awaitingResubscribe = [];
  }

  _error(err) {
    this.stats.errors += 1;
    this._emit('error', err);
  }

  _onFrame(gen, f) {
    switch (f.type) {
      case 'event':
        return this._onEvent(f);
      case 'batch':
        for (const e of f.events || []) this._onEvent(e);
        return undefined;
      case 'welcome':
        return this._onWelcome(gen, f);
      case 'ack':
        return this._onAck(f);
      case 'live':
        return this._onLive(f);
      case 'error':
        return this._onError(gen, f);
      default:
        return undefined; // newer hubs may add frames; ignore them
    }
  }

  _onWelcome(gen, f) {
    this.session = f.session;
    this.limits = f.limits;
    this._welcomed = true;
    this._emit('welcome', f);
    // Where to start: the resume point if we have one; else the `since` option;
    // else `backlog` events back from the head; else live only.
    let since = this.lastSeq;
    if (since === undefined && this.options.backlog > 0 && typeof f.seq === 'number') {
      since = Math.max(Math.max(0, (f.first_seq || 1) - 1), f.seq - this.options.backlog);
    }
    this._startHeartbeat(gen);
    if (this._topics.size === 0) {
      this._becomeLive(f.seq);
      this._resolveResubscribes({ op: 'subscribe', topics: [], subscriptions: 0, seq: f.seq });
      return;
    }
    const id = `r${this._nextId++}`;
    this._initialId = id;
    this._initialSince = since;
    const req = { op: 'subscribe', id, topics: [...this._topics] };
    if (since !== undefined) {
      req.since = since;
      // The epoch the position belongs to, so that a recreated stream is told apart.
      if (this.epoch) req.epoch = this.epoch;
    }
    // From here on the position is one of this stream.
    if (f.epoch) this.epoch = f.epoch;
    this._send(req);
  }

  _onAck(f) {
    this._emit('ack', f);
    if (f.op === 'subscribe' && f.id === this._initialId && this._initialId !== null) {
      this._initialId = null;
      if (typeof f.since === 'number') {
        if (f.recovered === false) {
          // The hub no longer holds the events after `since` (retention), or
          // the stream was recreated: some were lost. Tell the app.
          this.stats.gaps += 1;
          // `reset`: the stream does not reach `since` at all (recreated or
          // restored with fewer events); the replay starts again at firstSeq.
          const gap = { since: f.since, firstSeq: f.first_seq, headSeq: f.seq,
                        reset: (f.first_seq || 1) <= f.since };
          this.lastSeq = Math.max(0, (f.first_seq || 1) - 1);
          this._emit('gap', gap);
        }
        this._setState(State.CATCHING_UP, { since: f.since, recovered: f.recovered !== false });
      } else {
        this._becomeLive(f.seq);
      }
      this._resolveResubscribes(f);
      return;
    }
    const p = this._pending.get(f.id);
    if (!p) return;
    this._pending.delete(f.id);
    // A subscribe acked while live: every matching event up to f.seq has been sent.
    if (f.op === 'subscribe' && this.state === State.LIVE) this._advance(f.seq);
    p.resolve(f);
  }

  _resolveResubscribes(ack) {
    const waiting = this._awaitingResubscribe;
    this._awaitingResubscribe = [];
    for (const p of waiting) p.resolve(ack);
  }

  _onLive(f) {
    this._becomeLive(f.seq);
    this._emit('live', { seq: f.seq });
  }

  _becomeLive(seq) {
    this._advance(seq);
    this._attempt = 0;
    this._setState(State.LIVE, { seq });
  }

  _advance(seq) {
    if (typeof seq === 'number' && (this.lastSeq === undefined || seq > this.lastSeq)) this.lastSeq = seq;
  }

  _onError(gen, f) {
    const err = new SaphaError(f.code || 'error', f.message || 'the hub reported an error', { requestId: f.id, topic: f.topic });
    if (f.id !== null && f.id !== undefined && f.id === this._initialId) {
      // The topics themselves are refused: reconnecting would not help.
      err.fatal = true;
      this._initialId = null;
      this._error(err);
      this._teardown(CloseCode.NORMAL, 'subscription refused');
      this._failPending(err);
      for (const it of this._iterators) it.end();
      this._setState(State.CLOSED, { code: CloseCode.NORMAL, reason: err.message });
      this._emit('close', { code: CloseCode.NORMAL, reason: err.message, willReconnect: false });
      return;
    }
    const p = f.id ? this._pending.get(f.id) : undefined;
    if (p) {
      this._pending.delete(f.id);
      p.reject(err);
    }
    this._error(err);
  }

  _onEvent(f) {
    const replayed = this.state !== State.LIVE;
    const eventId = f.event_id || (f.event && f.event.event_id);
    this._advance(f.seq);
    if (eventId && this._recent.seen(eventId)) {
      this.stats.duplicates += 1;
      return;
    }
    this.stats.delivered += 1;
    const d = { event: f.event, seq: f.seq, topic: f.topic, secondaryTopic: f.secondary_topic, eventId, replayed };
    this._emit('event', d);
    for (const it of this._iterators) it.push(d);
  }

  _startHeartbeat(gen) {
    const every = this.options.heartbeatMs;
    if (!(every > 0)) return;
    if (this._heartbeat) clearInterval(this._heartbeat);
    // Browsers answer the hub's WebSocket pings themselves but cannot see them,
    // so a silent half-open connection is found with our own ping: if nothing at
    // all arrives within heartbeatTimeoutMs of it, the connection is dropped.
    this._heartbeat = setInterval(() => {
      if (gen !== this._gen) return;
      const sentAt = Date.now();
      this._send({ op: 'ping', id: `hb${this._nextId++}` });
      this._later(this.options.heartbeatTimeoutMs, () => {
        if (gen === this._gen && this._lastFrameAt < sentAt) {
          this._drop(gen, { code: CloseCode.ABNORMAL, reason: 'no answer to ping', wasClean: false });
        }
      });
    }, every);
  }
}

/**
 * Creates a client and starts it. Options (all optional but `url` outside a browser):
 * url, topics, since, backlog, onEvent, onState, onGap, onError, onLive, onWelcome,
 * onClose, dedupeWindow, initialDelayMs, maxDelayMs, backoffFactor, jitter,
 * maxAttempts, connectTimeoutMs, heartbeatMs, heartbeatTimeoutMs, requestTimeoutMs,
 * iteratorBuffer, WebSocket. See docs/JS_CLIENT.md.
 */
export function connect(options = {}) {
  const client = new SaphaClient(options);
  if (options.autoStart !== false) client.start();
  return client;
}

/**
 * Reads the stored history of some topics: connects with `since` (0 = from the
 * oldest event the hub still has), collects every matching event up to the
 * present, then closes. Resolves with `{events, complete}`; `complete` is false
 * when the hub no longer had all of it.
 */
export function history({ url, topics, since = 0, timeoutMs = 15000, WebSocket: ws } = {}) {
  return new Promise((resolve, reject) => {
    const events = [];
    let complete = true;
    const client = new SaphaClient({ url, topics, since, WebSocket: ws, maxAttempts: 3, heartbeatMs: 0 });
    const timer = setTimeout(() => {
      client.close();
      reject(new SaphaError('timeout', `history of ${topics} took longer than ${timeoutMs} ms`));
    }, timeoutMs);
    client.addEventListener('event', (e) => events.push(e.detail.event));
    client.addEventListener('gap', () => { complete = false; });
    client.addEventListener('state', (e) => {
      if (e.detail.state === State.LIVE) {
        clearTimeout(timer);
        const lastSeq = client.lastSeq;
        resolve({ events, complete, lastSeq });
        client.close();
      } else if (e.detail.state === State.CLOSED && !e.detail.byClient) {
        clearTimeout(timer);
        reject(new SaphaError('closed', e.detail.reason || 'the connection closed'));
      }
    });
    client.start();
  });
}

/** The HTTP base of a hub (`http(s)://host:port`), from the same `url` option as the client. */
export function httpBase(url) {
  const u = new URL(resolveUrl(url));
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  return u.origin;
}

/**
 * Snapshot, then subscribe (docs/STATE.md): reads the bill from the hub's state
 * API (`GET /v1/bills/{id}`), then starts a client on `bill.<id>` with `since`
 * = the answer's `seq`, so every change after the snapshot arrives once and
 * none before it twice. Resolves with `{bill, seq, client}`; the other options
 * are the client's. `token` is sent as a Bearer token.
 */
export async function snapshotThenSubscribe({ url, billId, fetch: get = globalThis.fetch, ...options } = {}) {
  const topic = billTopic(billId);
  const headers = options.token ? { authorization: `Bearer ${options.token}` } : {};
  const r = await get(`${httpBase(url)}/v1/bills/${billId}`, { headers });
  if (!r.ok) {
    let body = {};
    try { body = await r.json(); } catch { /* not JSON */ }
    throw new SaphaError(body.code || 'state_error', body.message || `the state API answered ${r.status}`, { status: r.status });
  }
  const { seq, bill } = await r.json();
  const client = connect({ ...options, url, topics: [topic], since: seq });
  return { bill, seq, client };
}
