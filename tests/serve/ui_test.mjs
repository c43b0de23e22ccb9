// The dashboard (/ui) in headless Chromium against a running align serve, as a reviewer
// would use it: the pipeline's five stages show, approving a pending item from the table
// moves it to approved (checked through the API, not only on the page), and a chat
// message gets a reply with its rail badge.  The page must not reach past the server.
//
//   ALIGN_URL=http://127.0.0.1:PORT   the server (required)
//   ALIGN_REVIEW_ID=N                 a pending item to approve (default: the first listed)
//   ALIGN_API_KEY=KEY                 when the server was started with --api-keys
//   ALIGN_SCREENSHOT=FILE.png         a full-page screenshot, taken on failure too
//   ALIGN_CHROMIUM=PATH               the browser (default Debian's /usr/bin/chromium)
//
// Exits 0 when every check passed, 1 with the reason otherwise, in 60 s at most.
import { chromium } from 'playwright-core';

const TIMEOUT_MS = 60_000;
const STAGES = ['pretrain', 'sft', 'reward_model', 'rl', 'aligned'];

const base = (process.env.ALIGN_URL || '').replace(/\/+$/, '');
const wantedId = process.env.ALIGN_REVIEW_ID || '';
const apiKey = process.env.ALIGN_API_KEY || '';
const screenshot = process.env.ALIGN_SCREENSHOT || '';
const executablePath = process.env.ALIGN_CHROMIUM || '/usr/bin/chromium';

class Failure extends Error {}
const fail = (msg) => { throw new Failure(msg); };
const log = (msg) => console.log(`ui_test: ${msg}`);

let browser = null;
let page = null;

async function apiGet(path) {
  const res = await fetch(base + path, { headers: apiKey ? { Authorization: `Bearer ${apiKey}` } : {} });
  const text = await res.text();
  if (!res.ok) fail(`GET ${path}: HTTP ${res.status}: ${text.slice(0, 200)}`);
  try { return JSON.parse(text); } catch { fail(`GET ${path}: not JSON: ${text.slice(0, 200)}`); }
}

const reviewIds = async (state) =>
  ((await apiGet(`/api/review?state=${state}`)).items || []).map((it) => String(it.id));

async function run() {
  if (!/^https?:\/\/[^/]+/.test(base)) fail('set ALIGN_URL to the server, e.g. http://127.0.0.1:8080');
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox'], headless: true });
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  if (apiKey) {
    await context.addInitScript((key) => localStorage.setItem('align.apiKey', key), apiKey);
  }
  page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);

  const pageErrors = [];
  const offsite = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') log(`browser console: ${m.text()}`); });
  page.on('request', (r) => {
    const url = r.url();
    if (!url.startsWith(base + '/') && !url.startsWith('data:')) offsite.push(url);
  });

  const res = await page.goto(`${base}/ui`, { waitUntil: 'domcontentloaded' });
  if (!res || !res.ok()) fail(`GET /ui: HTTP ${res ? res.status() : 'no response'}`);
  if (!/text\/html/.test(res.headers()['content-type'] || '')) {
    fail(`GET /ui: content-type ${res.headers()['content-type']}, not text/html`);
  }

  // the pipeline: five stage boxes in order
  await page.waitForSelector('#pipeline[data-loaded]');
  if ((await page.getAttribute('#pipeline', 'data-loaded')) !== 'ok') {
    fail(`the pipeline did not load: "${(await page.textContent('#pipeline')).trim()}"`);
  }
  const stages = await page.$$eval('#pipeline .stage', (els) => els.map((e) => e.dataset.stage));
  if (stages.join() !== STAGES.join()) fail(`pipeline stages ${JSON.stringify(stages)}, expected ${JSON.stringify(STAGES)}`);
  log(`pipeline: ${stages.join(' -> ')} (${await page.locator('#pipeline svg.chart').count()} charts)`);

  // the review queue: approve one pending item from its row
  await page.waitForSelector('#review-table[data-loaded]');
  if ((await page.getAttribute('#review-table', 'data-loaded')) !== 'ok') {
    fail(`the review queue did not load: "${(await page.textContent('#review-status')).trim()}"`);
  }
  const listed = await page.locator('tr.review-item').count();
  const count = (await page.textContent('#review-count')).trim();
  if (count !== String(listed)) fail(`#review-count says ${count}, the table has ${listed} rows`);
  let id = wantedId;
  if (!id) {
    if (!listed) fail('no pending review item to approve (set ALIGN_REVIEW_ID, or queue one first)');
    id = await page.locator('tr.review-item').first().getAttribute('data-id');
  }
  const row = page.locator(`tr.review-item[data-id="${id}"]`);
  if (!(await row.count())) fail(`review item ${id} is not in the pending table (${listed} listed)`);
  await row.locator('input.reason').fill('checked by ui_test');
  await row.locator('button.approve').click();
  await row.waitFor({ state: 'detached' });
  const pending = await reviewIds('pending');
  if (pending.includes(id)) fail(`item ${id} is still pending after Approve`);
  const approved = await reviewIds('approved');
  if (!approved.includes(id)) fail(`item ${id} is not among the approved (${approved.join(', ') || 'none'})`);
  log(`review: approved item ${id} from the dashboard`);

  // the chat: one message, one reply with the rails' verdict
  await page.fill('#chat-input', 'Hello! Tell me a short story about a kind robot.');
  await page.click('#chat-send');
  const answer = page.locator('.chat-reply:not(.pending):has(.rail-badge), .chat-error').first();
  await answer.waitFor();
  if (await answer.evaluate((e) => e.classList.contains('chat-error'))) {
    fail(`the chat failed: ${(await answer.textContent()).trim()}`);
  }
  const badges = await answer.locator('.rail-badge').allTextContents();
  const reply = (await answer.locator('.chat-text').textContent()).trim();
  log(`chat: reply of ${reply.length} chars, rails: ${badges.join('; ')}`);

  if (pageErrors.length) fail(`the page threw: ${pageErrors.join(' | ')}`);
  if (offsite.length) fail(`the page requested beyond the server: ${offsite.join(', ')}`);
  if (screenshot) {
    await page.screenshot({ path: screenshot, fullPage: true });
    log(`screenshot: ${screenshot}`);
  }
}

const timer = setTimeout(async () => {
  console.error(`ui_test: FAILED: timed out after ${TIMEOUT_MS / 1000} s`);
  if (screenshot && page) await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
  process.exit(1);
}, TIMEOUT_MS);

try {
  await run();
  log('ok');
  process.exitCode = 0;
} catch (e) {
  console.error(`ui_test: FAILED: ${e instanceof Failure ? e.message : (e && e.stack) || e}`);
  if (screenshot && page) await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
  process.exitCode = 1;
} finally {
  clearTimeout(timer);
  if (browser) await browser.close().catch(() => {});
}
