// storyreel web UI: one page over the gateway's REST API (same origin, cookie session).
// No framework and no build step; the DOM is built with createElement and textContent
// only, so nothing the server sends is ever parsed as HTML.

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------
// Words for the API's enum names.

const STAGE_NAMES = {
  STAGE_STORY: 'Story',
  STAGE_PROMPT: 'Image prompts',
  STAGE_KEYWORDS: 'Search keywords',
  STAGE_RETRIEVAL: 'Reference retrieval',
  STAGE_REFERENCE_ENCODE: 'Reference encoding',
  STAGE_KEYFRAME: 'Key frames',
  STAGE_INTERPOLATION: 'Frame interpolation',
  STAGE_DECODE: 'Decoding frames',
  STAGE_UPSAMPLE: 'Upsampling',
  STAGE_TTS: 'Narration',
  STAGE_MUX: 'Assembling the video',
};
const STAGE_ORDER = Object.keys(STAGE_NAMES);

const STAGE_STATES = {
  STAGE_STATE_PENDING: 'Waiting',
  STAGE_STATE_RUNNING: 'Running',
  STAGE_STATE_SUCCEEDED: 'Done',
  STAGE_STATE_FAILED: 'Failed',
  STAGE_STATE_SKIPPED: 'Skipped',
  STAGE_STATE_CANCELLED: 'Cancelled',
};

const JOB_STATES = {
  JOB_STATE_QUEUED: 'Queued',
  JOB_STATE_RUNNING: 'Running',
  JOB_STATE_SUCCEEDED: 'Finished',
  JOB_STATE_FAILED: 'Failed',
  JOB_STATE_CANCELLED: 'Cancelled',
};
const TERMINAL = new Set(['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED']);

const ERROR_REASONS = {
  ERROR_REASON_VALIDATION: 'the request was not valid',
  ERROR_REASON_OVERLOAD: 'the service was too busy',
  ERROR_REASON_UNAVAILABLE: 'a service was unavailable',
  ERROR_REASON_TIMEOUT: 'it took too long',
  ERROR_REASON_MISSING_TENSOR: 'intermediate data was lost',
  ERROR_REASON_MODEL: 'a model failed',
  ERROR_REASON_INTERNAL: 'of an internal error',
};

const BACKEND_NAMES = {
  auto: 'Automatic',
  diffusion: 'Diffusion (generated frames)',
  reference: 'Reference (retrieved frames)',
};

const ASPECT_NAMES = { '16:9': '16:9 landscape', '1:1': '1:1 square', '9:16': '9:16 portrait' };

// The API's `field` names -> the control that shows the message.
const FIELD_CONTROLS = {
  'spec.title': 'title',
  'spec.n_scenes': 'scenes',
  'spec.seed': 'seed',
  'spec.voice': 'voice',
  'spec.resolution': 'resolution',
  'spec.aspect': 'aspect',
  'spec.backend': 'backend',
  api_key: 'api-key',
};

const stageName = (s) => STAGE_NAMES[s] || 'Preparing';
const jobStateName = (s) => JOB_STATES[s] || 'Queued';
const stageStateName = (s) => STAGE_STATES[s] || 'Waiting';

// ---------------------------------------------------------------------------
// Page state.

const state = {
  options: null,
  texts: { ready: false, attempt: 0, streaming: null },
  job: null, // { id, events: EventSource|null, stages: Map, overall: number }
  historyToken: '',
};

// ---------------------------------------------------------------------------
// Calling the API.

class ApiError extends Error {
  constructor(status, message, field = '') {
    super(message);
    this.status = status;
    this.field = field;
  }
}

const NETWORK_MESSAGE =
  'Could not reach the storyreel server. Check your connection or that the server is running, then try again.';

// Fetches `path`; returns the Response when it is 2xx, else throws an ApiError in words.
async function request(method, path, body, signal) {
  const init = { method, credentials: 'same-origin', signal, headers: {} };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, NETWORK_MESSAGE);
  }
  if (res.ok) return res;
  throw await errorFromResponse(res);
}

async function errorFromResponse(res) {
  let error = {};
  try {
    error = (await res.json()).error || {};
  } catch {
    // Not our JSON (a proxy page, say): fall back to the status.
  }
  return new ApiError(res.status, error.message || statusMessage(res.status), error.field || '');
}

function statusMessage(status) {
  if (status === 401) return 'Please sign in again.';
  if (status === 404) return 'That was not found; it may have been deleted.';
  if (status === 429) return 'Too many requests right now. Wait a moment and try again.';
  if (status === 503) return 'The service is unavailable right now. Try again shortly.';
  return `The server answered with an error (HTTP ${status}). Try again.`;
}

async function api(method, path, body) {
  const res = await request(method, path, body);
  return res.status === 204 ? null : res.json();
}

// Shows an error where it belongs: next to its field, on the sign-in form, or in the alert.
function showError(err, fallbackField) {
  if (err.name === 'AbortError') return;
  if (err.status === 401) {
    showSignIn('Your session has ended or the key is not valid. Please sign in again.');
    return;
  }
  if (err.field && showFieldError(err.field, err.message)) return;
  if (fallbackField && err.status === 400 && showFieldError(fallbackField, err.message)) return;
  showAlert(err.message);
}

// ---------------------------------------------------------------------------
// Messages.

function showAlert(message, retry) {
  const box = $('alert');
  box.replaceChildren();
  const text = document.createElement('p');
  text.textContent = message;
  box.append(text);
  const buttons = document.createElement('div');
  buttons.className = 'actions';
  if (retry) buttons.append(button('Try again', () => { clearAlert(); retry(); }));
  buttons.append(button('Dismiss', clearAlert, 'button--quiet'));
  box.append(buttons);
}

function clearAlert() {
  $('alert').replaceChildren();
}

function setStatus(id, message) {
  $(id).textContent = message;
}

// Marks a control invalid and shows the message right after it. Returns false when the
// field has no control on this page.
function showFieldError(field, message) {
  if (field.startsWith('spec.story') || field.startsWith('spec.prompts') || field.startsWith('prompts')) {
    return showSceneError(field, message);
  }
  const id = FIELD_CONTROLS[field];
  if (!id) return false;
  markInvalid($(id), $(`${id}-error`), message);
  $(id).focus();
  return true;
}

function markInvalid(control, errorBox, message) {
  errorBox.textContent = message;
  control.setAttribute('aria-invalid', 'true');
  const ids = (control.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
  if (!ids.includes(errorBox.id)) control.setAttribute('aria-describedby', [...ids, errorBox.id].join(' '));
}

function clearInvalid(control) {
  const errorBox = $(`${control.id}-error`);
  if (errorBox) errorBox.textContent = '';
  control.removeAttribute('aria-invalid');
  const ids = (control.getAttribute('aria-describedby') || '').split(' ');
  const kept = ids.filter((x) => x && x !== `${control.id}-error`);
  if (kept.length) control.setAttribute('aria-describedby', kept.join(' '));
  else control.removeAttribute('aria-describedby');
}

function clearAllErrors() {
  clearAlert();
  document.querySelectorAll('[aria-invalid="true"]').forEach(clearInvalid);
  $('texts-error').textContent = '';
}

// `spec.story[2]` or `spec.prompts[0]` points at one editor; otherwise the whole list.
function showSceneError(field, message) {
  const match = /^(?:spec\.)?(story|prompts)\[(\d+)\]/.exec(field);
  if (match) {
    const kind = match[1] === 'story' ? 'story' : 'prompt';
    const control = $(`scene-${Number(match[2]) + 1}-${kind}`);
    if (control) {
      markInvalid(control, $(`${control.id}-error`), message);
      control.focus();
      return true;
    }
  }
  $('texts-error').textContent = message;
  $('texts-heading').scrollIntoView({ block: 'start' });
  return true;
}

// ---------------------------------------------------------------------------
// Small DOM helpers.

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(label, onClick, extraClass = '') {
  const b = el('button', `button ${extraClass}`.trim(), label);
  b.type = 'button';
  b.addEventListener('click', onClick);
  return b;
}

function option(value, label, selected) {
  const o = el('option', '', label);
  o.value = String(value);
  o.selected = selected;
  return o;
}

const percent = (fraction) => `${Math.round(Math.min(1, Math.max(0, fraction || 0)) * 100)}%`;
const pngUrl = (base64) => `data:image/png;base64,${base64}`;
const jobUrl = (id) => `/v1/jobs/${encodeURIComponent(id)}`;
const artifactUrl = (id, name) => `${jobUrl(id)}/artifacts/${encodeURIComponent(name)}`;

function formatTime(rfc3339) {
  if (!rfc3339) return '';
  const date = new Date(rfc3339);
  return Number.isNaN(date.getTime()) ? rfc3339 : date.toLocaleString();
}

function formatBytes(size) {
  const n = Number(size || 0);
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${Math.round(n / 1e3)} kB`;
  return `${n} bytes`;
}

// ---------------------------------------------------------------------------
// Sign-in and start-up.

function showView(view) {
  $('loading').hidden = view !== 'loading';
  $('signin').hidden = view !== 'signin';
  $('app').hidden = view !== 'app';
  $('site-nav').hidden = view !== 'app';
  $('sign-out').hidden = view !== 'app';
}

function showSignIn(message) {
  closeJobEvents();
  showView('signin');
  const key = $('api-key');
  if (message) markInvalid(key, $('api-key-error'), message);
  key.focus();
}

async function start() {
  $('loading').textContent = 'Loading storyreel…';
  showView('loading');
  try {
    const options = await api('GET', '/v1/options');
    enterApp(options);
  } catch (err) {
    if (err.status === 401) {
      showSignIn();
    } else {
      $('loading').textContent = 'storyreel could not start.';
      showAlert(err.message, start);
    }
  }
}

async function signIn(event) {
  event.preventDefault();
  clearAllErrors();
  const key = $('api-key');
  if (!key.value.trim()) {
    markInvalid(key, $('api-key-error'), 'Enter your API key.');
    key.focus();
    return;
  }
  $('signin-button').disabled = true;
  try {
    await api('POST', '/v1/session', { api_key: key.value.trim() });
    key.value = '';
    clearInvalid(key);
    enterApp(await api('GET', '/v1/options'));
  } catch (err) {
    if (err.status === 401) {
      markInvalid(key, $('api-key-error'), 'That API key was not accepted. Check it and try again.');
      key.focus();
    } else {
      showError(err);
    }
  } finally {
    $('signin-button').disabled = false;
  }
}

async function signOut() {
  try {
    await api('DELETE', '/v1/session');
  } catch (err) {
    if (err.status !== 401) showError(err);
  }
  showSignIn();
}

function enterApp(options) {
  state.options = options;
  fillOptions(options);
  showView('app');
  updateTitleCount();
  $('title').focus();
  refreshHistory();
}

// ---------------------------------------------------------------------------
// The options form.

function fillOptions(options) {
  const defaults = options.defaults || {};
  const maxScenes = options.max_scenes || 8;
  const scenes = defaults.n_scenes || Math.min(4, maxScenes);
  const sceneOptions = [];
  for (let n = 1; n <= maxScenes; n += 1) sceneOptions.push(option(n, String(n), n === scenes));
  $('scenes').replaceChildren(...sceneOptions);

  const resolutions = options.resolutions && options.resolutions.length ? options.resolutions : [256, 512, 768];
  const resolution = defaults.resolution || 'RESOLUTION_512';
  $('resolution').replaceChildren(
    ...resolutions.map((r) => option(`RESOLUTION_${r}`, `${r} px`, `RESOLUTION_${r}` === resolution)),
  );

  const aspects = options.aspects && options.aspects.length ? options.aspects : ['16:9', '1:1', '9:16'];
  const aspect = defaults.aspect || '16:9';
  $('aspect').replaceChildren(...aspects.map((a) => option(a, ASPECT_NAMES[a] || a, a === aspect)));

  const backends = options.backends && options.backends.length ? options.backends : ['auto'];
  const backend = defaults.backend || options.default_backend || backends[0];
  $('backend').replaceChildren(...backends.map((b) => option(b, BACKEND_NAMES[b] || b, b === backend)));

  const voices = options.voices || [];
  const voice = defaults.voice || (voices[0] && voices[0].id) || '';
  $('voice').replaceChildren(
    ...(voices.length
      ? voices.map((v) => option(v.id, v.display_name || v.id, v.id === voice))
      : [option('', 'Default voice', true)]),
  );

  if (defaults.seed && !$('seed').value) $('seed').value = defaults.seed;
}

function updateTitleCount() {
  const max = (state.options && state.options.max_title_chars) || 500;
  const length = [...$('title').value].length;
  $('title-count').textContent = `${length} of ${max} characters.`;
}

// The VideoSpec from the form; with the scene texts when they were generated.
function buildSpec(withTexts) {
  const spec = {
    title: $('title').value.trim(),
    n_scenes: Number($('scenes').value),
    resolution: $('resolution').value,
    aspect: $('aspect').value,
    backend: $('backend').value,
    voice: $('voice').value,
  };
  const seed = $('seed').value.trim();
  if (seed) spec.seed = seed;
  if (withTexts && state.texts.ready) {
    const { story, prompts } = readSceneTexts();
    spec.story = story;
    spec.prompts = prompts;
    spec.n_scenes = story.length;
  }
  return spec;
}

// Checks what the browser can check; the server validates everything else.
function checkForm() {
  if (!$('title').value.trim()) {
    showFieldError('spec.title', 'Enter a story title.');
    return false;
  }
  const seed = $('seed').value.trim();
  if (seed && !/^\d+$/.test(seed)) {
    showFieldError('spec.seed', 'The seed must be digits only (0-9), or empty for a random seed.');
    return false;
  }
  return true;
}

// With generated texts the scene count is theirs; say so when the two disagree.
function noteSceneCount() {
  const count = $('scene-editors').children.length;
  if (!state.texts.ready || Number($('scenes').value) === count) return;
  setStatus('create-status',
    `Generate Video uses the ${count} scene${count === 1 ? '' : 's'} of your texts. Generate Texts again, or discard them, to use ${$('scenes').value}.`);
}

// ---------------------------------------------------------------------------
// Scene editors (S^D story and S^P prompts).

function ensureSceneEditors(count) {
  const box = $('scene-editors');
  while (box.children.length > count) box.lastElementChild.remove();
  while (box.children.length < count) box.append(sceneEditor(box.children.length + 1));
}

function sceneEditor(n) {
  const group = el('fieldset', 'scene');
  group.append(el('legend', '', `Scene ${n}`));
  group.append(textField(`scene-${n}-story`, `Scene ${n} story`, 4));
  group.append(textField(`scene-${n}-prompt`, `Scene ${n} prompt`, 4));
  const details = el('p', 'hint scene__elements');
  details.id = `scene-${n}-elements`;
  group.append(details);
  return group;
}

function textField(id, label, rows) {
  const field = el('div', 'field');
  const lab = el('label', '', label);
  lab.htmlFor = id;
  const area = el('textarea');
  area.id = id;
  area.rows = rows;
  area.addEventListener('input', () => clearInvalid(area));
  const error = el('p', 'field-error');
  error.id = `${id}-error`;
  field.append(lab, area, error);
  return field;
}

const storyArea = (i) => $(`scene-${i + 1}-story`);
const promptArea = (i) => $(`scene-${i + 1}-prompt`);

function readSceneTexts() {
  const count = $('scene-editors').children.length;
  const story = [];
  const prompts = [];
  for (let i = 0; i < count; i += 1) {
    story.push(storyArea(i).value.trim());
    prompts.push(promptArea(i).value.trim());
  }
  return { story, prompts };
}

function setEditorsBusy(busy) {
  $('texts').setAttribute('aria-busy', String(busy));
  $('scene-editors').querySelectorAll('textarea').forEach((area) => { area.readOnly = busy; });
}

function discardTexts() {
  state.texts.ready = false;
  $('scene-editors').replaceChildren();
  $('discard-texts').hidden = true;
  setStatus('texts-status', 'Texts discarded. Generate Video will write its own story and prompts.');
}

// ---------------------------------------------------------------------------
// Generate Texts: POST /v1/texts answers with server-sent events.

// Yields {event, data} for each server-sent event of a fetch Response.
async function* readEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer = (buffer + value).replace(/\r\n/g, '\n');
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const message = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (message) yield message;
      end = buffer.indexOf('\n\n');
    }
  }
  const last = parseEvent(buffer);
  if (last) yield last;
}

function parseEvent(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (!line || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (name === 'event') event = value;
    else if (name === 'data') data.push(value);
  }
  return data.length ? { event, data: data.join('\n') } : null;
}

async function generateTexts() {
  clearAllErrors();
  if (!checkForm()) return;
  if (state.texts.streaming) state.texts.streaming.abort();
  const controller = new AbortController();
  state.texts = { ready: false, attempt: 0, streaming: controller };
  const spec = buildSpec(false);
  $('scene-editors').replaceChildren();
  ensureSceneEditors(spec.n_scenes);
  setEditorsBusy(true);
  $('discard-texts').hidden = true;
  $('generate-texts').disabled = true;
  setStatus('texts-status', 'Writing the story…');
  setStatus('create-status', 'Generating texts…');
  try {
    const res = await request('POST', '/v1/texts', { spec }, controller.signal);
    for await (const message of readEvents(res)) {
      if (message.event === 'error') throw streamError(message.data);
      if (message.event === 'texts') applyTextsMessage(JSON.parse(message.data));
    }
    if (!state.texts.ready) throw new ApiError(0, 'The text stream ended before the texts were finished. Try again.');
  } catch (err) {
    setStatus('texts-status', err.name === 'AbortError' ? '' : 'The texts could not be generated.');
    setStatus('create-status', '');
    showError(err);
  } finally {
    if (state.texts.streaming === controller) {
      state.texts.streaming = null;
      setEditorsBusy(false);
      $('generate-texts').disabled = false;
    }
  }
}

function streamError(data) {
  try {
    const error = JSON.parse(data).error || {};
    return new ApiError(error.code || 500, error.message || 'The server reported an error.', error.field || '');
  } catch {
    return new ApiError(500, 'The server reported an error.');
  }
}

// One GenerateTextsResponse; missing fields are their defaults (index 0, attempt 0).
function applyTextsMessage(message) {
  if (message.story_delta) {
    const delta = message.story_delta;
    const attempt = delta.attempt || 0;
    if (attempt > state.texts.attempt) {
      state.texts.attempt = attempt;
      $('scene-editors').querySelectorAll('textarea[id$="-story"]').forEach((a) => { a.value = ''; });
    }
    const index = delta.scene_index || 0;
    ensureAtLeast(index + 1);
    storyArea(index).value += delta.text || '';
  } else if (message.scene) {
    const index = message.scene.index || 0;
    ensureAtLeast(index + 1);
    storyArea(index).value = message.scene.text || '';
    setStatus('texts-status', `Scene ${index + 1} written. Writing the prompts…`);
  } else if (message.prompt) {
    applyPrompt(message.prompt);
  } else if (message.done) {
    applyDone(message.done);
  }
}

function ensureAtLeast(count) {
  if ($('scene-editors').children.length < count) {
    ensureSceneEditors(count);
    setEditorsBusy(true);
  }
}

function applyPrompt(prompt) {
  const index = prompt.scene_index || 0;
  ensureAtLeast(index + 1);
  promptArea(index).value = prompt.prompt || '';
  const elements = prompt.visual_elements || [];
  $(`scene-${index + 1}-elements`).textContent = elements.length ? `Visual elements: ${elements.join(', ')}.` : '';
}

function applyDone(done) {
  const story = done.story || [];
  const prompts = done.prompts || [];
  ensureSceneEditors(story.length);
  story.forEach((text, i) => { storyArea(i).value = text; });
  prompts.forEach((text, i) => { promptArea(i).value = text; });
  state.texts.ready = true;
  $('discard-texts').hidden = false;
  const seed = done.seed ? ` Seed ${done.seed}.` : '';
  setStatus('texts-status', `Texts ready: ${story.length} scene${story.length === 1 ? '' : 's'}. You can edit them now.${seed}`);
  setStatus('create-status', 'Texts ready. Generate Video will use them.');
}

// ---------------------------------------------------------------------------
// Retrieval Video: reference clips per scene.

async function findReferences() {
  clearAllErrors();
  const { story, prompts } = readSceneTexts();
  const queries = prompts.some(Boolean) ? prompts : story;
  if (!queries.some(Boolean)) {
    $('refs-results').replaceChildren();
    setStatus('refs-status', 'There are no scene texts yet. Use Generate Texts first, then Retrieval Video.');
    return;
  }
  $('retrieve').disabled = true;
  setStatus('refs-status', 'Searching for reference clips…');
  try {
    const result = await api('POST', '/v1/references', { prompts: queries, k: 4 });
    renderReferences(result.scenes || []);
    const count = (result.scenes || []).reduce((sum, s) => sum + (s.clips || []).length, 0);
    setStatus('refs-status', `Found ${count} reference clip${count === 1 ? '' : 's'}.`);
  } catch (err) {
    setStatus('refs-status', 'The reference clips could not be found.');
    showError(err);
  } finally {
    $('retrieve').disabled = false;
  }
}

function renderReferences(scenes) {
  $('refs-results').replaceChildren(...scenes.map(sceneReferences));
}

function sceneReferences(scene) {
  const n = (scene.scene_index || 0) + 1;
  const box = el('div', 'refs__scene');
  box.append(el('h3', '', `Scene ${n}`));
  const keywords = scene.keywords || [];
  box.append(el('p', 'keywords', keywords.length ? `Keywords: ${keywords.join(', ')}` : 'No keywords.'));
  const clips = scene.clips || [];
  if (!clips.length) box.append(el('p', 'hint', 'No matching clips.'));
  const list = el('ul', 'clips');
  clips.forEach((clip) => list.append(clipCard(clip)));
  box.append(list);
  return box;
}

function clipCard(clip) {
  const item = el('li', 'clip');
  const caption = clip.caption || clip.clip_id || 'Untitled clip';
  if (clip.thumbnail_png) {
    const img = el('img');
    img.src = pngUrl(clip.thumbnail_png);
    img.alt = caption;
    item.append(img);
  }
  item.append(el('p', 'clip__caption', `${clip.rank || 0}. ${caption}`));
  const scores = el('dl', 'scores');
  [['BM25', clip.bm25_score, 2], ['Embedding', clip.embedding_score, 3], ['Fused', clip.fused_score, 3]]
    .forEach(([name, value, digits]) => {
      const row = el('div');
      row.append(el('dt', '', name), el('dd', '', Number(value || 0).toFixed(digits)));
      scores.append(row);
    });
  item.append(scores);
  return item;
}

// ---------------------------------------------------------------------------
// Generate Video and the job's live progress.

async function generateVideo(event) {
  event.preventDefault();
  clearAllErrors();
  if (!checkForm()) return;
  const spec = buildSpec(true);
  $('generate-video').disabled = true;
  setStatus('create-status', 'Starting the video…');
  try {
    const created = await api('POST', '/v1/jobs', { spec, idempotency_key: '', labels: {} });
    setStatus('create-status', created.existing ? 'This video was already requested; showing it.' : 'Video started.');
    openJob(created.job);
    refreshHistory();
  } catch (err) {
    setStatus('create-status', 'The video was not started.');
    showError(err);
  } finally {
    $('generate-video').disabled = false;
  }
}

// Shows a job in the "Current video" panel and follows it until it ends.
function openJob(job) {
  closeJobEvents();
  state.job = { id: job.id, events: null, stages: new Map(), overall: 0, previews: new Map(), retries: 0 };
  $('job-empty').hidden = true;
  $('job-panel').hidden = false;
  $('stage-rows').replaceChildren();
  $('previews').replaceChildren();
  $('previews-empty').hidden = false;
  $('job-result').replaceChildren();
  setStatus('job-status', '');
  applySnapshot(job);
  if (TERMINAL.has(job.state)) finishJob(job.id);
  else followJob(job.id);
}

function followJob(id) {
  const events = new EventSource(`${jobUrl(id)}/events`);
  state.job.events = events;
  events.addEventListener('job', (e) => {
    if (!isCurrent(id)) return;
    handleJobEvent(JSON.parse(e.data));
  });
  // Both a server `error` event (with data) and a lost connection (without) land here.
  events.addEventListener('error', (e) => {
    if (!isCurrent(id)) return;
    if (e.data) {
      closeJobEvents();
      showError(streamError(e.data));
      finishJob(id);
    } else if (events.readyState === EventSource.CLOSED) {
      // The browser gave up (an HTTP error such as 401): ask the API what happened.
      closeJobEvents();
      finishJob(id);
    } else {
      setStatus('job-status', 'Connection lost; reconnecting…');
    }
  });
}

const isCurrent = (id) => state.job && state.job.id === id;

function closeJobEvents() {
  if (state.job && state.job.events) {
    state.job.events.close();
    state.job.events = null;
  }
}

function handleJobEvent(event) {
  if (event.snapshot) {
    applySnapshot(event.snapshot);
    if (TERMINAL.has(event.snapshot.state)) finishJob(state.job.id);
  } else if (event.state_change) {
    const change = event.state_change;
    showJobState(change.state);
    if (TERMINAL.has(change.state)) finishJob(state.job.id);
  } else if (event.stage) {
    upsertStage(event.stage);
    announceStage(event.stage);
    updateOverall();
  } else if (event.progress) {
    applyProgress(event.progress);
    updateOverall();
  } else if (event.keyframe_preview) {
    showPreview(event.keyframe_preview);
  } else if (event.artifact) {
    setStatus('job-status', `${artifactLabel(event.artifact.name)} is ready.`);
  }
}

function applySnapshot(job) {
  $('job-title').textContent = (job.spec && job.spec.title) || 'Untitled';
  showJobState(job.state);
  (job.stages || []).forEach(upsertStage);
  state.job.overall = Math.max(state.job.overall, job.progress || 0);
  updateOverall();
}

function showJobState(jobState) {
  $('job-state').textContent = jobStateName(jobState);
  $('job-cancel').hidden = TERMINAL.has(jobState);
}

// Stage rows are keyed by stage and scene; a stage without a scene is job-wide.
const stageKey = (stage, scene) => `${stage}:${scene === undefined ? 'all' : scene}`;

function upsertStage(status) {
  const key = stageKey(status.stage, status.scene_index);
  const row = stageRow(key, status.stage, status.scene_index);
  row.state = status.state || row.state;
  if (status.progress) row.fraction = progressFraction(status.progress);
  if (row.state === 'STAGE_STATE_SUCCEEDED' || row.state === 'STAGE_STATE_SKIPPED') row.fraction = 1;
  renderStageRow(row);
}

function applyProgress(progress) {
  const row = stageRow(stageKey(progress.stage, progress.scene_index), progress.stage, progress.scene_index);
  if (row.state === 'STAGE_STATE_PENDING' || !row.state) row.state = 'STAGE_STATE_RUNNING';
  row.fraction = progressFraction(progress);
  row.detail = progress.total_steps ? `step ${progress.step || 0} of ${progress.total_steps}` : progress.message || '';
  renderStageRow(row);
}

function progressFraction(progress) {
  if (progress.fraction) return progress.fraction;
  return progress.total_steps ? (progress.step || 0) / progress.total_steps : 0;
}

// Finds or creates the table row of a stage, kept in pipeline order.
function stageRow(key, stage, scene) {
  let row = state.job.stages.get(key);
  if (row) return row;
  row = { key, stage, scene, state: '', fraction: 0, detail: '', tr: document.createElement('tr') };
  state.job.stages.set(key, row);
  const rank = (r) => STAGE_ORDER.indexOf(r.stage) * 100 + (r.scene === undefined ? -1 : r.scene);
  const sorted = [...state.job.stages.values()].sort((a, b) => rank(a) - rank(b));
  $('stage-rows').replaceChildren(...sorted.map((r) => r.tr));
  return row;
}

function renderStageRow(row) {
  const scene = row.scene === undefined ? 'All scenes' : `Scene ${row.scene + 1}`;
  const bar = el('progress');
  bar.max = 1;
  bar.value = row.fraction;
  bar.setAttribute('aria-label', `${stageName(row.stage)}, ${scene.toLowerCase()}`);
  const cell = el('td', 'progress-cell');
  cell.append(bar, el('span', 'percent', row.detail ? `${percent(row.fraction)} (${row.detail})` : percent(row.fraction)));
  row.tr.replaceChildren(
    el('th', '', stageName(row.stage)),
    el('td', '', scene),
    el('td', `state state--${(row.state || 'pending').toLowerCase()}`, stageStateName(row.state)),
    cell,
  );
  row.tr.firstChild.scope = 'row';
}

// Overall progress: the job's own figure when the server gave one, else the mean over
// the pipeline's stages of each stage's mean progress; it never goes backwards.
function updateOverall() {
  const byStage = new Map();
  for (const row of state.job.stages.values()) {
    const list = byStage.get(row.stage) || [];
    list.push(row.fraction);
    byStage.set(row.stage, list);
  }
  let sum = 0;
  byStage.forEach((list) => { sum += list.reduce((a, b) => a + b, 0) / list.length; });
  const estimate = byStage.size ? sum / STAGE_ORDER.length : 0;
  state.job.overall = Math.max(state.job.overall, Math.min(estimate, 0.99));
  $('job-overall').value = state.job.overall;
  $('job-overall-text').textContent = percent(state.job.overall);
}

// Spoken status: stage starts and ends only, not every step.
function announceStage(status) {
  const scene = status.scene_index === undefined ? '' : ` for scene ${status.scene_index + 1}`;
  const words = {
    STAGE_STATE_RUNNING: 'started',
    STAGE_STATE_SUCCEEDED: 'done',
    STAGE_STATE_FAILED: 'failed',
    STAGE_STATE_SKIPPED: 'skipped',
  }[status.state];
  if (words) setStatus('job-status', `${stageName(status.stage)}${scene} ${words}. Overall ${percent(state.job.overall)}.`);
}

function showPreview(preview) {
  if (!preview.png) return;
  const index = preview.scene_index || 0;
  let figure = state.job.previews.get(index);
  if (!figure) {
    figure = el('figure', 'preview');
    figure.append(el('img'), el('figcaption'));
    state.job.previews.set(index, figure);
    const sorted = [...state.job.previews.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]);
    $('previews').replaceChildren(...sorted);
    $('previews-empty').hidden = true;
  }
  const step = preview.step ? `, step ${preview.step}` : '';
  figure.firstChild.src = pngUrl(preview.png);
  figure.firstChild.alt = `Key frame preview of scene ${index + 1}${step}`;
  figure.lastChild.textContent = `Scene ${index + 1}${step}`;
}

// The terminal state arrived: stop listening, then read the job once for its artifacts.
async function finishJob(id) {
  closeJobEvents();
  try {
    const job = await api('GET', jobUrl(id));
    if (!isCurrent(id)) return;
    applySnapshot(job);
    if (job.state === 'JOB_STATE_SUCCEEDED') {
      state.job.overall = 1;
      $('job-overall').value = 1;
      $('job-overall-text').textContent = '100%';
    }
    renderResult(job);
    if (TERMINAL.has(job.state)) refreshHistory();
    else retryFollow(id);
  } catch (err) {
    showError(err);
  }
}

// The event stream failed while the job still runs: reconnect a few times, slower each time.
function retryFollow(id) {
  state.job.retries += 1;
  if (state.job.retries > 3) {
    setStatus('job-status', 'Live progress is not available. Open the job again from the history to see where it is.');
    return;
  }
  setStatus('job-status', 'Connection lost; reconnecting…');
  setTimeout(() => { if (isCurrent(id) && !state.job.events) followJob(id); }, 2000 * state.job.retries);
}

function renderResult(job) {
  const box = $('job-result');
  if (job.state === 'JOB_STATE_SUCCEEDED') {
    box.replaceChildren(...videoResult(job));
    setStatus('job-status', 'The video is ready.');
  } else if (job.state === 'JOB_STATE_FAILED' || job.state === 'JOB_STATE_CANCELLED') {
    const message = failureMessage(job);
    const p = el('p', 'job-error', message);
    box.replaceChildren(el('h3', '', job.state === 'JOB_STATE_FAILED' ? 'The video failed' : 'The video was cancelled'), p);
    setStatus('job-status', message);
  } else {
    box.replaceChildren();
  }
}

function failureMessage(job) {
  const error = job.error || {};
  if (job.state === 'JOB_STATE_CANCELLED') {
    return error.message ? `The video was cancelled: ${error.message}` : 'The video was cancelled before it was finished.';
  }
  const reason = ERROR_REASONS[error.reason];
  const where = error.stage ? ` during ${stageName(error.stage).toLowerCase()}` : '';
  const scene = error.scene_index !== undefined ? ` (scene ${error.scene_index + 1})` : '';
  const why = reason ? ` because ${reason}` : '';
  const detail = error.message ? ` Details: ${error.message}` : '';
  return `The video could not be made${where}${scene}${why}.${detail}`;
}

const artifactLabel = (name) =>
  ({ 'video.mp4': 'The video', 'subtitles.srt': 'The subtitles', 'job.json': 'The report' })[name] || name;

function findArtifact(job, ext, fallback) {
  const found = (job.artifacts || []).find((a) => a.name.endsWith(ext));
  return found || { name: fallback };
}

function videoResult(job) {
  const video = findArtifact(job, '.mp4', 'video.mp4');
  const srt = findArtifact(job, '.srt', 'subtitles.srt');
  const report = findArtifact(job, '.json', 'job.json');

  const player = el('video', 'player');
  player.controls = true;
  player.preload = 'metadata';
  player.src = artifactUrl(job.id, video.name);
  player.setAttribute('aria-label', `Video: ${(job.spec && job.spec.title) || 'untitled'}`);
  const track = el('track');
  track.kind = 'subtitles';
  track.srclang = 'en';
  track.label = 'English';
  track.src = artifactUrl(job.id, 'subtitles.vtt');
  track.default = true;
  player.append(track);

  const links = el('ul', 'downloads');
  const mp4 = link(`${artifactUrl(job.id, video.name)}?download=1`, `Download the MP4 video${sizeNote(video)}`);
  mp4.download = `${job.id}.mp4`;
  const subtitles = link(artifactUrl(job.id, srt.name), `Subtitles (SRT)${sizeNote(srt)}`);
  subtitles.download = `${job.id}.srt`;
  links.append(li(mp4), li(subtitles), li(link(artifactUrl(job.id, report.name), `JSON report${sizeNote(report)}`)));
  return [el('h3', '', 'Your video'), player, links];
}

const sizeNote = (artifact) => (artifact.size_bytes ? `, ${formatBytes(artifact.size_bytes)}` : '');

function link(href, text) {
  const a = el('a', '', text);
  a.href = href;
  return a;
}

function li(child) {
  const item = el('li');
  item.append(child);
  return item;
}

async function cancelJob(id) {
  try {
    const job = await api('POST', `${jobUrl(id)}/cancel`, { reason: 'Cancelled from the web UI' });
    if (isCurrent(id)) showJobState(job.state);
    setStatus('history-status', 'Cancellation requested.');
    refreshHistory();
  } catch (err) {
    showError(err);
  }
}

async function openJobById(id) {
  try {
    openJob(await api('GET', jobUrl(id)));
    $('job-heading').focus();
  } catch (err) {
    showError(err);
  }
}

// ---------------------------------------------------------------------------
// Job history.

async function refreshHistory(append = false) {
  const token = append ? state.historyToken : '';
  try {
    const query = new URLSearchParams({ page_size: '20' });
    if (token) query.set('page_token', token);
    const page = await api('GET', `/v1/jobs?${query}`);
    const rows = (page.jobs || []).map(historyRow);
    if (append) $('history-rows').append(...rows);
    else $('history-rows').replaceChildren(...rows);
    state.historyToken = page.next_page_token || '';
    $('history-more').hidden = !state.historyToken;
    const count = $('history-rows').children.length;
    setStatus('history-status', count ? `${count} job${count === 1 ? '' : 's'} shown.` : 'No jobs yet.');
  } catch (err) {
    setStatus('history-status', 'The job history could not be loaded.');
    showError(err);
  }
}

// A cell with the role and column name the narrow (card) layout relies on.
function historyCell(label, className, text) {
  const td = el('td', className, text);
  td.setAttribute('role', 'cell');
  td.dataset.label = label;
  return td;
}

function historyRow(job) {
  const title = (job.spec && job.spec.title) || 'Untitled';
  const tr = el('tr');
  tr.setAttribute('role', 'row');
  const name = el('th', 'history__title', title);
  name.scope = 'row';
  name.setAttribute('role', 'rowheader');
  const bar = el('progress');
  bar.max = 1;
  bar.value = job.state === 'JOB_STATE_SUCCEEDED' ? 1 : job.progress || 0;
  bar.setAttribute('aria-label', `Progress of ${title}`);
  const progressCell = historyCell('Progress', 'progress-cell');
  progressCell.append(bar, el('span', 'percent', percent(bar.value)));
  const actions = el('div', 'history__actions');
  actions.append(button('Open', () => openJobById(job.id)));
  actions.lastChild.setAttribute('aria-label', `Open ${title}`);
  if (!TERMINAL.has(job.state)) {
    actions.append(button('Cancel', () => cancelJob(job.id), 'button--danger'));
    actions.lastChild.setAttribute('aria-label', `Cancel ${title}`);
  }
  const actionsCell = el('td');
  actionsCell.setAttribute('role', 'cell');
  actionsCell.append(actions);
  const created = historyCell('Created');
  const time = el('time', '', formatTime(job.create_time));
  if (job.create_time) time.dateTime = job.create_time;
  created.append(time);
  const stateCell = historyCell('State', `state state--${(job.state || '').toLowerCase()}`, jobStateName(job.state));
  tr.append(name, stateCell, created, progressCell, actionsCell);
  return tr;
}

// ---------------------------------------------------------------------------
// Wiring.

function wire() {
  $('signin-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', signOut);
  $('spec-form').addEventListener('submit', generateVideo);
  $('generate-texts').addEventListener('click', generateTexts);
  $('retrieve').addEventListener('click', findReferences);
  $('discard-texts').addEventListener('click', discardTexts);
  $('job-cancel').addEventListener('click', () => state.job && cancelJob(state.job.id));
  $('history-refresh').addEventListener('click', () => refreshHistory());
  $('history-more').addEventListener('click', () => refreshHistory(true));
  $('title').addEventListener('input', updateTitleCount);
  $('scenes').addEventListener('change', noteSceneCount);
  // Editing a field clears its error; the next request validates again.
  ['title', 'scenes', 'resolution', 'aspect', 'backend', 'voice', 'seed', 'api-key'].forEach((id) => {
    $(id).addEventListener('input', () => clearInvalid($(id)));
  });
  // A page hidden in a back/forward cache must not keep a live event stream.
  window.addEventListener('pagehide', closeJobEvents);
}

wire();
start();
