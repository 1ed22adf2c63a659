// The dashboard's service worker: it shows the Web Push notifications of the
// bills a reader follows, and opens the bill when one is clicked.
//
// The hub serves this file at /sw.js (scope: the whole origin). It caches
// nothing and does not touch fetches: the dashboard works the same with or
// without it. No build step, no imports.
//
// A push message is JSON (docs: the follow API's push payload):
//   {"v":1,"lang":"th"|"en","title":{"th","en"},"body":{"th","en"},"bill_id",
//    "to_stage","event_id","seq","correction","url":"/?bill=<id>","tag":"bill-<id>"}
// `lang` is the follower's language, chosen when the page registered it.

/** Shown when a message cannot be read: Chrome requires a notification for every push. */
const FALLBACK = {
  th: { title: 'Sapha · สภา', body: 'มีความเคลื่อนไหวของร่างกฎหมายที่คุณติดตาม' },
  en: { title: 'Sapha', body: 'A bill you follow has moved' },
};

// Take over open dashboards at once, so that a click can reach them.
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

/** One side of a bilingual `{th, en}` text, falling back to the other side. */
function pick(o, lang) {
  if (!o || typeof o !== 'object') return '';
  return (lang === 'en' ? o.en || o.th : o.th || o.en) || '';
}

/** A same-origin path only: a message must not send the reader elsewhere. */
function safeUrl(url) {
  try {
    const u = new URL(typeof url === 'string' ? url : '/', self.location.origin);
    return u.origin === self.location.origin ? u.pathname + u.search + u.hash : '/';
  } catch {
    return '/';
  }
}

/** What to show for a push message's data (a PushMessageData, or null). */
function notificationOf(data) {
  let m = null;
  try {
    m = data ? data.json() : null;
  } catch {
    m = null; // not JSON: fall through to the generic notification
  }
  if (!m || typeof m !== 'object' || m.v !== 1) {
    const lang = m && m.lang === 'en' ? 'en' : 'th';
    return { title: FALLBACK[lang].title, options: { body: FALLBACK[lang].body, lang, data: { url: '/' } } };
  }
  const lang = m.lang === 'en' ? 'en' : 'th';
  const billId = typeof m.bill_id === 'string' ? m.bill_id : '';
  return {
    title: pick(m.title, lang) || FALLBACK[lang].title,
    options: {
      body: pick(m.body, lang),
      // One notification per bill: a newer move replaces the older one, and still alerts.
      tag: typeof m.tag === 'string' && m.tag ? m.tag : `bill-${billId}`,
      renotify: true,
      lang,
      data: { url: safeUrl(m.url), bill_id: billId, event_id: m.event_id ?? null },
    },
  };
}

self.addEventListener('push', (event) => {
  const n = notificationOf(event.data);
  event.waitUntil(self.registration.showNotification(n.title, n.options));
});

/**
 * Opens a notification's target: an open dashboard tab is focused and told to
 * show the bill (a message, so the page keeps its connections; it also works
 * for a tab this worker does not control), else a new window opens at the URL.
 */
async function openTarget(data) {
  const url = safeUrl(data && data.url);
  const tabs = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  // A dashboard (`/`, `/index.html`), not any page of the hub (`/sapha.js` in a tab).
  const tab = tabs.find((c) => {
    const u = new URL(c.url);
    return u.origin === self.location.origin && (u.pathname === '/' || u.pathname === '/index.html');
  });
  if (!tab) return self.clients.openWindow(url);
  try {
    await tab.focus();
  } catch {
    // Focusing needs the click's user activation; the message still shows the bill.
  }
  tab.postMessage({ type: 'sapha.open', url, bill_id: (data && data.bill_id) || null });
  return tab;
}

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const done = openTarget(event.notification.data);
  try {
    event.waitUntil(done);
  } catch {
    // Only a trusted event may extend its lifetime; the browser test dispatches
    // an untrusted one to exercise this listener, and `done` runs anyway.
  }
});
