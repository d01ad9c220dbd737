// Real-browser test of the gateway web UI: signs in, generates texts, edits one, finds
// reference clips, makes a video, plays and downloads it, checks a validation message
// next to its field, and runs axe-core at desktop and phone widths.
//
// Run: node ui.test.mjs  (exit status 0 when every step passed)
// Env:
//   STORYREEL_UI_URL        page to open, e.g. http://127.0.0.1:8080/ (required)
//   STORYREEL_API_KEY       API key to sign in with (required)
//   SCREENSHOT_DIR          where the numbered PNGs go (default: a new temp directory)
//   STORYREEL_UI_TIMEOUT_S  hard limit for the whole run, seconds (default 600)
//   STORYREEL_NODE_MODULES  directory holding node_modules/{playwright-core,axe-core}
//                           (default: this directory)
//   CHROMIUM                the browser binary (default /usr/bin/chromium)

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

// Packages come from STORYREEL_NODE_MODULES when it has them, else from this directory.
function loadPackage(name) {
  const roots = [process.env.STORYREEL_NODE_MODULES, here].filter(Boolean);
  for (const root of roots) {
    const require = createRequire(path.join(root, 'noop.js'));
    try {
      return { module: require(name), resolve: (p) => require.resolve(p) };
    } catch (err) {
      if (err.code !== 'MODULE_NOT_FOUND') throw err;
    }
  }
  throw new Error(`${name} not found under ${roots.join(' or ')}; run scripts/setup-browser.sh`);
}

const { module: playwright } = loadPackage('playwright-core');
const axePath = loadPackage('axe-core').resolve('axe-core/axe.min.js');

const URL_ = process.env.STORYREEL_UI_URL;
const API_KEY = process.env.STORYREEL_API_KEY;
if (!URL_ || !API_KEY) {
  console.error('STORYREEL_UI_URL and STORYREEL_API_KEY must be set');
  process.exit(2);
}
const TIMEOUT_S = Number(process.env.STORYREEL_UI_TIMEOUT_S || 600);
const DEADLINE = Date.now() + TIMEOUT_S * 1000;
const SHOTS = process.env.SCREENSHOT_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'storyreel-ui-'));
fs.mkdirSync(SHOTS, { recursive: true });
// Screenshots of an earlier run (NN-name.png) would mix with this run's.
for (const name of fs.readdirSync(SHOTS)) {
  if (/^\d{2}-[a-z0-9-]+\.png$/.test(name)) fs.rmSync(path.join(SHOTS, name));
}

const ADDED_SENTENCE = ' The browser test added this sentence.';
const LAUNCH_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

let browser;
let page;
let stepNo = 0;
let currentStep = 'start';
const consoleLines = [];
const pageErrors = [];

// Milliseconds left before the hard deadline, capped at `cap`.
function left(cap = Infinity) {
  return Math.max(1000, Math.min(cap, DEADLINE - Date.now()));
}

async function screenshot(name) {
  const file = path.join(SHOTS, `${String(stepNo).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true, timeout: 15000 });
  return file;
}

// Runs one step, then saves its screenshot; a failure stops the run.
async function step(name, fn) {
  stepNo += 1;
  currentStep = name;
  const started = Date.now();
  await fn();
  await screenshot(name);
  console.log(`ok ${stepNo} - ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

// Fails fast when the page shows an error instead of the thing waited for.
async function waitFor(description, predicate, arg, cap) {
  try {
    await page.waitForFunction(predicate, arg, { timeout: left(cap), polling: 250 });
  } catch (err) {
    const alert = await page.locator('#alert').innerText().catch(() => '');
    throw new Error(`timed out waiting for ${description}${alert ? `; the page says: ${alert}` : ''}`);
  }
}

// Throws when the alert region or the job panel shows a failure.
async function assertNoPageError(what) {
  const alert = (await page.locator('#alert').innerText()).trim();
  assert.equal(alert, '', `${what}: the alert region shows: ${alert}`);
}

async function runAxe(label) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
    // Evaluated through the DevTools protocol, so the page's CSP does not block it.
    await page.evaluate(`${fs.readFileSync(axePath, 'utf8')}\n;true`);
  }
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const violations = result.violations;
  for (const v of violations) {
    console.log(`# axe ${label}: [${v.impact}] ${v.id}: ${v.help} (${v.helpUrl})`);
    for (const node of v.nodes) console.log(`#   ${node.target.join(' ')}: ${node.failureSummary.replace(/\n/g, ' ')}`);
  }
  const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.equal(serious.length, 0, `axe ${label}: ${serious.length} serious or critical violation(s): ${serious.map((v) => v.id).join(', ')}`);
  console.log(`# axe ${label}: ${violations.length} violation(s), none serious or critical`);
}

async function main() {
  browser = await playwright.chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: LAUNCH_ARGS,
    timeout: left(60000),
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  page = await context.newPage();
  page.setDefaultTimeout(30000);
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => pageErrors.push(String(e)));

  let options;
  let jobId;

  await step('sign-in-form', async () => {
    await page.goto(URL_, { timeout: left(60000) });
    await page.getByLabel('API key').waitFor({ state: 'visible', timeout: left(30000) });
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    assert.ok((await page.title()).length > 0, 'the page has a title');
  });

  await step('signed-in', async () => {
    await page.getByLabel('API key').fill(API_KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByLabel('Story title').waitFor({ state: 'visible', timeout: left(30000) });
    const res = await page.request.get(new URL('/v1/options', URL_).href, { timeout: left(30000) });
    assert.equal(res.status(), 200, 'GET /v1/options with the session cookie');
    options = await res.json();
    assert.ok(options.max_title_chars > 0, 'options.max_title_chars');
  });

  await step('form-filled', async () => {
    await page.getByLabel('Story title').fill('The Great Wall at dawn');
    await page.locator('#scenes').selectOption('1');
    await page.locator('#resolution').selectOption('RESOLUTION_256');
  });

  await step('texts-generated', async () => {
    await page.getByRole('button', { name: 'Generate Texts' }).click();
    await waitFor('the story and prompt of scene 1', () => {
      const story = document.getElementById('scene-1-story');
      const prompt = document.getElementById('scene-1-prompt');
      return story && prompt && story.value.trim() && prompt.value.trim() && !story.readOnly
        && !document.getElementById('generate-texts').disabled;
    }, undefined, 300000);
    await assertNoPageError('Generate Texts');
    assert.equal(await page.locator('#scene-editors fieldset').count(), 1, 'one scene editor');
  });

  await step('story-edited', async () => {
    const story = page.getByLabel('Scene 1 story');
    await story.fill((await story.inputValue()) + ADDED_SENTENCE);
    assert.ok((await story.inputValue()).endsWith(ADDED_SENTENCE));
  });

  await step('references', async () => {
    await page.getByRole('button', { name: 'Retrieval Video' }).click();
    await waitFor('reference clips or a message', () => {
      const status = document.getElementById('refs-status').textContent;
      return document.querySelector('#refs-results .refs__scene')
        || document.getElementById('alert').textContent.trim()
        || (status && !status.startsWith('Searching'));
    }, undefined, 120000);
    const clips = await page.locator('#refs-results .clip').count();
    const status = await page.locator('#refs-status').innerText();
    const alert = (await page.locator('#alert p').allInnerTexts()).join(' ');
    console.log(`# references: ${clips} clip(s); ${status}${alert ? ` (${alert})` : ''}`);
    if (clips > 0) {
      const alt = await page.locator('#refs-results .clip img').first().getAttribute('alt');
      assert.ok(alt && alt.trim(), 'a clip thumbnail has alt text');
      assert.match(await page.locator('#refs-results .scores').first().innerText(), /\d\.\d{2}/);
    }
    await page.locator('#alert').evaluate((el) => el.replaceChildren());
  });

  await step('video-started', async () => {
    await page.getByRole('button', { name: 'Generate Video' }).click();
    await waitFor('the job panel with progress', () =>
      !document.getElementById('job-panel').hidden
      && (document.querySelector('#stage-rows progress') || document.getElementById('job-overall')),
    undefined, 60000);
    await assertNoPageError('Generate Video');
    await waitFor('a stage row', () => document.querySelector('#stage-rows tr'), undefined, 120000);
  });

  await step('video-ready', async () => {
    await waitFor('the finished video (or a failure message)', () =>
      document.querySelector('#job-result video') || document.querySelector('#job-result .job-error'),
    undefined, Infinity);
    const failure = await page.locator('#job-result .job-error').count();
    if (failure) throw new Error(`the job did not succeed: ${await page.locator('#job-result').innerText()}`);
    const src = await page.locator('#job-result video').getAttribute('src');
    const match = /\/v1\/jobs\/([^/]+)\/artifacts\//.exec(src);
    assert.ok(match, `video src names the job: ${src}`);
    jobId = decodeURIComponent(match[1]);
    assert.ok(await page.locator('#job-result video track[kind="subtitles"]').count(), 'a subtitles track');
  });

  await step('video-playing', async () => {
    const played = await page.evaluate(async () => {
      const video = document.querySelector('#job-result video');
      video.muted = true;
      try {
        await video.play();
      } catch (err) {
        return { error: String(err), code: video.error && video.error.code };
      }
      await new Promise((r) => setTimeout(r, 1500));
      const track = video.textTracks[0];
      return {
        time: video.currentTime, width: video.videoWidth, code: video.error && video.error.code,
        cues: track && track.cues ? track.cues.length : 0,
      };
    });
    console.log(`# video: ${JSON.stringify(played)}`);
    assert.ok(played.time > 0, `the video plays (currentTime ${played.time}, ${played.error || ''})`);
    assert.ok(played.width > 0, 'the video has a picture');
    await waitFor('subtitle cues', () => {
      const track = document.querySelector('#job-result video').textTracks[0];
      return track && track.cues && track.cues.length > 0;
    }, undefined, 15000);
    await page.evaluate(() => document.querySelector('#job-result video').pause());
  });

  await step('edited-story-used', async () => {
    const res = await page.request.get(new URL(`/v1/jobs/${encodeURIComponent(jobId)}`, URL_).href, { timeout: left(30000) });
    assert.equal(res.status(), 200);
    const job = await res.json();
    const story = (job.spec && job.spec.story) || [];
    assert.equal(story.length, 1, 'spec.story has the one scene');
    assert.ok(story[0].includes(ADDED_SENTENCE.trim()), `spec.story[0] has the added sentence: ${story[0]}`);
  });

  await step('mp4-downloaded', async () => {
    const link = page.locator('#job-result a[download][href*="download=1"]');
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: left(60000) }),
      link.click(),
    ]);
    const file = await download.path();
    const bytes = fs.readFileSync(file);
    assert.ok(bytes.length > 1024, `the MP4 is ${bytes.length} bytes`);
    assert.equal(bytes.subarray(4, 8).toString('latin1'), 'ftyp', 'the file starts with an ftyp box');
    console.log(`# download: ${download.suggestedFilename()}, ${bytes.length} bytes`);
  });

  await step('title-too-long', async () => {
    const max = options.max_title_chars;
    const title = page.getByLabel('Story title');
    await title.fill('x'.repeat(max + 1));
    await page.getByRole('button', { name: 'Generate Video' }).click();
    await waitFor('the title marked invalid', () =>
      document.getElementById('title').getAttribute('aria-invalid') === 'true', undefined, 30000);
    const messages = await title.evaluate((el) =>
      (el.getAttribute('aria-describedby') || '').split(' ').filter(Boolean)
        .map((id) => document.getElementById(id))
        .filter((node) => node && node.classList.contains('field-error') && node.offsetParent !== null)
        .map((node) => node.textContent));
    assert.ok(messages.some((m) => m.includes(String(max))),
      `an error next to the title mentions ${max}: ${JSON.stringify(messages)}`);
    // The message sits right after the field, in the same group.
    const sameField = await title.evaluate((el) => el.closest('.field').contains(document.getElementById('title-error')));
    assert.ok(sameField, 'the error is in the title field group');
    const text = await page.locator('body').innerText();
    assert.ok(text.length > 200 && (await page.getByLabel('Story title').isVisible()), 'the page is not blank');
  });

  await step('keyboard-focus', async () => {
    // Focus the body so that the next Tab starts from the top of the page.
    await page.evaluate(() => {
      document.body.tabIndex = -1;
      document.body.focus();
      document.body.removeAttribute('tabindex');
      window.scrollTo(0, 0);
    });
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = document.activeElement;
      const style = getComputedStyle(el);
      return { tag: el.tagName, text: el.textContent.trim(), outline: style.outlineStyle, width: style.outlineWidth };
    });
    assert.equal(focused.tag, 'A', `Tab reaches the skip link first: ${JSON.stringify(focused)}`);
    assert.notEqual(focused.outline, 'none', 'the focused control has a visible outline');
  });

  await step('axe-desktop', async () => {
    await runAxe('1280x800');
  });

  await step('phone-width', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 391, `no horizontal scroll at 390 px (scrollWidth ${width})`);
  });

  await step('axe-phone', async () => {
    await runAxe('390x844');
  });

  assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
  const csp = consoleLines.filter((l) => l.includes('Content Security Policy'));
  assert.deepEqual(csp, [], 'no Content Security Policy violations');
}

// The whole run is bounded: past the deadline, report where it stood and stop.
const hardStop = setTimeout(async () => {
  console.error(`not ok - timed out after ${TIMEOUT_S} s during step "${currentStep}"`);
  await finishWithFailure().catch(() => {});
  process.exit(1);
}, TIMEOUT_S * 1000 + 5000);

async function finishWithFailure() {
  stepNo += 1;
  if (page) {
    await screenshot('failure').catch(() => {});
    const text = await page.locator('body').innerText({ timeout: 5000 }).catch(() => '');
    console.error(`# page text:\n${text.slice(0, 3000)}`);
  }
  if (consoleLines.length) console.error(`# browser console:\n${consoleLines.slice(-50).join('\n')}`);
  if (pageErrors.length) console.error(`# page errors:\n${pageErrors.join('\n')}`);
  console.error(`# screenshots in ${SHOTS}`);
  if (browser) await Promise.race([browser.close(), new Promise((r) => setTimeout(r, 5000))]);
}

try {
  await main();
  console.log(`# all steps passed; screenshots in ${SHOTS}`);
  await browser.close();
  clearTimeout(hardStop);
  process.exit(0);
} catch (err) {
  console.error(`not ok ${stepNo} - ${currentStep}: ${err.message}`);
  await finishWithFailure();
  clearTimeout(hardStop);
  process.exit(1);
}
