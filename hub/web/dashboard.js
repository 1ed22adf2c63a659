// The live dashboard: the sitting in progress, the vote being counted, the bills
// that moved on the latest day and the bills the reader follows, fed by sapha.js.
//
// Each panel is dated by its own events: the sitting panel by its sitting's, the
// bills panel by the day of the newest bill move. There is no page-wide "today"
// taken from the newest event of any kind (a replay can mix years); the header
// shows the calendar date.
// No build step and no dependencies: the hub serves this file as it is.
//
// What is true now comes from the hub's state API (docs/STATE.md): the sitting in
// progress on opening mid-sitting, the bill browser (search, bills at a stage),
// the list of sittings, and each followed bill's timeline. A followed bill is
// read first (GET /v1/bills/{id}, at stream position `seq`), then followed live
// from that position (`bill.<id>` with `since=seq`): no gap, no duplicate.
//
// Following a bill also turns on Web Push notifications for it, when the browser
// can show them and the hub has a notifier: the page registers the service
// worker (/sw.js), subscribes with the hub's VAPID key and registers the reader
// with the hub's follow API (docs: /v1/push/key, /v1/followers). Following works
// the same without notifications; each followed bill says which it is, and why.
//
// URL parameters: ?lang=th|en, ?hub=ws://host:port/v1/ws (another hub),
// ?backlog=N (stream events to read on load; default 3000), ?token=... (auth),
// ?bill=<id> (open that bill: the target of a notification).

import { connect, isValidId, State } from './sapha.js';

const params = new URLSearchParams(location.search);
const HUB_URL = params.get('hub') || undefined;
const BACKLOG = Number.isFinite(Number(params.get('backlog'))) && params.get('backlog') !== null ? Number(params.get('backlog')) : 3000;
/** Every sitting event, and every bill's stage changes (followed bills add `bill.<id>`). */
const TOPICS = ['sitting', 'bill.*.stage'];
const TOKEN = params.get('token') || null;
/** The state API lives on the hub that serves the stream: same origin unless ?hub= says otherwise. */
const API_BASE = (() => {
  if (!HUB_URL) return '';
  try {
    const u = new URL(HUB_URL, location.href);
    return `${u.protocol === 'wss:' ? 'https:' : u.protocol === 'ws:' ? 'http:' : u.protocol}//${u.host}`;
  } catch {
    return '';
  }
})();
/** The stage lists of the bill browser. */
const PRESETS = {
  committee: 'HOUSE_COMMITTEE,SENATE_COMMITTEE,PARLIAMENT_COMMITTEE,JOINT_COMMITTEE',
  assent: 'PRESENTED_FOR_ASSENT',
};
const SEARCH_DEBOUNCE_MS = 250;
const BROWSE_LIMIT = 20;
const SITTINGS_LIMIT = 12;
const FOLLOW_KEY = 'sapha.followed';
const LANG_KEY = 'sapha.lang';
/** The follower the hub knows this browser as: `{id, secret, endpoint, base}`. */
const FOLLOWER_KEY = 'sapha.follower';
const MAX_FOLLOWED = 20;
const FEED_LEN = 40;
const BILLS_LIST_MAX = 12;

// ---- words --------------------------------------------------------------------

const UI = {
  th: {
    app_title: 'ถ่ายทอดสดจากรัฐสภา',
    app_sub: 'การประชุม การลงมติ และความคืบหน้าของร่างกฎหมาย แบบเรียลไทม์',
    today: 'วันนี้',
    tz: 'เวลากรุงเทพฯ · พุทธศักราช',
    sitting_date: 'วันที่ประชุม {d}',
    sitting_updated: 'ยังไม่เปิดประชุม · ข้อมูลล่าสุดเมื่อ {d}',
    sitting_h: 'การประชุมขณะนี้',
    sitting_h_closed: 'การประชุมครั้งล่าสุด',
    sitting_h_next: 'การประชุมครั้งถัดไป',
    vote_h: 'การลงมติ',
    follow_h: 'ติดตามร่างกฎหมาย',
    follow_label: 'รหัสร่างกฎหมาย',
    follow_btn: 'ติดตาม',
    follow_help: 'ใส่รหัสร่าง เช่น b-2566-0123 (a–z, 0–9, - และ _ ไม่เกิน 64 ตัว)',
    bad_id: 'รหัส “{id}” ไม่ถูกต้อง: ใช้ได้เฉพาะ a–z, 0–9, - และ _ ยาว 1–64 ตัว เช่น b-2566-0123',
    too_many: 'ติดตามได้ไม่เกิน {n} ร่าง',
    bills_h: 'ร่างกฎหมายที่มีความคืบหน้า',
    bills_h_on: 'ร่างกฎหมายที่มีความคืบหน้าเมื่อ {d}',
    feed_h: 'ความเคลื่อนไหวล่าสุด',
    foot: 'ข้อมูลจากระบบ Sapha · เวลาเป็นเวลากรุงเทพฯ (UTC+7) · ปีเป็นพุทธศักราช',
    no_sitting: 'ยังไม่มีการประชุม — รอข้อมูลจากรัฐสภา',
    agenda: 'ระเบียบวาระ',
    floor: 'ผู้อภิปราย',
    chair: 'ประธานในที่ประชุม',
    quorum: 'องค์ประชุม',
    motion: 'ญัตติ',
    opened_at: 'เปิดประชุม {t}',
    no_item: 'ยังไม่เข้าสู่ระเบียบวาระ',
    nobody: 'ไม่มีผู้อภิปรายขณะนี้',
    section: 'กำลังพิจารณามาตรา {s}',
    item_ended: 'จบวาระนี้แล้ว ({d})',
    quorum_line: 'แสดงตน {p} คน · ต้องมีอย่างน้อย {r} คน',
    in_office: 'จากสมาชิกเท่าที่มีอยู่ {n} คน',
    quorum_at: 'ตรวจนับเมื่อ {t} น.',
    vote_at: 'ลงมติ {t} น.',
    vote_since: 'เปิดลงมติ {t} น.',
    quorum_met: 'ครบองค์ประชุม',
    quorum_not_met: 'ไม่ครบองค์ประชุม',
    quorum_unknown: 'ยังไม่ได้ตรวจสอบองค์ประชุม',
    in_camera: 'ประชุมลับ — ไม่มีการเผยแพร่เนื้อหาการประชุมส่วนนี้',
    no_vote: 'ยังไม่มีการลงมติ',
    no_vote_sitting: 'ยังไม่มีการลงมติในการประชุมนี้',
    counting: 'กำลังนับคะแนน…',
    counted: 'นับคะแนนแล้ว',
    total_cast: 'รวม {n} เสียง',
    by_group: 'แยกตามสภา',
    method: 'วิธีลงมติ: {m}',
    requirement: 'เกณฑ์: {r}',
    threshold: 'ตรวจเกณฑ์',
    threshold_met: 'ผ่านเกณฑ์',
    threshold_failed: 'ไม่ผ่านเกณฑ์',
    threshold_open: 'ตรวจไม่ได้ (ไม่มีคะแนนแยกกลุ่ม)',
    part_whole: 'ทั้งที่ประชุม',
    earlier_votes: 'การลงมติก่อนหน้า',
    this_sitting: 'การประชุมนี้',
    bill_ref: 'ร่าง {id}',
    more: 'และอีก {n} ร่าง',
    waiting_bill: 'รอข้อมูลของร่าง {id}…',
    loading_bill: 'กำลังโหลดประวัติของร่าง {id}…',
    stage_of: 'ขั้นที่ {i} จาก {n}',
    unfollow: 'เลิกติดตาม',
    feed_empty: 'รอเหตุการณ์…',
    replay: 'กำลังเล่นข้อมูลย้อนหลัง: แต่ละส่วนของหน้านี้ระบุวันที่ตามเหตุการณ์ของส่วนนั้นเอง ไม่ใช่วันนี้ ({d})',
    gap: 'ข้อมูลบางส่วนหายไป: เซิร์ฟเวอร์ไม่มีประวัติย้อนไปถึงจุดที่หน้านี้ได้รับล่าสุด (เริ่มใหม่จากลำดับที่ {s})',
    conn_idle: 'ยังไม่เชื่อมต่อ',
    conn_connecting: 'กำลังเชื่อมต่อ…',
    conn_catching_up: 'กำลังตามข้อมูลที่พลาด…',
    conn_live: 'สด',
    conn_live_no_state: 'สด · แต่เรียกข้อมูลสถานะจากเซิร์ฟเวอร์ไม่ได้',
    state_down: 'เรียกข้อมูลสถานะ ({url}) ไม่ได้: การค้นหา รายการการประชุม และประวัติของร่างที่ติดตามจะไม่แสดง ({e})',
    conn_reconnecting: 'หลุดการเชื่อมต่อ · ลองใหม่ใน {s} วินาที',
    conn_closed: 'ออฟไลน์',
    conn_meta: '{n} เหตุการณ์',
    moved: 'เปลี่ยนขั้น',
    passed: 'ผ่าน',
    failed: 'ไม่ผ่าน',
    browser_h: 'ค้นหาร่างกฎหมาย',
    search_label: 'ค้นหาจากชื่อร่างภาษาไทยหรือภาษาอังกฤษ',
    search_placeholder: 'ค้นหาจากชื่อร่าง เช่น สาธารณสุข หรือ มาตรา 83',
    preset_committee: 'อยู่ในชั้นกรรมาธิการ',
    preset_assent: 'รอทรงลงพระปรมาภิไธย',
    searching: 'กำลังค้นหา…',
    found: 'พบ {n} ร่าง',
    found_some: 'พบ {n} ร่าง แสดง {k} ร่างแรก',
    alike: 'ชื่อเดียวกับอีก {n} ร่างในรายการนี้: ร่างนี้คือ {id}',
    more_results: 'แสดงเพิ่มอีก {k} ร่าง (เหลือ {n})',
    found_none: 'ไม่พบร่างที่ตรงกับ “{q}”',
    list_none: 'ไม่มีร่างในรายการนี้ขณะนี้',
    browse_error: 'ค้นหาไม่ได้: {e}',
    follow_one: 'ติดตาม',
    following: 'ติดตามอยู่',
    since_d: 'ตั้งแต่ {d}',
    timeline: 'ความเป็นมา',
    decided_by: 'ตามมติ {r}',
    deemed: 'ถือว่าให้ความเห็นชอบ',
    deadline: 'กำหนด {d}',
    not_found_bill: 'ยังไม่มีร่าง {id} ในระบบ — จะแสดงเมื่อมีความเคลื่อนไหว',
    sittings_h: 'การประชุม',
    sittings_none: 'ยังไม่มีการประชุม',
    sitting_no: 'ครั้งที่ {n}',
    session_ordinary: 'สมัยสามัญ | ครั้งที่ {n} | ปีที่ {y}',
    session_extraordinary: 'สมัยวิสามัญ | ครั้งที่ {n} | ปีที่ {y}',
    push_on: 'แจ้งเตือนเปิดอยู่',
    push_working: 'กำลังเปิดการแจ้งเตือน…',
    push_denied: 'ไม่มีการแจ้งเตือน: เบราว์เซอร์ปิดกั้นการแจ้งเตือนของหน้านี้',
    push_dismissed: 'ยังไม่ได้อนุญาตให้แจ้งเตือน',
    push_unsupported: 'เบราว์เซอร์นี้แสดงการแจ้งเตือนไม่ได้',
    push_off: 'เซิร์ฟเวอร์นี้ไม่ได้เปิดบริการแจ้งเตือน',
    push_error: 'เปิดการแจ้งเตือนไม่ได้: {e}',
    push_turn_on: 'เปิดการแจ้งเตือน',
  },
  en: {
    app_title: 'Live from the Thai Parliament',
    app_sub: 'Sittings, votes and the progress of bills, as they happen',
    today: 'Today',
    tz: 'Bangkok time',
    sitting_date: 'sitting of {d}',
    sitting_updated: 'not opened yet · last news {d}',
    sitting_h: 'Sitting in progress',
    sitting_h_closed: 'Latest sitting',
    sitting_h_next: 'Next sitting',
    vote_h: 'Vote',
    follow_h: 'Follow a bill',
    follow_label: 'Bill id',
    follow_btn: 'Follow',
    follow_help: 'Enter a bill id such as b-2566-0123 (a–z, 0–9, - and _, at most 64)',
    bad_id: '“{id}” is not a bill id: use a–z, 0–9, - and _, 1 to 64 characters, such as b-2566-0123',
    too_many: 'You can follow at most {n} bills',
    bills_h: 'Bills that moved',
    bills_h_on: 'Bills that moved on {d}',
    feed_h: 'Latest events',
    foot: 'Data from the Sapha hub · times in Bangkok (UTC+7) · years C.E. (the Thai page gives them B.E. = C.E. + 543)',
    no_sitting: 'No sitting yet — waiting for Parliament',
    agenda: 'Agenda item',
    floor: 'Has the floor',
    chair: 'In the chair',
    quorum: 'Quorum',
    motion: 'Motion',
    opened_at: 'opened {t}',
    no_item: 'No agenda item under way',
    nobody: 'Nobody has the floor',
    section: 'considering section {s}',
    item_ended: 'item finished ({d})',
    quorum_line: '{p} present · {r} required',
    in_office: 'of {n} members in office',
    quorum_at: 'counted at {t}',
    vote_at: 'voted {t}',
    vote_since: 'voting since {t}',
    quorum_met: 'quorum met',
    quorum_not_met: 'no quorum',
    quorum_unknown: 'Quorum not checked yet',
    in_camera: 'In camera — the proceedings of this part are not broadcast',
    no_vote: 'No vote yet',
    no_vote_sitting: 'No vote yet in this sitting',
    counting: 'Counting…',
    counted: 'Counted',
    total_cast: { one: '{n} vote in all', other: '{n} votes in all' },
    by_group: 'By House',
    method: 'Method: {m}',
    requirement: 'Needs: {r}',
    threshold: 'Threshold check',
    threshold_met: 'met',
    threshold_failed: 'not met',
    threshold_open: 'cannot be checked (no tally by group)',
    part_whole: 'all',
    earlier_votes: 'Earlier votes',
    this_sitting: 'this sitting',
    bill_ref: 'bill {id}',
    more: 'and {n} more',
    waiting_bill: 'Waiting for events of {id}…',
    loading_bill: 'Loading the history of {id}…',
    stage_of: 'stage {i} of {n}',
    unfollow: 'Unfollow',
    feed_empty: 'Waiting for events…',
    replay: 'Replaying history: each panel is dated by its own events, not by today’s date ({d})',
    gap: 'Some events were lost: the hub no longer has the history back to where this page stopped (restarted at {s})',
    conn_idle: 'Not connected',
    conn_connecting: 'Connecting…',
    conn_catching_up: 'Catching up…',
    conn_live: 'Live',
    conn_live_no_state: 'Live · but the state API cannot be reached',
    state_down: 'The state API ({url}) cannot be reached: search, the list of sittings and followed bills’ histories are off ({e})',
    conn_reconnecting: 'Disconnected · retrying in {s} s',
    conn_closed: 'Offline',
    conn_meta: { one: '{n} event', other: '{n} events' },
    moved: 'moved',
    passed: 'Passed',
    failed: 'Failed',
    browser_h: 'Find a bill',
    search_label: 'Search the Thai or English titles',
    search_placeholder: 'Search titles, e.g. public health or มาตรา 83',
    preset_committee: 'In committee now',
    preset_assent: 'Awaiting royal assent',
    searching: 'Searching…',
    found: { one: '{n} bill', other: '{n} bills' },
    found_some: '{n} bills, the first {k} shown',
    alike: { one: 'same title as {n} other bill here: this one is {id}', other: 'same title as {n} other bills here: this one is {id}' },
    more_results: 'Show {k} more ({n} left)',
    found_none: 'No bill matches “{q}”',
    list_none: 'No bill is on this list now',
    browse_error: 'Could not search: {e}',
    follow_one: 'Follow',
    following: 'Following',
    since_d: 'since {d}',
    timeline: 'Timeline',
    decided_by: 'by the vote: {r}',
    deemed: 'deemed approved',
    deadline: 'deadline {d}',
    not_found_bill: 'No bill {id} yet — it shows when it moves',
    sittings_h: 'Sittings',
    sittings_none: 'No sittings yet',
    sitting_no: 'no. {n}',
    session_ordinary: 'ordinary session {n}, | year {y}',
    session_extraordinary: 'extraordinary session {n}, | year {y}',
    push_on: 'notifications on',
    push_working: 'turning notifications on…',
    push_denied: 'no notifications: this browser blocks them for this page',
    push_dismissed: 'notifications not allowed yet',
    push_unsupported: 'this browser cannot show notifications',
    push_off: 'notifications are off on this hub',
    push_error: 'could not turn notifications on: {e}',
    push_turn_on: 'Turn on notifications',
  },
};

// Labels of codes: [Thai, English]. STAGES and PATHS are printed by
// `cargo run -p sapha-proto --example dashboard_tables` (a contract test checks them).
const STAGES = {
  PROPOSED: ["เสนอร่าง", "introduced"],
  HEARING: ["รับฟังความคิดเห็น", "public hearing"],
  HOUSE_R1: ["วาระที่ 1 ขั้นรับหลักการ", "House first reading"],
  HOUSE_COMMITTEE: ["ขั้นกรรมาธิการ", "House committee"],
  HOUSE_R2: ["วาระที่ 2", "House second reading"],
  HOUSE_R3: ["วาระที่ 3", "House third reading"],
  SENATE_R1: ["วุฒิสภา วาระที่ 1", "Senate first reading"],
  SENATE_COMMITTEE: ["วุฒิสภา ขั้นกรรมาธิการ", "Senate committee"],
  SENATE_R2: ["วุฒิสภา วาระที่ 2", "Senate second reading"],
  SENATE_R3: ["วุฒิสภา วาระที่ 3", "Senate third reading"],
  HOUSE_SENATE_AMENDMENTS: ["สภาผู้แทนราษฎรพิจารณาร่างที่วุฒิสภาแก้ไขเพิ่มเติม", "House decision on the Senate's amendments"],
  WITHHELD: ["ยับยั้งไว้ก่อน", "withheld"],
  HOUSE_REAFFIRM: ["สภาผู้แทนราษฎรลงมติยืนยันร่างเดิม", "House reaffirmation of the withheld bill"],
  JOINT_COMMITTEE: ["คณะกรรมาธิการร่วมกัน", "joint committee"],
  JOINT_R1: ["รัฐสภา วาระที่ 1", "joint sitting first reading"],
  PARLIAMENT_COMMITTEE: ["กรรมาธิการของรัฐสภา", "joint sitting committee"],
  JOINT_R2: ["รัฐสภา วาระที่ 2", "joint sitting second reading"],
  JOINT_R3: ["รัฐสภา วาระที่ 3", "joint sitting third reading"],
  ORGAN_OPINIONS: ["ส่งศาลฎีกา ศาลรัฐธรรมนูญ หรือองค์กรอิสระที่เกี่ยวข้องให้ความเห็น", "sent to the court or independent organ concerned for comment"],
  OBJECTION_RECONSIDER: ["รัฐสภาพิจารณาตามความเห็นที่ทักท้วง", "joint sitting reconsiders after an objection"],
  REFERENDUM: ["ออกเสียงประชามติ", "referendum"],
  HOUSE_APPROVAL: ["สภาผู้แทนราษฎรพิจารณาอนุมัติ", "House approval"],
  SENATE_APPROVAL: ["วุฒิสภาพิจารณาอนุมัติ", "Senate approval"],
  CONST_COURT: ["ศาลรัฐธรรมนูญวินิจฉัย", "Constitutional Court review"],
  APPROVED: ["ผ่านความเห็นชอบแล้ว รอนำขึ้นทูลเกล้าฯ", "approved, awaiting presentation for royal assent"],
  PRESENTED_FOR_ASSENT: ["นำขึ้นทูลเกล้าฯ", "presented for royal assent"],
  ROYAL_ASSENT: ["ทรงลงพระปรมาภิไธย", "royal assent given"],
  VETO_RECONSIDER: ["รัฐสภาปรึกษาใหม่", "reconsidered after royal veto"],
  PUBLISHED: ["ประกาศในราชกิจจานุเบกษา", "published in the Royal Gazette"],
  ENACTED: ["มีผลบังคับใช้", "in force"],
  CONFIRMED: ["อนุมัติ", "confirmed by Parliament"],
  REJECTED: ["ตกไป", "rejected"],
  MERGED: ["รวมร่าง", "merged into a main bill"],
  WITHDRAWN: ["ถอน", "withdrawn"],
  LAPSED: ["ตกไปเพราะสภาผู้แทนราษฎรสิ้นอายุหรือถูกยุบ", "lapsed at the end of the House's term or on dissolution"],
};

/**
 * The usual path of each bill type (proto/src/stage.rs's rule table, main line
 * only). A stage off the path (a detour such as WITHHELD) is drawn at the
 * furthest path stage the bill reached; an ending off the path (REJECTED...) too.
 */
const PATHS = {
  act: ['PROPOSED', 'HEARING', 'HOUSE_R1', 'HOUSE_COMMITTEE', 'HOUSE_R2', 'HOUSE_R3', 'SENATE_R1', 'SENATE_COMMITTEE', 'SENATE_R2', 'SENATE_R3', 'APPROVED', 'PRESENTED_FOR_ASSENT', 'ROYAL_ASSENT', 'PUBLISHED', 'ENACTED'],
  organic_act: ['PROPOSED', 'JOINT_R1', 'PARLIAMENT_COMMITTEE', 'JOINT_R2', 'JOINT_R3', 'ORGAN_OPINIONS', 'PRESENTED_FOR_ASSENT', 'ROYAL_ASSENT', 'PUBLISHED', 'ENACTED'],
  budget: ['PROPOSED', 'HOUSE_R1', 'HOUSE_COMMITTEE', 'HOUSE_R2', 'HOUSE_R3', 'SENATE_R1', 'APPROVED', 'PRESENTED_FOR_ASSENT', 'ROYAL_ASSENT', 'PUBLISHED', 'ENACTED'],
  emergency_decree: ['ENACTED', 'HOUSE_APPROVAL', 'SENATE_APPROVAL', 'CONFIRMED'],
  constitutional_amendment: ['PROPOSED', 'JOINT_R1', 'PARLIAMENT_COMMITTEE', 'JOINT_R2', 'JOINT_R3', 'APPROVED', 'PRESENTED_FOR_ASSENT', 'ROYAL_ASSENT', 'PUBLISHED', 'ENACTED'],
};
const ENDED_BAD = new Set(['REJECTED', 'MERGED', 'WITHDRAWN', 'LAPSED']);
const ENDED_OK = { act: 'ENACTED', organic_act: 'ENACTED', budget: 'ENACTED', constitutional_amendment: 'ENACTED', emergency_decree: 'CONFIRMED' };

const BILL_TYPES = {
  act: ['พ.ร.บ.', 'Act'],
  organic_act: ['พ.ร.ป.', 'Organic act'],
  budget: ['งบประมาณ', 'Budget bill'],
  emergency_decree: ['พ.ร.ก.', 'Emergency decree'],
  constitutional_amendment: ['แก้ไขรัฐธรรมนูญ', 'Const. amendment'],
};
/** Who introduced a bill (`proposer`): what tells bills of the same title apart. */
const PROPOSERS = {
  cabinet: ['คณะรัฐมนตรีเสนอ', 'introduced by the Cabinet'],
  mps: ['ส.ส. เสนอ', 'introduced by MPs'],
  mps_and_senators: ['ส.ส. และ ส.ว. เสนอ', 'introduced by MPs and senators'],
  voters: ['ประชาชนผู้มีสิทธิเลือกตั้งเสนอ', 'introduced by voters'],
  court: ['ศาลเสนอ', 'introduced by a court'],
  independent_organ: ['องค์กรอิสระเสนอ', 'introduced by an independent organ'],
};
const CHAMBERS = { senate: ['วุฒิสภา', 'Senate'], house: ['สภาผู้แทนราษฎร', 'House'], joint: ['ประชุมร่วมกันของรัฐสภา', 'Joint sitting'] };
const PHASES = {
  scheduled: ['นัดประชุม', 'scheduled', 'idle'],
  agenda_published: ['แจ้งระเบียบวาระแล้ว', 'agenda published', 'idle'],
  opened: ['กำลังประชุม', 'in session', 'ok'],
  resumed: ['กำลังประชุม', 'in session', 'ok'],
  in_camera_ended: ['กำลังประชุม', 'in session', 'ok'],
  suspended: ['พักการประชุม', 'suspended', 'warn'],
  in_camera_started: ['ประชุมลับ', 'in camera', 'camera'],
  closed: ['ปิดประชุมแล้ว', 'closed', 'idle'],
  cancelled: ['งดประชุม', 'cancelled', 'bad'],
};
const PHASE_EVENTS = {
  scheduled: ['นัดประชุม', 'sitting scheduled'],
  agenda_published: ['แจ้งระเบียบวาระการประชุม', 'agenda published'],
  opened: ['เปิดประชุม', 'sitting opened'],
  resumed: ['ประชุมต่อ', 'sitting resumed'],
  suspended: ['พักการประชุม', 'sitting suspended'],
  in_camera_started: ['เริ่มประชุมลับ', 'in camera'],
  in_camera_ended: ['สิ้นสุดการประชุมลับ', 'back in public'],
  closed: ['ปิดประชุม', 'sitting closed'],
  cancelled: ['งดประชุม', 'sitting cancelled'],
};
const CATEGORIES = {
  chair_announcement: ['เรื่องที่ประธานแจ้งต่อที่ประชุม', "Chair's announcements"],
  minutes: ['รับรองรายงานการประชุม', 'Minutes'],
  consultation: ['ปรึกษาหารือ', 'Consultation'],
  question: ['กระทู้ถาม', 'Questions'],
  urgent: ['เรื่องด่วน', 'Urgent business'],
  committee_report: ['รายงานของคณะกรรมาธิการ', 'Committee report'],
  new_business: ['เรื่องที่เสนอใหม่', 'New business'],
};
const STATUSES = {
  scheduled: ['นัดประชุม', 'scheduled', 'idle'],
  open: ['กำลังประชุม', 'in session', 'ok'],
  suspended: ['พักการประชุม', 'suspended', 'warn'],
  in_camera: ['ประชุมลับ', 'in camera', 'camera'],
  closed: ['ปิดประชุมแล้ว', 'closed', 'idle'],
  cancelled: ['งดประชุม', 'cancelled', 'bad'],
};
/** A sitting's status in the state API, as the lifecycle phase the panel knows. */
const STATUS_PHASE = { scheduled: 'scheduled', open: 'opened', suspended: 'suspended', in_camera: 'in_camera_started', closed: 'closed', cancelled: 'cancelled' };
const DISPOSITIONS = { completed: ['เสร็จสิ้น', 'completed'], deferred: ['เลื่อนไป', 'deferred'], withdrawn: ['ถอน', 'withdrawn'], referred: ['ส่งต่อ', 'referred'] };
const ROLES = { member: ['สมาชิก', 'member'], minister: ['รัฐมนตรี', 'minister'], chair: ['ประธาน', 'chair'], committee: ['กรรมาธิการ', 'committee'], official: ['เจ้าหน้าที่', 'official'], other: ['อื่น ๆ', 'other'] };
const METHODS = { electronic: ['เครื่องออกเสียงลงคะแนน', 'electronic'], roll_call: ['ขานชื่อเป็นรายบุคคล', 'roll call'], secret_ballot: ['ลงคะแนนลับ', 'secret ballot'], show_of_hands: ['ยกมือ', 'show of hands'] };
const OPTIONS = { aye: ['เห็นด้วย', 'Aye'], no: ['ไม่เห็นด้วย', 'No'], abstain: ['งดออกเสียง', 'Abstain'], not_voting: ['ไม่ลงคะแนนเสียง', 'Not voting'], absent: ['ขาดประชุม', 'Absent'] };
const OPTION_ORDER = ['aye', 'no', 'abstain', 'not_voting', 'absent'];
const GROUPS = { house: ['ส.ส.', 'MPs'], senate: ['ส.ว.', 'Senators'], government: ['ส.ส. ฝ่ายรัฐบาล', 'government MPs'], opposition: ['ส.ส. ฝ่ายค้าน', 'opposition MPs'], no_office_parties: ['ส.ส. พรรคที่ไม่มีรัฐมนตรีหรือประธาน/รองประธานสภา', 'MPs of parties with no minister or presiding officer'] };
// The blocs split the MPs a second way: they never add to the totals.
const CHAMBER_GROUPS = new Set(['', 'house', 'senate']);
const DECISIONS = { adopted: ['ที่ประชุมเห็นชอบ', 'adopted'], rejected: ['ที่ประชุมไม่เห็นชอบ', 'rejected'] };

// ---- language and dates -----------------------------------------------------------

let lang = pickLang();

function pickLang() {
  const p = params.get('lang');
  if (p === 'th' || p === 'en') return p;
  try {
    const saved = localStorage.getItem(LANG_KEY);
    if (saved === 'th' || saved === 'en') return saved;
  } catch { /* storage may be off */ }
  return 'th';
}

/**
 * A UI string with `{var}`s filled in. A string with plural forms is an object
 * `{one, other}`, chosen by `vars.n` (Intl.PluralRules: "1 bill", "2 bills").
 */
function t(key, vars = {}) {
  let s = (UI[lang] && UI[lang][key]) || UI.en[key] || key;
  if (typeof s === 'object') {
    const n = typeof vars.n === 'number' ? vars.n : Number(String(vars.n).replace(/[^0-9.]/g, ''));
    s = s[new Intl.PluralRules(lang === 'th' ? 'th' : 'en').select(n)] || s.other;
  }
  return s.replace(/\{(\w+)\}/g, (_, k) => (vars[k] === undefined ? '' : String(vars[k])));
}
/** One side of a `[th, en]` pair. */
const L = (pair, fallback = '') => (pair ? pair[lang === 'th' ? 0 : 1] : fallback);
/** One side of a bilingual `{th, en}` text, falling back to the other side. */
const text = (o) => (o ? (lang === 'th' ? o.th || o.en : o.en || o.th) || '' : '');

const TZ = 'Asia/Bangkok';
const fmtCache = new Map();
function fmt(kind) {
  const key = `${lang}:${kind}`;
  if (!fmtCache.has(key)) {
    // Thai in the Buddhist Era; English in the Common Era, the era of the
    // English titles themselves ("Friday 10 September 2021"), so that a card
    // never shows 2564 next to 2021.
    const [locale, calendar] = lang === 'th' ? ['th-TH-u-ca-buddhist', 'buddhist'] : ['en-GB', 'gregory'];
    const opts = {
      full: { dateStyle: 'full' },
      date: { day: 'numeric', month: 'short', year: 'numeric' },
      time: { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' },
      datetime: { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' },
    }[kind];
    fmtCache.set(key, new Intl.DateTimeFormat(locale, { timeZone: TZ, calendar, ...opts }));
  }
  return fmtCache.get(key);
}
/** The Bangkok calendar date of an instant, as `YYYY-MM-DD` (Gregorian, for comparing). */
const dayKeyFmt = new Intl.DateTimeFormat('en-CA', { timeZone: TZ, year: 'numeric', month: '2-digit', day: '2-digit' });
const dayKey = (ms) => dayKeyFmt.format(new Date(ms));
const showDate = (ms) => fmt('date').format(new Date(ms));
const showTime = (ms) => fmt('time').format(new Date(ms));
/**
 * A day-precision time shows its date only; an instant shows its time, and its
 * date too when it is not on the day `refMs` (the day the panel is about).
 */
function showWhen(ms, precision, refMs) {
  if (precision === 'day') return showDate(ms);
  return refMs != null && dayKey(ms) === dayKey(refMs) ? showTime(ms) : fmt('datetime').format(new Date(ms));
}
/** A `<time>` element: `HH:MM` in Bangkok, with the instant in `datetime`. */
const timeEl = (ms, label, testid) => h('time', { datetime: new Date(ms).toISOString(), 'data-testid': testid, 'data-time': showTime(ms) }, label);

// ---- state ---------------------------------------------------------------------------

const S = {
  sittings: new Map(),
  current: null,
  votes: new Map(),
  voteOrder: [],
  bills: new Map(),
  seenEvents: new Set(),
  /** The newest `occurred_at` of any bill move: the day the bills panel lists. */
  billsDayMs: null,
  feed: [],
  followed: loadFollowed(),
  loading: new Set(),
  /** Followed bills the hub does not know (404): they show when they move. */
  unknown: new Set(),
  /** The follow connection's topics and the `since` it was opened with. */
  followSub: { topics: [], since: undefined },
  /** The bill browser: a search (`q`) or a stage list (`preset`), and its answer. */
  browse: { q: '', preset: null, busy: false, answer: null, error: null },
  /** GET /v1/sittings, newest first. */
  sittingList: null,
  /** Why the last state API request got no answer (null: it answered). */
  apiDown: null,
  gap: null,
  connState: State.IDLE,
  reconnectAt: 0,
  flash: new Map(),
  /** The bill opened by ?bill= or a notification click: highlighted, and kept in view (see `keepOpenedInView`). */
  opened: null,
  /** The opened bill while it is kept at the top of the screen; null once the reader scrolls. */
  pinned: null,
  /**
   * Web Push. `key`: the hub's VAPID key (undefined: not known yet; null: the
   * hub sends no notifications). `status`: checking | ready | on | denied |
   * dismissed | unsupported | off. `bills`: the bills the hub notifies this
   * browser of; `pending`: being turned on; `errors`: why one could not be.
   */
  push: { key: undefined, status: 'checking', bills: new Set(), pending: new Set(), errors: new Map() },
};

/**
 * A render is scheduled (see `schedule`). Declared here, above every top-level
 * call that schedules: followed bills are loaded (and schedule) while the module
 * is still running, and a `let` read before its line throws.
 */
let pending = false;

function loadFollowed() {
  try {
    const list = JSON.parse(localStorage.getItem(FOLLOW_KEY) || '[]');
    return Array.isArray(list) ? list.filter(isValidId).slice(0, MAX_FOLLOWED) : [];
  } catch {
    return [];
  }
}
function saveFollowed() {
  try { localStorage.setItem(FOLLOW_KEY, JSON.stringify(S.followed)); } catch { /* storage may be off */ }
}

function sittingOf(ref) {
  let s = S.sittings.get(ref.sitting_id);
  if (!s) {
    s = { id: ref.sitting_id, chamber: ref.chamber, title: null, phase: null, outcome: null, openedAt: null, lastAt: null, quorum: null, item: null, speaker: null, chair: null, motion: null, inCamera: false, lastSeq: 0,
      /** The stream position of the state API answer the sitting was set from (0: none). */
      snapSeq: 0,
      /** Its events as they came, to re-apply the ones after a snapshot read meanwhile. */
      events: [] };
    S.sittings.set(ref.sitting_id, s);
  }
  return s;
}

function billOf(id) {
  let b = S.bills.get(id);
  if (!b) {
    b = { id, type: null, title: null, moves: [], stage: null, lastAgg: 0, lastMoveMs: 0 };
    S.bills.set(id, b);
  }
  return b;
}

/** Applies one event to the state. Idempotent: an event id is applied once. */
function apply(ev, seq, { feed = true } = {}) {
  if (!ev || S.seenEvents.has(ev.event_id)) return;
  S.seenEvents.add(ev.event_id);
  const at = Date.parse(ev.occurred_at);
  const d = ev.data || {};
  if (d.sitting) {
    const s = sittingOf(d.sitting);
    if (seq >= s.lastSeq) {
      s.lastSeq = seq;
      const cur = S.current && S.sittings.get(S.current);
      if (!cur || seq >= cur.lastSeq) S.current = s.id;
    }
    if (Number.isFinite(at) && (s.lastAt === null || at > s.lastAt)) s.lastAt = at;
    s.events.push({ ev, seq, at });
    if (s.events.length > 3000) s.events.shift();
    // A snapshot at snapSeq already holds every event up to it (a backlog replays some).
    if (seq > s.snapSeq) applySitting(s, ev, d, at);
    if (ev.kind === 'sitting.lifecycle') refreshSittingsSoon();
  } else if (ev.kind === 'bill.stage_changed') {
    applyBill(ev, d, at, seq);
    refreshBrowseSoon();
  }
  if (!feed) return;
  S.feed.unshift({ ev, at, seq });
  if (S.feed.length > FEED_LEN) S.feed.length = FEED_LEN;
}

function applySitting(s, ev, d, at) {
  switch (ev.kind) {
    case 'sitting.lifecycle':
      if (d.title) s.title = d.title;
      if (d.phase === 'in_camera_started') s.inCamera = true;
      else if (d.phase === 'in_camera_ended') s.inCamera = false;
      s.phase = d.phase;
      if (d.phase === 'opened') s.openedAt = at;
      if (d.phase === 'closed' || d.phase === 'cancelled') {
        s.outcome = d.outcome || null;
        s.speaker = null;
        s.inCamera = false;
      }
      break;
    case 'sitting.quorum_checked':
      s.quorum = { present: d.present, required: d.required, inOffice: d.in_office, met: d.met, at };
      break;
    case 'agenda.item_started':
      s.item = { id: d.item_id, category: d.category, title: d.title, billId: d.bill_id, section: null, ended: null };
      break;
    case 'agenda.item_ended':
      if (s.item && s.item.id === d.item_id) s.item.ended = d.disposition || 'completed';
      break;
    case 'agenda.section_considered':
      if (s.item && s.item.id === d.item_id) s.item.section = d.section_no;
      break;
    case 'floor.speech_started':
      s.speaker = { person: d.person, role: d.role, at };
      break;
    case 'floor.speech_ended':
      if (s.speaker && s.speaker.person && d.person && s.speaker.person.person_id === d.person.person_id) s.speaker = null;
      break;
    case 'floor.chair_changed':
      s.chair = { person: d.person, office: d.office };
      break;
    case 'motion.moved':
      s.motion = { id: d.motion_id, text: d.text, mover: d.mover, status: 'moved' };
      break;
    case 'motion.withdrawn':
      if (s.motion && s.motion.id === d.motion_id) s.motion.status = 'withdrawn';
      break;
    case 'motion.decided':
      if (s.motion && s.motion.id === d.motion_id) s.motion.status = d.decision;
      break;
    case 'vote.opened':
    case 'vote.closed':
    case 'vote.result': {
      const key = `${s.id}/${d.vote_id}`;
      let v = S.votes.get(key);
      if (!v) {
        v = { key, sittingId: s.id, chamber: s.chamber, voteId: d.vote_id, method: null, requirement: null, question: null, billId: null, counts: null, result: null, openedAt: at, closedAt: null };
        S.votes.set(key, v);
        S.voteOrder.push(key);
        if (S.voteOrder.length > 50) S.votes.delete(S.voteOrder.shift());
      }
      if (d.bill_id) v.billId = d.bill_id;
      if (ev.kind === 'vote.opened') Object.assign(v, { method: d.method, requirement: d.requirement, threshold: d.threshold || null, question: d.question, openedAt: at });
      if (ev.kind === 'vote.closed') Object.assign(v, { counts: d.counts || [], casting: d.casting_vote || null, closedAt: at });
      if (ev.kind === 'vote.result') v.result = d.result;
      break;
    }
    default:
      break;
  }
}

/**
 * Adds a move to a bill's timeline once (by event id), in stream order. Moves come
 * from the stream and from GET /v1/bills/{id}; either may come first.
 */
function addMove(b, m) {
  if (b.moves.some((x) => x.eventId === m.eventId)) return false;
  b.moves.push(m);
  b.moves.sort((x, y) => x.order - y.order);
  b.stage = b.moves[b.moves.length - 1].to;
  return true;
}

function applyBill(ev, d, at, seq) {
  const b = billOf(d.bill_id);
  b.type = d.bill_type || b.type;
  if (d.title) b.title = d.title;
  S.unknown.delete(b.id);
  // Stream position, else (never from the hub) the bill's own sequence.
  const move = { eventId: ev.event_id, from: d.from_stage || null, to: d.to_stage, at, precision: ev.precision, note: d.note, deemed: !!d.deemed, deadline: d.deadline || null, order: seq || ev.seq || 0 };
  if (!addMove(b, move)) return;
  if (at >= b.lastMoveMs) b.lastMoveMs = at;
  if (Number.isFinite(at) && (S.billsDayMs === null || at > S.billsDayMs)) S.billsDayMs = at;
  b.lastSeenOrder = ++applyBill.order;
  S.flash.set(b.id, Date.now());
}
applyBill.order = 0;

/** A bill as GET /v1/bills/{id} tells it: its title, type and whole timeline. */
function applyBillSnapshot(x) {
  const b = billOf(x.bill_id);
  b.type = x.bill_type || b.type;
  if (x.title) b.title = x.title;
  b.lastSeenOrder ??= 0;
  S.unknown.delete(b.id);
  for (const e of x.timeline || []) {
    const at = Date.parse(e.at);
    addMove(b, { eventId: e.event_id, from: e.from || null, to: e.to, at, precision: e.precision, note: e.note || null, deemed: !!e.deemed, deadline: e.deadline || null, decidedBy: e.decided_by || null, order: e.seq });
    if (Number.isFinite(at) && at > b.lastMoveMs) b.lastMoveMs = at;
  }
  // A vote that decided a move, known only to the snapshot.
  for (const e of x.timeline || []) {
    const m = b.moves.find((y) => y.eventId === e.event_id);
    if (m && e.decided_by) m.decidedBy = e.decided_by;
  }
  if (!b.moves.length && x.stage) b.stage = x.stage;
}

const ms = (iso) => (iso ? Date.parse(iso) : null);

/**
 * A sitting as the state API tells it, at stream position `seq`; the events of
 * it this page got after `seq` are applied again on top.
 */
function applySittingSnapshot(x, seq) {
  const s = sittingOf({ sitting_id: x.sitting_id, chamber: x.chamber });
  if (seq <= s.snapSeq) return s;
  const item = (() => {
    const cur = x.current_item && (x.agenda || []).find((a) => a.item_id === x.current_item);
    const a = cur || (x.agenda || []).at(-1);
    if (!a) return null;
    return { id: a.item_id, category: a.category, title: a.title, billId: a.bill_id || null,
      section: a.sections && a.sections.length ? a.sections.at(-1) : null,
      ended: a.ended_at ? a.disposition || 'completed' : null };
  })();
  const motion = (x.motions || []).filter((m) => m.status === 'moved').at(-1);
  Object.assign(s, {
    title: x.title || s.title,
    phase: STATUS_PHASE[x.status] || s.phase,
    outcome: x.outcome || null,
    openedAt: ms(x.opened_at),
    inCamera: x.status === 'in_camera',
    quorum: x.quorum ? { present: x.quorum.present, required: x.quorum.required, inOffice: x.quorum.in_office, met: x.quorum.met, at: ms(x.quorum.at) } : null,
    item,
    speaker: x.floor ? { person: x.floor.person, role: x.floor.capacity, at: ms(x.floor.since) } : null,
    chair: x.chair ? { person: x.chair.person, office: x.chair.office } : null,
    motion: motion ? { id: motion.motion_id, text: motion.text, status: 'moved' } : null,
    snapSeq: seq,
    lastSeq: Math.max(s.lastSeq, x.seq || 0),
  });
  const when = [ms(x.closed_at), ms(x.opened_at), ...(x.votes || []).map((v) => ms(v.closed_at) ?? ms(v.opened_at))].filter(Number.isFinite);
  if (when.length) s.lastAt = Math.max(s.lastAt ?? 0, ...when);
  else if (s.lastAt === null && x.day) s.lastAt = Date.parse(`${x.day}T00:00:00+07:00`);
  for (const v of [...(x.votes || [])].sort((a, b) => (ms(a.opened_at) ?? 0) - (ms(b.opened_at) ?? 0))) {
    const key = `${s.id}/${v.vote_id}`;
    if (!S.votes.has(key)) {
      S.voteOrder.push(key);
      if (S.voteOrder.length > 50) S.votes.delete(S.voteOrder.shift());
    }
    S.votes.set(key, { key, sittingId: s.id, chamber: s.chamber, voteId: v.vote_id, method: v.method || null, requirement: v.requirement || null,
      threshold: v.threshold || null, question: v.question || null, billId: v.bill_id || null, counts: v.counts || null,
      casting: v.casting_vote || null, result: v.result || null, openedAt: ms(v.opened_at) ?? s.openedAt, closedAt: ms(v.closed_at) });
  }
  for (const k of s.events) if (k.seq > seq) applySitting(s, k.ev, k.ev.data || {}, k.at);
  const cur = S.current && S.sittings.get(S.current);
  if (!cur || s.lastSeq >= cur.lastSeq) S.current = s.id;
  return s;
}

// ---- the state API -------------------------------------------------------------------

/** GET a state API path; rejects with an Error carrying `status` (and the hub's `code`). */
async function api(path, { signal } = {}) {
  const headers = { accept: 'application/json' };
  if (TOKEN) headers.authorization = `Bearer ${TOKEN}`;
  let r;
  try {
    r = await fetch(`${API_BASE}${path}`, { signal, headers, cache: 'no-cache' });
  } catch (err) {
    // Not an answer at all: the hub is unreachable, or the browser refused
    // (CORS, the Content-Security-Policy). The badge and a notice say so.
    if (err.name !== 'AbortError') {
      S.apiDown = err.message || String(err);
      schedule();
    }
    throw err;
  }
  if (S.apiDown) {
    S.apiDown = null;
    schedule();
  }
  if (!r.ok) {
    let body = null;
    try { body = await r.json(); } catch { /* not JSON */ }
    const err = new Error((body && body.message) || `HTTP ${r.status}`);
    err.status = r.status;
    err.code = body && body.code;
    throw err;
  }
  return r.json();
}

/** The sittings in progress, at once: agenda item, floor, quorum and votes. */
async function loadLive() {
  try {
    const ans = await api('/v1/sittings/live');
    for (const x of ans.items || []) applySittingSnapshot(x, ans.seq);
    S.liveSeq = ans.seq;
    schedule();
  } catch (err) {
    console.warn('sapha: live sittings', err.status || '', err.message);
  }
}

async function loadSittings() {
  try {
    S.sittingList = await api(`/v1/sittings?limit=${SITTINGS_LIMIT}`);
  } catch (err) {
    console.warn('sapha: sittings', err.status || '', err.message);
  }
  schedule();
}
let sittingsTimer = null;
function refreshSittingsSoon() {
  clearTimeout(sittingsTimer);
  sittingsTimer = setTimeout(loadSittings, 600);
}

/** The bill browser: a search as the user types, or one of the stage lists. */
let browseAbort = null;
async function runBrowse() {
  const { q, preset } = S.browse;
  if (browseAbort) browseAbort.abort();
  if (!q && !preset) {
    Object.assign(S.browse, { busy: false, answer: null, error: null });
    schedule();
    return;
  }
  const ctl = new AbortController();
  browseAbort = ctl;
  S.browse.busy = true;
  schedule();
  // Read again (a bill moved), the list keeps as many results as were on show.
  const prev = S.browse.answer;
  const shown = prev && prev.q === q && prev.preset === preset ? (prev.items || []).length : 0;
  const limit = Math.min(200, Math.max(BROWSE_LIMIT, shown));
  const path = browsePath(q, preset, limit);
  try {
    const answer = await api(path, { signal: ctl.signal });
    if (browseAbort !== ctl) return;
    Object.assign(S.browse, { busy: false, answer: { ...answer, q, preset }, error: null });
  } catch (err) {
    if (err.name === 'AbortError' || browseAbort !== ctl) return;
    Object.assign(S.browse, { busy: false, answer: null, error: err.message });
  }
  schedule();
}
function browsePath(q, preset, limit) {
  return q
    ? `/v1/bills?q=${encodeURIComponent(q)}&limit=${limit}`
    : `/v1/bills?stage=${PRESETS[preset]}&sort=moved_desc&limit=${limit}`;
}
/** The next page of the answer on show (its `next_cursor`), appended to it. */
async function moreBrowse() {
  const a = S.browse.answer;
  if (!a || !a.next_cursor || S.browse.busy) return;
  const ctl = new AbortController();
  browseAbort = ctl;
  S.browse.busy = true;
  schedule();
  try {
    const page = await api(`${browsePath(a.q, a.preset, BROWSE_LIMIT)}&cursor=${encodeURIComponent(a.next_cursor)}`, { signal: ctl.signal });
    if (browseAbort !== ctl) return;
    // A bill that moved between the pages may be on both: keep it once.
    const have = new Set(a.items.map((i) => i.bill_id));
    const items = a.items.concat((page.items || []).filter((i) => !have.has(i.bill_id)));
    Object.assign(S.browse, { busy: false, answer: { ...a, items, total: page.total, next_cursor: page.next_cursor, seq: page.seq }, error: null });
  } catch (err) {
    if (err.name === 'AbortError' || browseAbort !== ctl) return;
    Object.assign(S.browse, { busy: false, error: err.message });
  }
  schedule();
}
let browseTimer = null;
function browseSoon(ms = SEARCH_DEBOUNCE_MS) {
  clearTimeout(browseTimer);
  browseTimer = setTimeout(runBrowse, ms);
}
/** Bills moved: the list on show may have changed. */
function refreshBrowseSoon() {
  if (S.browse.q || S.browse.preset) browseSoon(1000);
}

// ---- the connection ----------------------------------------------------------------

// Assigned once; the state callback can run before `connect` returns.
let client = null;
client = connect({
  url: HUB_URL,
  topics: TOPICS,
  backlog: BACKLOG,
  onEvent: (ev, meta) => {
    apply(ev, meta.seq);
    schedule();
  },
  onState: (state, info) => {
    S.connState = state;
    S.reconnectAt = state === State.RECONNECTING ? Date.now() + (info.delayMs || 0) : 0;
    renderConn();
  },
  onGap: (gap) => {
    S.gap = gap;
    schedule();
  },
  onError: (err) => {
    console.warn('sapha:', err.code, err.message);
  },
});

// Followed bills: snapshot, then subscribe. Each is read from the state API
// (its timeline at stream position `seq`), then followed on a connection of
// its own (`since` is allowed only on a connection's first subscribe) from that
// position. A bill followed later reopens it from the lower of its `seq` and
// where the connection was; what both cover is dropped by event id.
let followClient = null;
let followSince = null;
let followTimer = null;

function followFrom(seq) {
  if (typeof seq === 'number') followSince = followSince === null ? seq : Math.min(followSince, seq);
  if (followTimer) return;
  followTimer = setTimeout(() => {
    followTimer = null;
    openFollowClient();
  }, 0);
}

function openFollowClient() {
  const topics = S.followed.map((id) => `bill.${id}`);
  const old = followClient;
  let since = followSince === null ? undefined : followSince;
  followSince = null;
  if (old && typeof old.lastSeq === 'number') since = since === undefined ? old.lastSeq : Math.min(since, old.lastSeq);
  followClient = null;
  if (old) old.close();
  S.followSub = { topics, since };
  if (!topics.length) return;
  followClient = connect({
    url: HUB_URL,
    topics,
    since,
    onEvent: (ev, meta) => {
      apply(ev, meta.seq);
      schedule();
    },
    onError: (err) => console.warn('sapha (followed bills):', err.code, err.message),
  });
}

async function loadBill(id) {
  S.loading.add(id);
  schedule();
  let seq;
  try {
    const ans = await api(`/v1/bills/${encodeURIComponent(id)}`);
    applyBillSnapshot(ans.bill);
    seq = ans.seq;
  } catch (err) {
    if (err.status === 404) S.unknown.add(id);
    else console.warn('sapha: bill', id, err.status || '', err.message);
  } finally {
    S.loading.delete(id);
    // Subscribe in any case: an unknown bill shows when it first moves.
    if (S.followed.includes(id)) followFrom(seq);
    schedule();
  }
}
S.followed.forEach(loadBill);
loadLive();
loadSittings();

/**
 * Follows a bill. `push`: also turn its notifications on (only from a click: the
 * browser asks the reader's permission only during a user gesture).
 */
function follow(raw, { push = true } = {}) {
  const id = raw.trim().toLowerCase();
  const input = document.getElementById('follow-input');
  const error = document.getElementById('follow-error');
  if (!isValidId(id)) {
    error.textContent = t('bad_id', { id: raw.trim().slice(0, 70) });
    error.hidden = false;
    input.setAttribute('aria-invalid', 'true');
    return false;
  }
  error.hidden = true;
  input.removeAttribute('aria-invalid');
  if (S.followed.includes(id)) return true;
  if (S.followed.length >= MAX_FOLLOWED) {
    error.textContent = t('too_many', { n: MAX_FOLLOWED });
    error.hidden = false;
    return false;
  }
  S.followed.unshift(id);
  saveFollowed();
  // The id is checked above, so the topic cannot widen into a wildcard.
  loadBill(id);
  if (push) enablePush(id);
  schedule();
  return true;
}

function unfollow(id) {
  S.followed = S.followed.filter((x) => x !== id);
  saveFollowed();
  if (followClient) followClient.unsubscribe([`bill.${id}`]).catch(() => {});
  S.followSub = { ...S.followSub, topics: S.followSub.topics.filter((t) => t !== `bill.${id}`) };
  disablePush(id);
  schedule();
}

/** Shows a bill (?bill=, a notification click): followed if it was not, highlighted, scrolled to. */
function openBill(raw) {
  const id = String(raw || '').trim().toLowerCase();
  if (!isValidId(id)) return;
  // Followed here without asking for notifications (no click to ask from):
  // a notification's bill is followed already, a shared link's is just shown.
  if (!S.followed.includes(id)) follow(id, { push: false });
  S.opened = id;
  S.pinned = id;
  S.flash.set(id, Date.now());
  schedule();
}

// ---- Web Push: the follow API and the service worker --------------------------------
//
// The order matters: the permission is asked first, synchronously in the click
// (a request made after an await may be refused for want of a user gesture),
// then the rest runs one step at a time on a queue, so that two quick follows
// do not register two followers.

let pushQueue = Promise.resolve();
/** Resolves to the hub's VAPID key, or null when it sends no notifications. */
let pushKeyReady = Promise.resolve(null);

const pushSupported = () => 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;

function loadFollower() {
  try {
    const f = JSON.parse(localStorage.getItem(FOLLOWER_KEY) || 'null');
    // A follower of another hub (?hub=) is not this hub's.
    return f && typeof f.id === 'string' && typeof f.secret === 'string' && f.base === API_BASE ? f : null;
  } catch {
    return null;
  }
}
function saveFollower(f) {
  try { localStorage.setItem(FOLLOWER_KEY, JSON.stringify(f)); } catch { /* storage may be off */ }
}
function forgetFollower() {
  try { localStorage.removeItem(FOLLOWER_KEY); } catch { /* storage may be off */ }
  S.push.bills = new Set();
}

/** A request to the follow API; rejects like `api` (with `status` and the hub's `code`). */
async function followApi(method, path, { body, secret } = {}) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (secret) headers.authorization = `Bearer ${secret}`;
  const r = await fetch(`${API_BASE}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  if (!r.ok) {
    let b = null;
    try { b = await r.json(); } catch { /* not JSON */ }
    const err = new Error((b && b.message) || `HTTP ${r.status}`);
    err.status = r.status;
    err.code = b && b.code;
    throw err;
  }
  return r.status === 204 ? null : r.json();
}
const followerPath = (f, bill) => `/v1/followers/${encodeURIComponent(f.id)}${bill ? `/bills/${encodeURIComponent(bill)}` : ''}`;

/** base64url (no padding) to bytes: the form `applicationServerKey` takes. */
function fromBase64Url(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}
function sameBytes(a, b) {
  if (!a || !b) return false;
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** The service worker's push subscription for `key`, made anew if it was for another key. */
async function pushSubscription(key) {
  const reg = await navigator.serviceWorker.register('/sw.js');
  await navigator.serviceWorker.ready;
  const appKey = fromBase64Url(key);
  let sub = await reg.pushManager.getSubscription();
  if (sub && !sameBytes(sub.options && sub.options.applicationServerKey, appKey)) {
    // The hub's key changed: a subscription for the old one would be refused.
    await sub.unsubscribe().catch(() => {});
    sub = null;
  }
  return sub || reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: appKey });
}

/** Adds `id` to this browser's follower, registering one if it has none (or the hub forgot it). */
async function pushBill(sub, id) {
  const channel = { type: 'webpush', subscription: sub.toJSON() };
  const f = loadFollower();
  if (f) {
    try {
      if (f.endpoint !== sub.endpoint) {
        await followApi('PATCH', followerPath(f), { body: { channel }, secret: f.secret });
        saveFollower({ ...f, endpoint: sub.endpoint });
      }
      const ans = await followApi('PUT', followerPath(f, id), { secret: f.secret });
      S.push.bills = new Set(ans.bills || []);
      return;
    } catch (err) {
      if (err.status !== 404) throw err;
      forgetFollower(); // unknown_follower: register again, below
    }
  }
  const ans = await followApi('POST', '/v1/followers', { body: { lang, channel, bills: [id] } });
  saveFollower({ id: ans.id, secret: ans.secret, endpoint: sub.endpoint, base: API_BASE });
  S.push.bills = new Set(ans.bills || [id]);
}

/** Runs `step` after the queued ones; a failure is logged and does not stop the queue. */
function queuePush(step) {
  pushQueue = pushQueue.then(step).catch((err) => console.warn('sapha (notifications):', err.status || '', err.message));
  return pushQueue;
}

/** Turns notifications on for a followed bill; call it from a click. */
function enablePush(id) {
  const P = S.push;
  if (!pushSupported()) {
    P.status = 'unsupported';
    return;
  }
  if (P.key === null) return; // the hub sends no notifications: the card says so
  if (Notification.permission === 'denied') {
    P.status = 'denied';
    return;
  }
  if (P.key === undefined && !pushStarted && Notification.permission !== 'granted') {
    // The hub's key is not known yet (not asked on load: see `initPush`). Asking
    // for the permission now could be for a hub that sends nothing: find out
    // first; the bill's card then offers a button when the hub does.
    initPush();
    return;
  }
  initPush();
  // Asked now, inside the click.
  const asked = Notification.permission === 'granted' ? Promise.resolve('granted') : Notification.requestPermission();
  P.pending.add(id);
  P.errors.delete(id);
  schedule();
  queuePush(async () => {
    try {
      const key = await pushKeyReady;
      if (!key) return;
      const perm = await asked;
      if (perm !== 'granted') {
        P.status = perm === 'denied' ? 'denied' : 'dismissed';
        return;
      }
      if (!S.followed.includes(id)) return; // unfollowed meanwhile
      const sub = await pushSubscription(key);
      await pushBill(sub, id);
      P.status = 'on';
    } catch (err) {
      P.errors.set(id, err.message || String(err));
      throw err;
    } finally {
      P.pending.delete(id);
      schedule();
    }
  });
}

/** Stops the notifications of an unfollowed bill. */
function disablePush(id) {
  S.push.errors.delete(id);
  // The follower is read when the step runs: a follow queued before may be registering it.
  queuePush(async () => {
    const f = loadFollower();
    if (!f || S.followed.includes(id)) return; // no follower, or followed again meanwhile
    try {
      const ans = await followApi('DELETE', followerPath(f, id), { secret: f.secret });
      S.push.bills = new Set(ans.bills || []);
    } catch (err) {
      if (err.status === 404) forgetFollower();
      else throw err;
    } finally {
      schedule();
    }
  });
}

/** Tells the hub the page's language changed: notifications come in the new one. */
function pushLanguage() {
  const to = lang;
  queuePush(async () => {
    const f = loadFollower();
    if (!f) return;
    try {
      await followApi('PATCH', followerPath(f), { body: { lang: to }, secret: f.secret });
    } catch (err) {
      if (err.status === 404) forgetFollower();
      else throw err;
    }
  });
}

/**
 * On load: asks the hub for its key, and, when this browser is a follower, which
 * bills it is notified of. It also brings the hub up to date with what changed
 * while the page was closed: the language, or the push subscription (a browser
 * may drop one; with the permission granted, a new one needs no click).
 */
let pushStarted = false;
function initPush() {
  if (pushStarted) return;
  pushStarted = true;
  const P = S.push;
  if (!pushSupported()) {
    P.status = 'unsupported';
    return;
  }
  // Messages from the service worker: a notification was clicked.
  navigator.serviceWorker.addEventListener('message', (e) => {
    if (e.data && e.data.type === 'sapha.open') openBill(e.data.bill_id);
  });
  navigator.serviceWorker.startMessages();
  pushKeyReady = followApi('GET', '/v1/push/key')
    .then((ans) => (ans && typeof ans.vapid_public_key === 'string' && ans.vapid_public_key) || null)
    // 503 notifications_off, or a hub without the follow API (404): no
    // notifications, and the cards say so; nothing to log.
    .catch(() => null);
  queuePush(async () => {
    P.key = await pushKeyReady;
    const f = loadFollower();
    P.status = !P.key ? 'off' : Notification.permission === 'denied' ? 'denied' : 'ready';
    schedule();
    if (!P.key || !f || Notification.permission !== 'granted') return;
    let ans;
    try {
      ans = await followApi('GET', followerPath(f), { secret: f.secret });
    } catch (err) {
      if (err.status === 404) forgetFollower();
      else throw err;
      return;
    }
    P.bills = new Set(ans.bills || []);
    P.status = 'on';
    schedule();
    if (ans.lang !== lang) await followApi('PATCH', followerPath(f), { body: { lang }, secret: f.secret });
    const sub = await pushSubscription(P.key);
    if (sub.endpoint !== f.endpoint) {
      await followApi('PATCH', followerPath(f), { body: { channel: { type: 'webpush', subscription: sub.toJSON() } }, secret: f.secret });
      saveFollower({ ...f, endpoint: sub.endpoint });
    }
  });
}
// The hub's push key is asked for on load only when this browser may use it:
// it follows bills, is a follower, or allowed notifications before. A first
// visit (the demo) asks nothing: a hub without a notifier answers 503, which
// the browser would log as an error on every load. A first follow asks then.
if (S.followed.length || loadFollower() || (pushSupported() && Notification.permission === 'granted')) initPush();

// ---- rendering ---------------------------------------------------------------------

/** Builds an element; children are nodes or strings (always set as text, never as HTML). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function schedule() {
  if (pending) return;
  pending = true;
  // A timer rather than requestAnimationFrame: it also runs in background tabs,
  // and it coalesces a burst of replayed events into one render.
  setTimeout(() => {
    pending = false;
    render();
  }, 40);
}

function render() {
  renderStatic();
  renderToday();
  renderSitting();
  renderVote();
  renderBrowse();
  renderFollowed();
  renderSittingList();
  renderBills();
  renderFeed();
  renderConn();
  keepOpenedInView();
}

function renderStatic() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const b of document.querySelectorAll('.lang button')) b.setAttribute('aria-pressed', String(b.dataset.lang === lang));
  document.getElementById('today-tz').textContent = t('tz');
  document.title = `Sapha · ${t('app_title')}`;
}

/**
 * The day a sitting panel is dated by: the day the sitting opened, else (before
 * it opens: scheduled, agenda published) the day of its newest event.
 */
function sittingDayMs(s) {
  return s ? s.openedAt ?? s.lastAt : null;
}

/** The header shows the calendar date; the note says when the panels are about other days. */
function renderToday() {
  const el = document.getElementById('today-date');
  const note = document.getElementById('replay-note');
  const now = Date.now();
  el.textContent = fmt('full').format(new Date(now));
  el.dataset.day = dayKey(now);
  const s = S.current && S.sittings.get(S.current);
  const days = [sittingDayMs(s), S.billsDayMs].filter((ms) => ms != null);
  const replay = days.some((ms) => dayKey(ms) !== dayKey(now));
  note.hidden = !replay;
  if (replay) note.textContent = t('replay', { d: fmt('full').format(new Date(now)) });
  const notice = document.getElementById('notice');
  notice.hidden = !S.gap && !S.apiDown;
  if (S.gap) notice.textContent = t('gap', { s: S.gap.firstSeq });
  else if (S.apiDown) notice.textContent = t('state_down', { url: API_BASE || location.origin, e: S.apiDown });
}

function initials(person) {
  const name = text(person && person.name) || '?';
  return name.trim().slice(0, lang === 'th' ? 1 : 2).toUpperCase();
}

/**
 * Whether a sitting is in progress (open, suspended or in camera), over
 * (closed or cancelled), or still to come (scheduled, agenda published):
 * the sitting panel's heading says which.
 */
function sittingTense(s) {
  if (!s || !s.phase || s.phase === 'scheduled' || s.phase === 'agenda_published') return 'next';
  return s.phase === 'closed' || s.phase === 'cancelled' ? 'closed' : 'live';
}
const TENSE_HEADING = { live: 'sitting_h', closed: 'sitting_h_closed', next: 'sitting_h_next' };

function renderSitting() {
  const body = document.getElementById('sitting-body');
  const heading = document.getElementById('sitting-h');
  const s = S.current && S.sittings.get(S.current);
  // With no sitting at all the panel keeps its "in progress" heading and says there is none.
  const tense = s ? sittingTense(s) : 'live';
  heading.textContent = t(TENSE_HEADING[tense]);
  heading.dataset.tense = tense;
  if (!s) {
    delete body.dataset.sitting;
    body.replaceChildren(h('p', { class: 'empty' }, t('no_sitting')));
    return;
  }
  body.dataset.sitting = s.id;
  const phase = PHASES[s.phase] || [s.phase || '—', s.phase || '—', 'idle'];
  const dayMs = sittingDayMs(s);
  const head = h('div', { class: 'head' },
    h('span', { class: `chip ${s.chamber}` }, L(CHAMBERS[s.chamber], s.chamber)),
    h('span', { class: `chip ${phase[2]}`, 'data-testid': 'sitting-phase', 'data-phase': s.phase || '' }, L(phase)),
    s.openedAt ? h('span', { class: 'chip idle' }, t('opened_at', { t: showWhen(s.openedAt, 'instant', dayMs) })) : null,
    h('span', { class: 'chip idle id', title: 'sitting id' }, s.id));
  const date = dayMs != null
    ? h('div', { class: 'date', 'data-testid': 'sitting-date', 'data-day': dayKey(dayMs), 'data-kind': s.openedAt != null ? 'opened' : 'updated' },
      t(s.openedAt != null ? 'sitting_date' : 'sitting_updated', { d: fmt('full').format(new Date(dayMs)) }))
    : null;
  const title = h('div', { class: 'title' }, text(s.title) || L(CHAMBERS[s.chamber], s.id));

  const facts = h('dl', { class: 'facts' });
  if (s.inCamera) {
    body.replaceChildren(head, date, title, h('div', { class: 'in-camera', 'data-testid': 'in-camera' }, t('in_camera')));
    return;
  }
  // The agenda item.
  let item;
  if (s.item && !s.item.ended) {
    item = [
      h('div', {}, h('span', { class: 'chip' }, L(CATEGORIES[s.item.category], s.item.category))),
      h('div', { class: 'item-title', 'data-testid': 'agenda-item' }, text(s.item.title) || L(CATEGORIES[s.item.category], s.item.category)),
      s.item.section ? h('div', { class: 'small' }, t('section', { s: s.item.section })) : null,
      s.item.billId ? h('div', { class: 'small' }, t('bill_ref', { id: s.item.billId })) : null,
    ];
  } else if (s.item) {
    item = [h('div', { class: 'small', 'data-testid': 'agenda-item' }, `${text(s.item.title) || L(CATEGORIES[s.item.category])} — ${t('item_ended', { d: L(DISPOSITIONS[s.item.ended], s.item.ended) })}`)];
  } else {
    item = [h('div', { class: 'small', 'data-testid': 'agenda-item' }, t('no_item'))];
  }
  facts.append(h('dt', {}, t('agenda')), h('dd', {}, item));

  // Who has the floor.
  const sp = s.speaker;
  facts.append(h('dt', {}, t('floor')), h('dd', {},
    sp
      ? h('div', { class: 'speaker', 'data-testid': 'speaker' }, h('span', { class: 'avatar' }, initials(sp.person)),
        h('div', {}, h('div', { class: 'item-title' }, text(sp.person && sp.person.name)), h('div', { class: 'small' }, `${L(ROLES[sp.role], sp.role)} · ${showWhen(sp.at, 'instant', dayMs)}`)))
      : h('div', { class: 'speaker none', 'data-testid': 'speaker' }, h('span', { class: 'avatar' }, '–'), h('span', { class: 'small' }, t('nobody')))));

  if (s.chair) {
    const name = text(s.chair.person && s.chair.person.name);
    const office = text(s.chair.office);
    facts.append(h('dt', {}, t('chair')), h('dd', {}, h('div', {}, name || office),
      office && office !== name ? h('div', { class: 'small' }, office) : null));
  }

  // The quorum.
  let quorum;
  if (s.quorum) {
    const q = s.quorum;
    const scale = Math.max(q.present, q.required) * 1.1 || 1;
    quorum = h('div', { class: 'quorum', 'data-testid': 'quorum', 'data-present': q.present, 'data-required': q.required },
      h('div', { class: 'qline' }, h('span', { class: `chip ${q.met ? 'ok' : 'bad'}` }, q.met ? t('quorum_met') : t('quorum_not_met')), ' ',
        h('span', { class: 'num' }, t('quorum_line', { p: q.present, r: q.required })), ' ',
        // s.120: half of the members in office, not of the seats.
        q.inOffice ? h('span', { class: 'muted', 'data-testid': 'in-office' }, t('in_office', { n: q.inOffice }), ' ') : null,
        h('span', { class: 'small num' }, '· ', timeEl(q.at, t('quorum_at', { t: showWhen(q.at, 'instant', dayMs) }), 'quorum-time'))),
      (() => {
        const bar = h('div', { class: 'qbar' }, h('div', { class: `fill${q.met ? '' : ' notmet'}` }), h('div', { class: 'req' }));
        bar.firstChild.style.width = `${(100 * q.present) / scale}%`;
        bar.lastChild.style.left = `${(100 * q.required) / scale}%`;
        return bar;
      })());
  } else {
    quorum = h('div', { class: 'small', 'data-testid': 'quorum' }, t('quorum_unknown'));
  }
  facts.append(h('dt', {}, t('quorum')), h('dd', {}, quorum));

  if (s.motion && s.motion.status === 'moved') {
    facts.append(h('dt', {}, t('motion')), h('dd', {}, text(s.motion.text)));
  }
  body.replaceChildren(head, date, title, facts);
}

/** Sums the counts of a vote: by option, by group, and by option and group. */
function tally(counts) {
  const byOption = {};
  const byGroup = {};
  const cell = {};
  let total = 0;
  for (const c of counts || []) {
    const g = c.group || '';
    if (g) byGroup[g] = (byGroup[g] || 0) + c.value;
    cell[`${g}:${c.option}`] = (cell[`${g}:${c.option}`] || 0) + c.value;
    if (!CHAMBER_GROUPS.has(g)) continue;
    byOption[c.option] = (byOption[c.option] || 0) + c.value;
    total += c.value;
  }
  return { byOption, byGroup, cell, total };
}

/**
 * A vote's tally against its machine-readable threshold (proto/src/vote.rs, the
 * same rule): every part must hold. Returns { verdict: 'met' | 'failed' | 'open',
 * parts: [{ group, got, need }] }, 'open' when the tally has no line for a group
 * a part needs.
 */
function checkThreshold(threshold, counts, casting) {
  const count = (group, option) => {
    const lines = (counts || []).filter((c) => (group ? c.group === group : CHAMBER_GROUPS.has(c.group || '')));
    return lines.length ? lines.filter((c) => c.option === option).reduce((n, c) => n + c.value, 0) : null;
  };
  let verdict = 'met';
  const parts = [];
  for (const p of threshold.parts || []) {
    const [aye, no, abstain] = ['aye', 'no', 'abstain'].map((o) => count(p.group, o));
    if (aye === null) {
      verdict = verdict === 'failed' ? verdict : 'open';
      parts.push({ group: p.group, got: null, need: null });
      continue;
    }
    let need;
    if (p.base === 'majority') {
      need = no + 1 - (casting === 'aye' ? 1 : 0);
    } else {
      const base = p.base === 'votes_cast' ? aye + no + abstain : p.members_in_office;
      const share = base * p.numerator;
      need = p.compare === 'more_than' ? Math.floor(share / p.denominator) + 1 : Math.ceil(share / p.denominator);
    }
    parts.push({ group: p.group, got: aye, need });
    if (aye < need) verdict = 'failed';
  }
  return { verdict, parts };
}

let voteDom = null; // { key, root, bars } kept while the same vote is shown, so bars animate

/**
 * The vote card shows the newest vote of the sitting the sitting panel shows,
 * never one of another sitting; the earlier votes, of any sitting, are listed
 * below it with their sitting and date.
 */
function renderVote() {
  const body = document.getElementById('vote-body');
  const key = S.current && S.voteOrder.findLast((k) => S.votes.get(k)?.sittingId === S.current);
  const v = key && S.votes.get(key);
  if (!v) {
    voteDom = null;
    body.replaceChildren(h('p', { class: 'empty', 'data-testid': 'no-vote' }, t(S.current ? 'no_vote_sitting' : 'no_vote')));
    renderEarlierVotes(null);
    return;
  }
  const tl = tally(v.counts);
  const options = OPTION_ORDER.filter((o) => ['aye', 'no', 'abstain'].includes(o) || tl.byOption[o] !== undefined);
  const groups = ['house', 'senate'].filter((g) => tl.byGroup[g] !== undefined || (v.chamber === 'joint' && !v.counts));
  const shape = `${v.key}|${lang}|${options}|${groups}`;
  if (!voteDom || voteDom.shape !== shape) {
    voteDom = buildVote(v, options, groups, shape);
    body.replaceChildren(voteDom.root);
    // Start from zero and let the widths transition to the counts.
    void voteDom.root.offsetWidth;
  }
  updateVote(voteDom, v, tl, options, groups);
  renderEarlierVotes(v.key);
}

function buildVote(v, options, groups, shape) {
  const status = h('div', { class: 'status' });
  const question = h('div', { class: 'question' });
  const meta = h('div', { class: 'meta' });
  const rows = {};
  const tallyEl = h('div', { class: 'tally', 'data-testid': 'tally' });
  for (const o of options) {
    const segs = {};
    const track = h('div', { class: 'track' });
    for (const g of groups.length ? groups : ['']) {
      segs[g] = h('div', { class: `seg ${o} ${g}`, title: g ? `${L(OPTIONS[o])} · ${L(GROUPS[g])}` : L(OPTIONS[o]) });
      track.append(segs[g]);
    }
    const value = h('div', { class: 'value', 'data-total-option': o }, '0');
    tallyEl.append(h('div', { class: 'row' }, h('div', { class: 'label' }, L(OPTIONS[o]), h('small', {}, o === 'not_voting' ? '' : '')), track, value));
    rows[o] = { segs, value, track };
  }
  const legend = groups.length
    ? h('div', { class: 'legend' }, groups.map((g) => h('span', {}, h('span', { class: `sw ${g}` }), L(GROUPS[g]))))
    : null;
  const groupRows = {};
  let groupsEl = null;
  if (groups.length) {
    groupsEl = h('div', { class: 'groups', 'data-testid': 'groups' }, h('h3', {}, t('by_group')));
    for (const g of groups) {
      const segs = {};
      const track = h('div', { class: 'track' });
      for (const o of options) {
        segs[o] = h('div', { class: `seg ${o}`, 'data-cell': `${g}:${o}`, title: `${L(GROUPS[g])} · ${L(OPTIONS[o])}` });
        track.append(segs[o]);
      }
      const value = h('div', { class: 'value', 'data-group-total': g }, '0');
      const nums = h('div', { class: 'nums' });
      groupsEl.append(h('div', { class: 'group-row' }, h('div', {}, L(GROUPS[g])), track, value, nums));
      groupRows[g] = { segs, value, nums };
    }
  }
  const root = h('div', { 'data-testid': 'vote-card', 'data-vote': v.key }, question, meta, status, tallyEl, legend, groupsEl);
  return { shape, root, status, question, meta, rows, groupRows };
}

/** "Threshold check: met · all 472 ≥ 366 · Senators 149 ≥ 84". */
function thresholdEl(check) {
  const parts = check.parts.map((p) => {
    const who = p.group ? L(GROUPS[p.group], p.group) : t('part_whole');
    return p.got === null ? `${who} ?` : `${who} ${p.got} ${p.got >= p.need ? '≥' : '<'} ${p.need}`;
  });
  const word = t(check.verdict === 'met' ? 'threshold_met' : check.verdict === 'failed' ? 'threshold_failed' : 'threshold_open');
  return h('span', { 'data-testid': 'threshold', 'data-verdict': check.verdict }, `${t('threshold')}: ${word} · ${parts.join(' · ')}`);
}

function updateVote(dom, v, tl, options, groups) {
  dom.root.dataset.status = v.result ? 'decided' : v.counts ? 'counted' : 'counting';
  dom.root.dataset.totalCast = String(tl.total);
  dom.question.textContent = text(v.question) || `${L(CHAMBERS[v.chamber])} · ${v.voteId}`;
  dom.meta.replaceChildren(...[
    h('span', {}, `${L(CHAMBERS[v.chamber])} · ${showDate(v.openedAt)}`),
    v.method ? h('span', {}, t('method', { m: L(METHODS[v.method], v.method) })) : null,
    v.requirement ? h('span', {}, t('requirement', { r: text(v.requirement) })) : null,
    v.threshold && v.counts ? thresholdEl(checkThreshold(v.threshold, v.counts, v.casting)) : null,
    v.billId ? h('span', {}, t('bill_ref', { id: v.billId })) : null,
  ].filter(Boolean));
  const chip = v.result
    ? h('span', { class: `chip ${v.result === 'passed' ? 'ok' : 'bad'}`, 'data-testid': 'vote-result' }, t(v.result))
    : v.counts
      ? h('span', { class: 'chip idle' }, t('counted'))
      : h('span', { class: 'chip warn' }, t('counting'));
  // When the vote was taken, next to its count (the quorum shows when it was counted).
  const when = v.closedAt !== null
    ? timeEl(v.closedAt, t('vote_at', { t: showTime(v.openedAt) === showTime(v.closedAt) ? showTime(v.closedAt) : `${showTime(v.openedAt)}–${showTime(v.closedAt)}` }), 'vote-time')
    : timeEl(v.openedAt, t('vote_since', { t: showTime(v.openedAt) }), 'vote-time');
  dom.status.replaceChildren(chip, h('span', { class: 'big num' }, t('total_cast', { n: tl.total.toLocaleString(lang === 'th' ? 'th-TH' : 'en-GB') })),
    h('span', { class: 'when num' }, '· ', when));
  // Bars by option share one scale: the largest option fills the track.
  const scale = Math.max(1, ...options.map((o) => tl.byOption[o] || 0));
  for (const o of options) {
    const row = dom.rows[o];
    row.track.classList.toggle('counting', !v.counts);
    row.value.textContent = String(tl.byOption[o] || 0);
    for (const [g, seg] of Object.entries(row.segs)) {
      const n = g ? tl.cell[`${g}:${o}`] || 0 : tl.byOption[o] || 0;
      seg.style.width = `${(100 * n) / scale}%`;
      seg.dataset.value = String(n);
    }
  }
  for (const g of groups) {
    const gr = dom.groupRows[g];
    const gt = tl.byGroup[g] || 0;
    gr.value.textContent = String(gt);
    gr.nums.textContent = options.map((o) => `${L(OPTIONS[o])} ${tl.cell[`${g}:${o}`] || 0}`).join(' · ');
    for (const o of options) {
      const n = tl.cell[`${g}:${o}`] || 0;
      gr.segs[o].style.width = gt ? `${(100 * n) / gt}%` : '0%';
      gr.segs[o].dataset.value = String(n);
    }
  }
}

function renderEarlierVotes(currentKey) {
  const el = document.getElementById('vote-earlier');
  const earlier = S.voteOrder.filter((k) => k !== currentKey).slice(-4).reverse().map((k) => S.votes.get(k)).filter(Boolean);
  if (earlier.length === 0) {
    el.replaceChildren();
    return;
  }
  el.replaceChildren(h('h3', {}, t('earlier_votes')), h('ul', {}, earlier.map((v) => {
    const tl = tally(v.counts);
    const nums = ['aye', 'no', 'abstain'].map((o) => `${L(OPTIONS[o])} ${tl.byOption[o] || 0}`).join(' · ');
    // Which sitting and when: the list mixes sittings (and years, in a replay).
    const where = v.sittingId === S.current ? t('this_sitting') : L(CHAMBERS[v.chamber], v.chamber);
    const when = v.openedAt != null ? ` · ${showDate(v.openedAt)} ${showTime(v.closedAt ?? v.openedAt)}` : '';
    return h('li', { 'data-vote': v.key, 'data-sitting': v.sittingId },
      h('span', {}, v.result ? h('span', { class: `chip ${v.result === 'passed' ? 'ok' : 'bad'}` }, t(v.result)) : null, ' ', text(v.question) || `${L(CHAMBERS[v.chamber])} · ${v.voteId}`),
      h('span', { class: 'mini' }, nums),
      h('span', { class: 'mini where', 'data-testid': 'earlier-where' }, `${where}${when}`));
  })));
}

/** A bill's card: title, its latest move, and a progress indicator along its type's path. */
function billCard(b, { followed = false, dayMs = null } = {}) {
  const path = PATHS[b.type] || PATHS.act;
  // Furthest point of the path reached so far.
  let reached = -1;
  for (const m of b.moves) reached = Math.max(reached, path.indexOf(m.to));
  const at = path.indexOf(b.stage);
  const current = at >= 0 ? at : reached;
  const endedBad = ENDED_BAD.has(b.stage);
  const endedOk = b.stage === ENDED_OK[b.type];
  const progress = h('div', {
    class: `progress${endedBad ? ' ended-bad' : ''}${endedOk ? ' ended-ok' : ''}`,
    role: 'img',
    'aria-label': `${L(STAGES[b.stage], b.stage)} — ${t('stage_of', { i: current + 1, n: path.length })}`,
  }, path.map((st, i) => h('span', { class: `step${i < current ? ' done' : ''}${i === current ? ' current' : ''}`, title: L(STAGES[st], st) })));
  const last = b.moves[b.moves.length - 1];
  const flash = S.flash.get(b.id);
  const card = h('article', {
    class: `bill${flash && Date.now() - flash < 1500 ? ' flash' : ''}`,
    'data-bill': b.id,
    'data-stage': b.stage || '',
    'data-progress': String(current),
  },
  h('div', { class: 'top-line' },
    h('span', {}, h('span', { class: 'chip' }, L(BILL_TYPES[b.type], b.type || '')), ' ', h('span', { class: 'id' }, b.id)),
    followed ? h('button', { class: 'unfollow', type: 'button', title: t('unfollow'), 'aria-label': `${t('unfollow')} ${b.id}`, onclick: () => unfollow(b.id) }, '×') : null),
  h('div', { class: 'btitle' }, text(b.title) || b.id),
  last ? h('div', { class: 'move' },
    last.from ? h('span', {}, L(STAGES[last.from], last.from)) : null,
    last.from ? h('span', { class: 'arrow' }, '→') : null,
    h('strong', { 'data-testid': 'bill-stage' }, L(STAGES[last.to], last.to)),
    ' ', h('span', { class: 'when' }, `· ${showWhen(last.at, last.precision, dayMs)}`)) : null,
  last && last.note ? h('div', { class: 'when' }, text(last.note)) : null,
  progress,
  h('div', { class: 'progress-label' }, h('span', {}, L(STAGES[path[0]])), h('span', {}, t('stage_of', { i: current + 1, n: path.length })), h('span', {}, L(STAGES[path[path.length - 1]]))));
  return card;
}

/** A followed bill's timeline, oldest first: each stage it reached, when, and the vote that moved it. */
function timelineEl(b) {
  return h('ol', { class: 'timeline', 'data-testid': 'timeline', 'data-count': b.moves.length },
    b.moves.map((m) => h('li', { 'data-to': m.to },
      h('time', { datetime: Number.isFinite(m.at) ? new Date(m.at).toISOString() : '' }, Number.isFinite(m.at) ? showWhen(m.at, m.precision, null) : '—'),
      h('span', {}, h('strong', {}, L(STAGES[m.to], m.to)),
        m.deemed ? h('span', { class: 'small' }, ` · ${t('deemed')}`) : null,
        m.decidedBy ? h('span', { class: `chip ${m.decidedBy.result === 'passed' ? 'ok' : 'bad'}` }, t('decided_by', { r: t(m.decidedBy.result) })) : null,
        m.deadline ? h('span', { class: 'small' }, ` · ${t('deadline', { d: showDate(Date.parse(`${m.deadline}T00:00:00+07:00`)) })}`) : null))));
}

/** Whether a followed bill's notifications are on, and if not why: one of S.push's statuses, per bill. */
function pushStateOf(id) {
  const P = S.push;
  if (P.bills.has(id) && P.status === 'on') return 'on';
  if (P.pending.has(id)) return 'working';
  if (['checking', 'unsupported', 'off', 'denied'].includes(P.status)) return P.status;
  if (P.errors.has(id)) return 'error';
  if (P.status === 'dismissed') return 'dismissed';
  return 'available';
}

/** A followed bill's line about notifications; a button when a click can turn them on. */
function pushNote(id) {
  const state = pushStateOf(id);
  if (state === 'checking') return null;
  const button = ['available', 'dismissed', 'error'].includes(state)
    ? h('button', { type: 'button', class: 'push-on', 'data-push-on': id, onclick: () => enablePush(id) }, t('push_turn_on'))
    : null;
  const label = state === 'available' ? null : t(`push_${state}`, { e: S.push.errors.get(id) || '' });
  return h('div', { class: `push ${state}`, 'data-testid': 'push', 'data-push': state, role: 'status' }, label, button);
}

function renderFollowed() {
  const list = document.getElementById('follow-list');
  list.replaceChildren(...S.followed.map((id) => {
    const b = S.bills.get(id);
    let card;
    if (b && b.moves.length) {
      card = billCard(b, { followed: true });
      card.querySelector('.top-line').after(pushNote(id) || '');
      card.append(h('details', { class: 'tl', open: true }, h('summary', {}, t('timeline')), timelineEl(b)));
    } else {
      const msg = S.loading.has(id) ? t('loading_bill', { id }) : S.unknown.has(id) ? t('not_found_bill', { id }) : t('waiting_bill', { id });
      card = h('article', { class: 'bill', 'data-bill': id, 'data-stage': '' },
        h('div', { class: 'top-line' }, h('span', { class: 'id' }, id),
          h('button', { class: 'unfollow', type: 'button', title: t('unfollow'), 'aria-label': `${t('unfollow')} ${id}`, onclick: () => unfollow(id) }, '×')),
        pushNote(id),
        h('p', { class: 'empty' }, msg));
    }
    if (S.opened === id) card.dataset.opened = 'true';
    return card;
  }));
}

/**
 * The bill opened by ?bill= or a notification stays at the top of the screen
 * while the panels above it fill in (the live sitting, the bills, the list of
 * sittings: on a phone they are a screen or two high). Scrolling once is not
 * enough: the panels grow after it, and every render replaces their nodes, which
 * defeats the browser's own scroll anchoring. It lets go as soon as the reader
 * scrolls, touches, clicks or types.
 */
function keepOpenedInView() {
  if (!S.pinned) return;
  const el = document.querySelector(`#follow-list [data-bill="${S.pinned}"]`);
  // 8 px: the card's `scroll-margin-top` (dashboard.css), a little air above it.
  if (el && Math.abs(el.getBoundingClientRect().top - 8) > 1) el.scrollIntoView({ block: 'start' });
}
for (const type of ['wheel', 'touchstart', 'pointerdown', 'keydown']) {
  addEventListener(type, () => { S.pinned = null; }, { capture: true, passive: true });
}
// The layout also changes without a render (fonts, the bars' transitions).
new ResizeObserver(() => keepOpenedInView()).observe(document.body);

/** A title with the part the search matched marked (`match.start/end`, code points). */
function markedTitle(item) {
  const m = item.match;
  const field = m && typeof m.field === 'string' ? m.field.split('.')[1] : null;
  const full = field && item.title ? item.title[field] : null;
  if (!full || !(m.end > m.start)) return [text(item.title) || item.bill_id];
  // Code points, as the hub counts them (the same as string indices for Thai and English).
  const cps = [...full];
  const before = cps.slice(0, m.start).join('');
  const hit = cps.slice(m.start, m.end).join('');
  const after = cps.slice(m.end).join('');
  const other = field !== lang && text(item.title) !== full ? h('div', { class: 'small' }, text(item.title)) : null;
  return [h('span', { lang: field }, before, h('mark', { 'data-testid': 'match' }, hit), after), other];
}

function renderBrowse() {
  const status = document.getElementById('browse-status');
  const list = document.getElementById('browse-results');
  const br = S.browse;
  for (const b of document.querySelectorAll('[data-preset]')) b.setAttribute('aria-pressed', String(br.preset === b.dataset.preset));
  list.setAttribute('aria-busy', String(br.busy));
  const moreEl = document.getElementById('browse-more');
  if (moreEl) moreEl.hidden = true;
  if (br.error) {
    status.textContent = t('browse_error', { e: br.error });
    list.replaceChildren();
    return;
  }
  const a = br.answer;
  if (!a) {
    status.textContent = br.busy ? t('searching') : '';
    list.replaceChildren();
    return;
  }
  const items = a.items || [];
  status.textContent = br.busy ? t('searching')
    : items.length === 0 ? (a.q ? t('found_none', { q: a.q }) : t('list_none'))
      : a.total > items.length ? t('found_some', { n: a.total, k: items.length }) : t('found', { n: a.total ?? items.length });
  list.dataset.query = a.q || '';
  list.dataset.preset = a.preset || '';
  // Titles shown more than once (the same law amended by several bills).
  const alike = new Map();
  for (const it of items) alike.set(text(it.title), (alike.get(text(it.title)) || 0) + 1);
  list.replaceChildren(...items.map((it) => {
    const followed = S.followed.includes(it.bill_id);
    return h('li', { class: 'result', 'data-result': it.bill_id, 'data-stage': it.stage },
      h('div', { class: 'top-line' },
        h('span', {}, h('span', { class: 'chip' }, L(BILL_TYPES[it.bill_type], it.bill_type || '')), ' ', h('span', { class: 'id' }, it.bill_id)),
        h('button', {
          type: 'button', class: `follow-btn${followed ? ' on' : ''}`, 'data-follow': it.bill_id, 'aria-pressed': String(followed),
          'aria-label': `${followed ? t('following') : t('follow_one')} ${it.bill_id}`,
          onclick: () => (S.followed.includes(it.bill_id) ? unfollow(it.bill_id) : follow(it.bill_id)),
        }, followed ? `✓ ${t('following')}` : `+ ${t('follow_one')}`)),
      h('div', { class: 'btitle', 'data-testid': 'result-title' }, markedTitle(it)),
      h('div', { class: 'small' }, h('strong', { 'data-testid': 'result-stage' }, L(STAGES[it.stage], text(it.stage_label) || it.stage)),
        it.since ? ` · ${t('since_d', { d: showDate(Date.parse(it.since)) })}` : '',
        it.proposer ? h('span', { 'data-testid': 'result-proposer' }, ` · ${L(PROPOSERS[it.proposer], it.proposer)}`) : null),
      alike.get(text(it.title)) > 1 ? h('div', { class: 'small alike', 'data-testid': 'result-alike' }, t('alike', { n: alike.get(text(it.title)) - 1, id: it.bill_id })) : null);
  }));
  // More pages: the state API's cursor.
  let more = document.getElementById('browse-more');
  if (!more) {
    more = h('button', { type: 'button', id: 'browse-more', class: 'more', onclick: () => moreBrowse() });
    list.after(more);
  }
  const left = Math.max(0, (a.total ?? items.length) - items.length);
  more.hidden = !a.next_cursor || left === 0;
  more.disabled = br.busy;
  more.textContent = t('more_results', { k: Math.min(BROWSE_LIMIT, left), n: left });
}

/**
 * "ครั้งที่ 28 · สมัยสามัญ ครั้งที่ 2 ปีที่ 4": each phrase in a span that does
 * not wrap (Thai line breaking put "ปี" and "ที่ 4" on two lines at 390 px).
 */
function sessionText(x) {
  const phrases = [];
  if (x.number) phrases.push([t('sitting_no', { n: x.number })]);
  if (x.session) phrases.push(t(x.session.kind === 'extraordinary' ? 'session_extraordinary' : 'session_ordinary', { n: x.session.number, y: x.session.year }).split(' | '));
  const out = [];
  phrases.forEach((parts, i) => {
    if (i) out.push(' · ');
    parts.forEach((p, k) => {
      if (k) out.push(' ');
      out.push(h('span', { class: 'nowrap' }, p));
    });
  });
  return out;
}

/** GET /v1/sittings: newest first, each with its day, chamber, number and session, and status. */
function renderSittingList() {
  const list = document.getElementById('sittings-list');
  const items = (S.sittingList && S.sittingList.items) || [];
  if (!items.length) {
    list.replaceChildren(h('li', { class: 'empty' }, t('sittings_none')));
    return;
  }
  list.replaceChildren(...items.map((x) => {
    const st = STATUSES[x.status] || [x.status, x.status, 'idle'];
    return h('li', { 'data-sitting': x.sitting_id, 'data-status': x.status, 'data-day': x.day },
      h('time', { class: 'day', datetime: x.day }, showDate(Date.parse(`${x.day}T00:00:00+07:00`))),
      h('span', { class: 'what' },
        h('span', { class: `chip ${x.chamber}` }, L(CHAMBERS[x.chamber], x.chamber)), ' ',
        h('span', { class: 'small' }, sessionText(x)), ' ',
        // Two sittings of one day (or a replay of one, in the demo) differ by id.
        h('span', { class: 'small id', 'data-testid': 'sitting-id' }, x.sitting_id)),
      h('span', { class: `chip ${st[2]}`, 'data-testid': 'sitting-status' }, L(st)));
  }));
}

/** The bills that moved on the day of the newest bill move, dated by that day. */
function renderBills() {
  const list = document.getElementById('bills-list');
  const count = document.getElementById('bills-count');
  const title = document.getElementById('bills-title');
  const dayMs = S.billsDayMs;
  if (dayMs === null) {
    title.textContent = t('bills_h');
    delete title.dataset.day;
    count.textContent = '';
    list.replaceChildren(h('p', { class: 'empty' }, t('feed_empty')));
    return;
  }
  const day = dayKey(dayMs);
  title.textContent = t('bills_h_on', { d: showDate(dayMs) });
  title.dataset.day = day;
  const moved = [...S.bills.values()]
    .filter((b) => b.moves.some((m) => dayKey(m.at) === day))
    .sort((a, b) => b.lastSeenOrder - a.lastSeenOrder);
  count.textContent = moved.length ? `(${moved.length})` : '';
  const cards = moved.slice(0, BILLS_LIST_MAX).map((b) => billCard(b, { dayMs }));
  if (moved.length > BILLS_LIST_MAX) cards.push(h('p', { class: 'more' }, t('more', { n: moved.length - BILLS_LIST_MAX })));
  list.replaceChildren(...cards);
}

/** One line of the feed, in the current language. */
/**
 * A bill's title, short: "ร่าง พ.ร.บ. ..." for "ร่างพระราชบัญญัติ...", and at
 * most 60 characters (the feed names the bill, it does not quote it).
 */
function shortTitle(title) {
  let s = text(title).replace(/^ร่างพระราชบัญญัติ/, 'ร่าง พ.ร.บ. ').replace(/\s*\(ฉบับที่ \.\.\)|\s*\(No\. \.\.\)|\s*(พ\.ศ\.|B\.E\.) \.\.\.\./g, '').trim();
  if ([...s].length > 60) s = `${[...s].slice(0, 59).join('')}…`;
  return s;
}
/** The question of the vote an event is about, when this page knows it. */
function voteQuestion(ev) {
  const d = ev.data || {};
  const v = d.sitting && S.votes.get(`${d.sitting.sitting_id}/${d.vote_id}`);
  return v && v.question ? text(v.question) : '';
}

function describe(ev) {
  const d = ev.data || {};
  const who = (p) => text(p && p.name);
  switch (ev.kind) {
    case 'sitting.lifecycle': {
      const base = L(PHASE_EVENTS[d.phase], d.phase);
      return d.outcome === 'no_quorum' ? `${base} (${lang === 'th' ? 'ไม่ครบองค์ประชุม' : 'no quorum'})` : base;
    }
    case 'sitting.quorum_checked':
      return `${t('quorum')}: ${t('quorum_line', { p: d.present, r: d.required })} — ${d.met ? t('quorum_met') : t('quorum_not_met')}`;
    case 'agenda.item_started':
      return `${L(CATEGORIES[d.category], d.category)}${d.title ? `: ${text(d.title)}` : ''}`;
    case 'agenda.item_ended':
      return `${lang === 'th' ? 'จบระเบียบวาระ' : 'agenda item finished'} (${L(DISPOSITIONS[d.disposition], d.disposition)})`;
    case 'agenda.section_considered':
      return t('section', { s: d.section_no });
    case 'floor.speech_started':
      return `${lang === 'th' ? 'อภิปราย' : 'speaking'}: ${who(d.person)}`;
    case 'floor.speech_ended':
      return `${lang === 'th' ? 'จบการอภิปราย' : 'finished'}: ${who(d.person)}`;
    case 'floor.chair_changed':
      return `${t('chair')}: ${who(d.person)}`;
    case 'motion.moved':
      return `${t('motion')}: ${text(d.text)}`;
    case 'motion.withdrawn':
      return `${t('motion')}: ${lang === 'th' ? 'ถอนญัตติ' : 'withdrawn'}`;
    case 'motion.decided':
      return `${t('motion')}: ${L(DECISIONS[d.decision], d.decision)}`;
    case 'vote.opened':
      return `${lang === 'th' ? 'เริ่มลงมติ' : 'vote opened'}${d.question ? `: ${text(d.question)}` : ''}`;
    case 'vote.closed': {
      const tl = tally(d.counts);
      const q = voteQuestion(ev);
      return `${lang === 'th' ? 'ปิดการลงมติ' : 'vote closed'}${q ? ` (${q})` : ''}: ${['aye', 'no', 'abstain'].map((o) => `${L(OPTIONS[o])} ${tl.byOption[o] || 0}`).join(', ')}`;
    }
    case 'vote.result': {
      const q = voteQuestion(ev);
      return `${lang === 'th' ? 'ผลการลงมติ' : 'result'}: ${t(d.result)}${q ? ` — ${q}` : ''}`;
    }
    case 'bill.stage_changed':
      return `${shortTitle(d.title) || d.bill_id}: ${L(STAGES[d.to_stage], d.to_stage)}`;
    default:
      return ev.kind;
  }
}

function renderFeed() {
  const list = document.getElementById('feed-list');
  if (S.feed.length === 0) {
    list.replaceChildren(h('li', { class: 'empty' }, t('feed_empty')));
    return;
  }
  // Newest first; a line shows its date when its day differs from the line above.
  list.replaceChildren(...S.feed.slice(0, 18).map(({ ev, at }, i, shown) => {
    const above = i > 0 ? shown[i - 1].at : null;
    const where = ev.data && ev.data.sitting ? L(CHAMBERS[ev.data.sitting.chamber]) : L(BILL_TYPES[ev.data && ev.data.bill_type], '');
    return h('li', {}, h('time', { datetime: ev.occurred_at }, showWhen(at, ev.precision, above)),
      h('span', {}, describe(ev), ' ', h('span', { class: 'k' }, `· ${where}`)));
  }));
}

function renderConn() {
  const el = document.getElementById('conn');
  const state = S.connState;
  el.dataset.state = state;
  let label = t(`conn_${state}`);
  el.dataset.api = S.apiDown ? 'down' : 'ok';
  if (state === State.LIVE && S.apiDown) label = t('conn_live_no_state');
  if (state === State.RECONNECTING) label = t('conn_reconnecting', { s: Math.max(0, Math.ceil((S.reconnectAt - Date.now()) / 1000)) });
  el.querySelector('.text').textContent = label;
  document.getElementById('conn-meta').textContent = t('conn_meta', { n: client ? client.stats.delivered : 0 });
}

// ---- wiring ------------------------------------------------------------------------

document.getElementById('follow-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = document.getElementById('follow-input');
  if (follow(input.value)) input.value = '';
});
document.getElementById('follow-input').addEventListener('input', () => {
  document.getElementById('follow-error').hidden = true;
  document.getElementById('follow-input').removeAttribute('aria-invalid');
});
document.getElementById('browse-form').addEventListener('submit', (e) => {
  e.preventDefault();
  browseSoon(0);
});
document.getElementById('bill-search').addEventListener('input', (e) => {
  S.browse.q = e.target.value.trim();
  if (S.browse.q) S.browse.preset = null;
  browseSoon();
});
for (const b of document.querySelectorAll('[data-preset]')) {
  b.addEventListener('click', () => {
    const on = S.browse.preset !== b.dataset.preset;
    S.browse.preset = on ? b.dataset.preset : null;
    if (on) {
      S.browse.q = '';
      document.getElementById('bill-search').value = '';
    }
    browseSoon(0);
  });
}
for (const b of document.querySelectorAll('.lang button')) {
  b.addEventListener('click', () => {
    const was = lang;
    lang = b.dataset.lang;
    try { localStorage.setItem(LANG_KEY, lang); } catch { /* storage may be off */ }
    if (lang !== was) pushLanguage();
    render();
  });
}
// The reconnect countdown and the "just moved" highlight need a tick of their own.
setInterval(() => {
  if (S.connState === State.RECONNECTING) renderConn();
}, 500);

render();
// The target of a notification (sw.js): /?bill=<id>.
if (params.get('bill')) openBill(params.get('bill'));

// For the browser test and for debugging from the console.
window.sapha = { client, state: S, apiBase: API_BASE, follow, unfollow, openBill, render, get followClient() { return followClient; } };
