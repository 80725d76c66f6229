// Warden guard console: one module, no build step, no third-party code.
// It talks only to the gateway's own API with the session cookie; every
// state-changing request carries the session's CSRF token.
import { t, typeName, setLang, getLang, applyStatic, EVENT_TYPES } from './i18n.js';
import { openCalibration } from './calib.js';

const $ = (sel, root = document) => root.querySelector(sel);
const LIVE_MAX = 500; // live events kept in the side list
const LIVE_BACKFILL = 50; // events shown in the side list at login or reload
const stats = { beeps: 0, sseOpens: 0, sseErrors: 0, duplicatesDropped: 0, soundGateShown: 0 };
window.wardenConsole = { stats }; // read by the browser test

let session = null; // {name, role, csrf, expires_at}
const alarms = new Map(); // id → alarm, highest rev wins
let lastSeq = 0; // highest event seq shown
let es = null;
let esRetry = null;
let camTimer = null;
let tab = 'alarms';

// ---------- API ----------

class ApiError extends Error {
  constructor(status, code, msg, retryAfter) {
    super(msg);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && session && session.csrf) headers['X-CSRF-Token'] = session.csrf;
  const r = await fetch(path, {
    method, headers, credentials: 'same-origin', cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 204) return null;
  let data = null;
  try { data = await r.json(); } catch { /* not JSON */ }
  if (!r.ok) {
    const err = new ApiError(r.status, data && data.code, (data && data.error) || r.statusText, r.headers.get('Retry-After'));
    if (r.status === 401 && session && path !== '/api/v1/session') sessionLost();
    throw err;
  }
  return data;
}

// ---------- formatting ----------

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return d.toLocaleString(getLang(), { hour12: false, month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function fmtAge(iso) {
  if (!iso) return '';
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (s < 60) return t('age.s', { n: s });
  if (s < 3600) return t('age.m', { n: Math.floor(s / 60) });
  if (s < 86400) return t('age.h', { n: Math.floor(s / 3600) });
  return t('age.d', { n: Math.floor(s / 86400) });
}

// places are the configured words for building, zone and camera ids
// (GET /api/v1/places), loaded at start.
let places = { buildings: {}, zones: {}, cameras: {} };

function fmtLoc(l, floor) {
  if (!l) return t('loc.none');
  const parts = [];
  if (places.buildings[l.building]) parts.push(places.buildings[l.building]);
  else if (l.building) parts.push(t('loc.building', { v: l.building }));
  if (floor) parts.push(t('loc.floor', { v: floor }));
  if (l.unit) parts.push(t('loc.unit', { v: l.unit }));
  if (l.room) parts.push(t('loc.room', { v: l.room }));
  if (l.zone) parts.push(places.zones[l.zone] || l.zone);
  return parts.length ? parts.join(' ') : t('loc.none');
}

// home is building-unit-room, the way guards name a flat.
function home(l, fallback) {
  if (!l) return fallback;
  const p = [l.building, l.unit, l.room].filter(Boolean);
  return p.length ? p.join('-') : ((l.zone && (places.zones[l.zone] || l.zone)) || fallback);
}

function fmtSource(s) {
  if (!s) return '';
  if (s.kind === 'camera' && places.cameras[s.id]) return `${esc(t('kind.camera'))} ${esc(places.cameras[s.id])}`;
  return `${t('kind.' + s.kind) !== 'kind.' + s.kind ? t('kind.' + s.kind) : esc(s.kind)} ${esc(s.id)}`;
}

// errText is an API error in the console's language: by its code when
// the catalogue has one, else the server's text.
function errText(e) {
  const k = 'errcode.' + (e.code || '');
  return e.code && t(k) !== k ? t(k) : e.message;
}

function toast(msg) {
  const el = $('#toast');
  el.textContent = msg;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
}

// ---------- dialog ----------

// ask shows the dialog; resolves {ok, note}. note: 'required', 'optional' or null.
function ask({ title, html = '', note = null, okText = t('dlg.ok'), okClass = 'primary', cancel = true }) {
  const dlg = $('#dlg');
  $('#dlg-title').textContent = title;
  $('#dlg-body').innerHTML = html;
  $('#dlg-error').textContent = '';
  if (note) {
    const ta = document.createElement('textarea');
    ta.name = 'note';
    ta.placeholder = t('dlg.note');
    ta.maxLength = 4000;
    ta.required = note === 'required';
    // The browser's own "fill in this field" follows the OS language, not the console's.
    ta.addEventListener('invalid', () => ta.setCustomValidity(t('dlg.noteRequired')));
    ta.addEventListener('input', () => ta.setCustomValidity(''));
    $('#dlg-body').append(ta);
  }
  const ok = $('#dlg-ok');
  ok.textContent = okText;
  ok.className = okClass;
  const cn = $('#dlg-cancel');
  cn.textContent = t('dlg.cancel');
  cn.hidden = !cancel;
  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => {
      const ta = $('textarea', dlg);
      const body = $('#dlg-body');
      const fields = {};
      for (const el of body.querySelectorAll('input[name], select[name]')) fields[el.name] = el.value.trim();
      const v = { ok: dlg.returnValue === 'ok', note: ta ? ta.value.trim() : '', fields };
      for (const m of body.querySelectorAll('video')) m.pause();
      body.innerHTML = '';
      resolve(v);
    }, { once: true });
    dlg.showModal();
    const ta = $('textarea', dlg);
    if (ta) ta.focus();
  });
}

function openMedia(m) {
  const kind = m.kind || 'snapshot';
  const label = t('media.' + kind) !== 'media.' + kind ? t('media.' + kind) : kind;
  const html = kind === 'clip'
    ? `<video controls autoplay muted playsinline src="${esc(m.url)}"></video>`
    : `<img alt="${esc(label)}" src="${esc(m.url)}">`;
  ask({ title: `${t('dlg.mediaTitle')} · ${label}`, html, okText: t('dlg.close'), cancel: false });
}

// mediaStrip is an alarm's evidence, newest first: the first few as
// labelled links, the rest behind "more" (a repeating condition collects
// up to 20 pictures and clips).
const STRIP = 3;
const expanded = new Set(); // alarm ids whose strip is open

function mediaStrip(a) {
  const all = (a.media || []).map((m, i) => ({ m, i })).reverse();
  if (!all.length) return '';
  const open = expanded.has(a.id);
  const shown = open ? all : all.slice(0, STRIP);
  const links = shown.map(({ m, i }) => {
    const k = 'media.' + (m.kind || 'snapshot');
    const label = t(k) !== k ? t(k) : m.kind;
    const n = all.filter((x) => x.m.kind === m.kind).length;
    const nth = n > 1 ? ' ' + (all.filter((x) => x.m.kind === m.kind).findIndex((x) => x.i === i) + 1) : '';
    return `<button type="button" class="link" data-media="${i}">${esc(label + nth)}</button>`;
  }).join(' ');
  const more = all.length > STRIP
    ? ` <button type="button" class="link more" data-act="more">${esc(open ? t('media.less') : t('media.more', { n: all.length - STRIP }))}</button>`
    : '';
  return `<span class="strip">${links}${more}</span>`;
}

function mediaLinks(media) {
  return (media || []).map((m, i) => {
    const k = 'media.' + (m.kind || 'snapshot');
    const label = t(k) !== k ? t(k) : m.kind;
    return `<button type="button" class="link" data-media="${i}">${esc(label)}</button>`;
  }).join(' ');
}

// ---------- audible alert and title flash ----------

let audio = null;
let alertTimer = null;
let titleOn = false;

function ensureAudio() {
  if (!audio) {
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return;
    audio = new AC();
    audio.addEventListener('statechange', checkSound);
  }
  if (audio.state === 'suspended') audio.resume().then(checkSound, checkSound);
  checkSound();
}

// checkSound covers the page while a logged-in console cannot sound: a
// browser blocks audio after a reload until someone clicks. A new audio
// context starts suspended even where sound is allowed, so the cover waits
// a moment before it shows.
let soundTimer = null;

function checkSound() {
  const on = !!audio && audio.state === 'running';
  document.body.dataset.sound = on ? 'on' : 'off';
  const gate = $('#sound-gate');
  if (on || !session) {
    clearTimeout(soundTimer);
    soundTimer = null;
    gate.hidden = true;
    return;
  }
  if (!gate.hidden || soundTimer) return;
  soundTimer = setTimeout(() => {
    soundTimer = null;
    if (session && !(audio && audio.state === 'running')) {
      stats.soundGateShown++;
      gate.hidden = false;
    }
  }, 800);
}

// Each priority has its own sound: life safety a fast high two-tone siren,
// security a slower lower one, routine one soft chime.
const TONES = {
  1: { wave: 'square', notes: [[0, 988], [0.18, 740], [0.36, 988], [0.54, 740]], len: 0.16, gain: 0.3 },
  2: { wave: 'square', notes: [[0, 660], [0.35, 523]], len: 0.28, gain: 0.22 },
  3: { wave: 'sine', notes: [[0, 880]], len: 0.35, gain: 0.15 },
};

function prio(a) { return a.priority || 3; }

function beep(p = 1) {
  stats.beeps++;
  stats.lastTone = p;
  if (!audio || audio.state !== 'running') {
    checkSound();
    return;
  }
  const now = audio.currentTime;
  const tone = TONES[p] || TONES[3];
  for (const [at, f] of tone.notes) {
    const o = audio.createOscillator();
    const g = audio.createGain();
    o.type = tone.wave;
    o.frequency.value = f;
    g.gain.setValueAtTime(0.0001, now + at);
    g.gain.exponentialRampToValueAtTime(tone.gain, now + at + 0.02);
    g.gain.exponentialRampToValueAtTime(0.0001, now + at + tone.len);
    o.connect(g).connect(audio.destination);
    o.start(now + at);
    o.stop(now + at + tone.len + 0.02);
  }
}

// alerting lists the open alarms that keep the console sounding: life
// safety and security. Routine alarms chime once when they open or escalate.
function alerting() {
  return [...alarms.values()].filter((a) => a.state === 'open' && prio(a) <= 2);
}

function loudest() {
  return Math.min(3, ...alerting().map(prio));
}

function updateAlert() {
  const n = alerting().length;
  document.body.dataset.alerting = n > 0 ? '1' : '0';
  const badge = $('#alarm-badge');
  const open = [...alarms.values()].filter((a) => a.state === 'open').length;
  badge.hidden = open === 0;
  badge.textContent = String(open);
  if (n > 0 && !alertTimer) {
    beep(loudest());
    alertTimer = setInterval(() => {
      if (alerting().length === 0) return;
      beep(loudest());
      titleOn = !titleOn;
      document.title = titleOn ? `${t('alarm.newCritical')} (${alerting().length})` : t('app.title');
    }, 1200);
  } else if (n === 0 && alertTimer) {
    clearInterval(alertTimer);
    alertTimer = null;
    titleOn = false;
    document.title = t('app.title');
  }
}

// ---------- alarms ----------

function upsertAlarm(a) {
  const old = alarms.get(a.id);
  if (old && (old.rev || 0) > (a.rev || 0)) return false;
  if (old && old.rev === a.rev && old.state === a.state) return false;
  delete a.action;
  alarms.set(a.id, a);
  return true;
}

async function loadAlarms() {
  const states = ['open', 'acknowledged'];
  if ($('#show-resolved').checked) states.push('resolved');
  // Anything this page knew before the request and the server no longer
  // lists in those states changed while the page was not listening.
  const known = new Map([...alarms].map(([id, a]) => [id, a.rev || 0]));
  const res = await Promise.all(states.map((s) => api('GET', `/api/v1/alarms?state=${s}&limit=200`)));
  const seen = new Set();
  for (const r of res) for (const a of r.alarms || []) { seen.add(a.id); upsertAlarm(a); }
  for (const [id, rev] of known) {
    const a = alarms.get(id);
    if (a && !seen.has(id) && (a.rev || 0) <= rev) alarms.delete(id);
  }
  renderAlarms();
}

const sevRank = { critical: 0, warning: 1, info: 2 };
// The list: unhandled first, then by priority, the most escalated within a
// priority, then severity, newest first.
function alarmOrder(x, y) {
  return (stateRank[x.state] - stateRank[y.state]) || (prio(x) - prio(y)) ||
    ((y.escalation_level || 0) - (x.escalation_level || 0)) || (sevRank[x.severity] - sevRank[y.severity]) ||
    (new Date(y.opened_at) - new Date(x.opened_at));
}
const stateRank = { open: 0, acknowledged: 1, resolved: 2 };

// mine: an assignment to the guard at this console, not accepted yet.
function mine(a) {
  return session && a.state !== 'resolved' && a.assigned && !a.assigned.accepted_at && a.assigned.to === session.name;
}

// entryText is a timeline note in the console's language when the server
// gave a code for it.
function entryText(e) {
  if (!e.code) return e.note || '';
  const p = { ...(e.params || {}) };
  if (p.outcome) p.outcome = t('outcome.' + p.outcome);
  const k = 'code.' + e.code;
  const s = t(k, p);
  if (s === k) return e.note || '';
  return e.code === 'outcome' && e.note ? `${s} · ${e.note}` : s;
}

// actor names the gateway's own steps in words.
function actor(by) {
  return by === 'gateway' ? t('kind.gateway') : by === 'notify' ? t('by.notify') : by;
}

// reasonText is why the gateway raised its own alarm, in words.
function reasonText(r) {
  const k = 'reason.' + (r.code || '');
  return r.code && t(k, r.params || {}) !== k ? t(k, r.params || {}) : (r.text || '');
}

let dutyRoster = null;

async function duty() {
  if (!dutyRoster) {
    try { dutyRoster = (await api('GET', '/api/v1/alarms/duty')).duty || []; } catch { dutyRoster = []; }
  }
  return dutyRoster;
}

function alarmCard(a) {
  // newest first; a face alarm shows the face (the best crop), others their picture
  const media = [...(a.media || [])].reverse();
  const thumb = media.find((m) => m.kind === 'crop') || media.find((m) => m.kind === 'snapshot' || m.kind === 'trajectory');
  const steps = [];
  if (a.acknowledged) steps.push(`${t('alarm.ackBy', { by: esc(a.acknowledged.by) })} ${fmtTime(a.acknowledged.at)}${a.acknowledged.note ? ' · ' + esc(a.acknowledged.note) : ''}`);
  if (a.assigned) {
    const as = a.assigned;
    steps.push(as.accepted_at
      ? `${t('alarm.acceptedBy', { to: esc(as.to) })} ${fmtTime(as.accepted_at)}`
      : `<span class="waiting">${t('alarm.waitingAccept', { to: esc(as.to) })}</span> · ${t('alarm.assignedBy', { by: esc(as.by) })} ${fmtTime(as.at)}`);
  }
  if (a.on_scene) steps.push(`${t('alarm.onSceneBy', { by: esc(a.on_scene.by) })} ${fmtTime(a.on_scene.at)}${a.on_scene.note ? ' · ' + esc(a.on_scene.note) : ''}`);
  if (a.cleared_at) steps.push(`${t('alarm.cleared')} ${fmtTime(a.cleared_at)}`);
  if (a.resolved) steps.push(`${t('alarm.resolvedBy', { by: esc(a.resolved.by) })} ${fmtTime(a.resolved.at)}${a.outcome ? ' · ' + esc(t('outcome.' + a.outcome)) : ''}${a.resolved.note ? ' · ' + esc(a.resolved.note) : ''}`);
  const canAct = session && (session.role === 'guard' || session.role === 'admin');
  return `<li class="alarm sev-${esc(a.severity)} prio-${prio(a)} state-${esc(a.state)}" data-id="${esc(a.id)}" data-state="${esc(a.state)}" data-type="${esc(a.type)}" data-source="${esc((a.source || {}).id || '')}" data-priority="${prio(a)}">
    <div class="bar"></div>
    <div class="body">
      <div class="title">
        <span class="pill prio-${prio(a)}">${esc(t('prio.' + prio(a)))}</span>
        <span class="pill sev-${esc(a.severity)}">${esc(t('sev.' + a.severity))}</span>
        <span class="type">${esc(typeName(a.type))}</span>
        <span class="pill state-${esc(a.state)}">${esc(t('state.' + a.state))}</span>
        ${a.escalated ? `<span class="pill esc" data-escalated="1">${esc(t('alarm.escalated', { n: a.escalation_level }))}</span>` : ''}
        ${a.unstored ? `<span class="pill esc" data-unstored="1">${esc(t('alarm.unstored'))}</span>` : ''}
        ${a.count > 1 ? `<span class="muted">${esc(t('alarm.count', { n: a.count }))}</span>` : ''}
      </div>
      <div class="meta">
        <span class="where">${esc(fmtLoc(a.location, a.floor))}</span>
        <span>${esc(t('alarm.opened'))} ${esc(fmtTime(a.opened_at))} · <span class="age" data-time="${esc(a.opened_at)}">${esc(fmtAge(a.opened_at))}</span></span>
        <span>${esc(t('alarm.source'))}: ${fmtSource(a.source)}</span>
      </div>
      ${a.reason ? `<div class="reason">${esc(reasonText(a.reason))}</div>` : ''}
      ${steps.length ? `<div class="steps">${steps.join('<br>')}</div>` : ''}
      <div class="actions">
        ${mine(a) ? `<button type="button" class="danger" data-act="accept">${esc(t('alarm.accept'))}</button>` : ''}
        ${a.state === 'open' && canAct ? `<button type="button" class="danger" data-act="ack">${esc(t('alarm.ack'))}</button>` : ''}
        ${a.state !== 'resolved' && canAct ? `<button type="button" data-act="assign">${esc(t('alarm.assign'))}</button>` : ''}
        ${a.state !== 'resolved' && canAct && !a.on_scene ? `<button type="button" data-act="onscene">${esc(t('alarm.onScene'))}</button>` : ''}
        ${a.state !== 'resolved' && canAct ? `<button type="button" data-act="resolve">${esc(t('alarm.resolve'))}</button>` : ''}
        <button type="button" class="link" data-act="timeline">${esc(t('alarm.timeline'))}</button>
        ${a.source && a.source.kind === 'camera' ? `<button type="button" class="link" data-act="live">${esc(t('cam.live'))}</button>` : ''}
        ${mediaStrip(a)}
      </div>
    </div>
    ${thumb ? `<img class="thumb" alt="" loading="lazy" src="${esc(thumb.url)}" data-media="${a.media.indexOf(thumb)}">` : ''}
  </li>`;
}

function renderAlarms() {
  const list = [...alarms.values()].sort(alarmOrder);
  const active = list.filter((a) => a.state !== 'resolved');
  const resolved = list.filter((a) => a.state === 'resolved');
  $('#alarm-list').innerHTML = active.map(alarmCard).join('');
  $('#alarm-empty').hidden = active.length > 0;
  const showRes = $('#show-resolved').checked;
  $('#resolved-wrap').hidden = !showRes;
  $('#resolved-list').innerHTML = showRes ? resolved.slice(0, 100).map(alarmCard).join('') : '';
  updateAlert();
}

async function alarmAction(id, act) {
  const a = alarms.get(id);
  if (!a) return;
  const where = `${typeName(a.type)} · ${fmtLoc(a.location)}`;
  if (act === 'more') {
    if (expanded.has(id)) expanded.delete(id); else expanded.add(id);
    renderAlarms();
    return;
  }
  if (act === 'live') {
    // the camera live beside the alarm's evidence
    const ev = (a.media || []).slice().reverse().find((m) => m.kind === 'snapshot' || m.kind === 'trajectory' || m.kind === 'crop');
    const html = `<div class="livepair"><div class="frame" id="dlg-live"><div class="noframe">${esc(t('cam.noFrame'))}</div></div>` +
      (ev ? `<img alt="${esc(t('media.' + ev.kind))}" src="${esc(ev.url)}">` : '') + '</div>';
    const closed = ask({ title: `${t('cam.live')} · ${places.cameras[a.source.id] || a.source.id} · ${where}`, html, okText: t('dlg.close'), cancel: false });
    try { await startLive(a.source.id, $('#dlg-live'), 'alarm'); } catch (e) { toast(t('cam.liveErr', { msg: errText(e) })); }
    await closed;
    stopLive('alarm');
    return;
  }
  if (act === 'timeline') {
    const full = await api('GET', `/api/v1/alarms/${encodeURIComponent(id)}`);
    const rows = (full.timeline || []).map((e) => { const n = entryText(e); return `<li data-action="${esc(e.action)}"><span class="t">${esc(fmtTime(e.at))}</span>${esc(t('act.' + e.action))}${e.by ? ' · ' + esc(actor(e.by)) : ''}${e.repeats > 1 ? ' ×' + e.repeats : ''}${n ? ' · ' + esc(n) : ''}</li>`; }).join('');
    await ask({ title: `${t('dlg.timelineTitle')} · ${where}`, html: `<ol class="timeline">${rows}</ol>`, okText: t('dlg.close'), cancel: false });
    return;
  }
  if (act === 'ack' || act === 'accept') ensureAudio();
  let body = {};
  if (act === 'accept') {
    body = undefined;
  } else {
    let html = '';
    if (act === 'assign') {
      const names = await duty();
      html = `<label class="field"><span>${esc(t('dlg.assignTo'))}</span><input name="to" required maxlength="64" list="duty-list" autocomplete="off"></label>` +
        `<datalist id="duty-list">${names.map((n) => `<option value="${esc(n)}">`).join('')}</datalist>`;
    }
    if (act === 'resolve') {
      html = `<label class="field"><span>${esc(t('dlg.outcome'))}</span><select name="outcome" required><option value="">${esc(t('dlg.choose'))}</option>${
        ['real', 'false_alarm', 'test', 'duplicate'].map((o) => `<option value="${o}">${esc(t('outcome.' + o))}</option>`).join('')}</select></label>`;
    }
    const titles = { ack: 'dlg.ackTitle', resolve: 'dlg.resolveTitle', assign: 'dlg.assignTitle', onscene: 'dlg.onSceneTitle' };
    const oks = { ack: 'alarm.ack', resolve: 'alarm.resolve', assign: 'alarm.assign', onscene: 'alarm.onScene' };
    const r = await ask({ title: `${t(titles[act])} · ${where}`, html, note: act === 'resolve' ? 'required' : 'optional', okText: t(oks[act]) });
    if (!r.ok) return;
    if (act === 'resolve' && !r.note) { toast(t('dlg.noteRequired')); return; }
    body = { note: r.note };
    if (act === 'assign') body.to = r.fields.to;
    if (act === 'resolve') body.outcome = r.fields.outcome;
  }
  try {
    const na = await api('POST', `/api/v1/alarms/${encodeURIComponent(id)}/${act}`, body);
    upsertAlarm(na);
    renderAlarms();
  } catch (e) {
    if (e.status === 409) { toast(t('err.conflict')); await loadAlarms(); return; }
    toast(e.status === 403 ? t('err.forbidden') : t('err.generic', { msg: errText(e) }));
  }
}

function onListClick(ev) {
  const li = ev.target.closest('li.alarm');
  if (!li) return;
  const a = alarms.get(li.dataset.id);
  const btn = ev.target.closest('[data-act]');
  if (btn) { alarmAction(li.dataset.id, btn.dataset.act).catch((e) => toast(t('err.generic', { msg: errText(e) }))); return; }
  const m = ev.target.closest('[data-media]');
  if (m && a) openMedia(a.media[Number(m.dataset.media)]);
}

// ---------- live stream ----------

function onEvent(e) {
  if (typeof e.seq !== 'number' || e.seq <= lastSeq) { stats.duplicatesDropped++; return; }
  lastSeq = e.seq;
  const li = document.createElement('li');
  li.className = 'sev-' + e.severity;
  li.dataset.seq = String(e.seq);
  li.dataset.type = e.type;
  li.innerHTML = `<span class="t">${esc(fmtTime(e.time))}</span><span class="ty">${esc(typeName(e.type))}</span><span class="muted">${esc(home(e.location, e.source && e.source.id))}</span>`;
  const list = $('#live-list');
  list.prepend(li);
  while (list.children.length > LIVE_MAX) list.lastElementChild.remove();
}

function onAlarm(a) {
  const old = alarms.get(a.id);
  const isNew = !old;
  const escalated = old && (a.escalation_level || 0) > (old.escalation_level || 0);
  if (upsertAlarm(a)) {
    renderAlarms();
    if (a.state !== 'open') return;
    if (isNew && prio(a) <= 2) ensureAudio();
    // Routine alarms do not loop: one chime when they open, one on each
    // escalation (the re-notification). Others already sound in a loop.
    if ((isNew || escalated) && prio(a) === 3) beep(3);
  }
}

let connLostAt = null;

// setConn shows the stream's state: 'connecting' (first open), 'live' or
// 'down' (dims the lists and says so in words).
function setConn(state) {
  const c = $('#conn');
  c.className = 'conn ' + (state === 'live' ? 'live' : 'down');
  c.textContent = t('conn.' + state);
  if (state !== 'down') connLostAt = null;
  else if (!connLostAt) connLostAt = new Date().toISOString();
  document.body.dataset.conn = state;
  const b = $('#conn-banner');
  b.hidden = state !== 'down' || !session;
  if (!b.hidden) b.textContent = t('conn.lost', { at: fmtTime(connLostAt) });
}

// backfillLive fills the side list with the newest events, so a reload or
// a login does not start from an empty panel; the stream goes on from there.
async function backfillLive() {
  const data = await api('GET', `/api/v1/events?order=desc&limit=${LIVE_BACKFILL}`);
  for (const e of (data.events || []).reverse()) onEvent(e);
}

// connect opens the stream. EventSource reconnects by itself after a drop
// and sends Last-Event-ID; when it gives up (an HTTP error), a new one is
// opened with ?after= so nothing in between is missed.
function connect() {
  clearTimeout(esRetry);
  if (es) es.close();
  const url = '/api/v1/events/stream' + (lastSeq > 0 ? `?after=${lastSeq}` : '');
  const src = new EventSource(url);
  es = src;
  let dropped = false;
  src.addEventListener('open', () => {
    stats.sseOpens++;
    setConn('live');
    // Live alarm messages older than the server's ring are not replayed:
    // read the list again after every (re)connect.
    loadAlarms().catch(() => {});
    dropped = false;
  });
  src.addEventListener('event', (m) => { try { onEvent(JSON.parse(m.data)); } catch { /* bad frame */ } });
  src.addEventListener('alarm', (m) => { try { onAlarm(JSON.parse(m.data)); } catch { /* bad frame */ } });
  src.addEventListener('error', () => {
    stats.sseErrors++;
    setConn('down');
    if (!dropped) dropped = true;
    if (src.readyState === EventSource.CLOSED && es === src) {
      esRetry = setTimeout(async () => {
        try { await api('GET', '/api/v1/session'); } catch (e) { if (e.status === 401) { sessionLost(); return; } }
        if (session) connect();
      }, 3000);
    }
  });
}

// ---------- cameras ----------

const camURLs = new Map();
const lives = new Map(); // live tiles: camera id → {video, el (what the tile shows), and pc and loc (WebRTC) or hls}
const camInfo = new Map(); // camera id → its entry of /api/v1/cameras

async function loadCameras() {
  const grid = $('#camera-grid');
  let data;
  try { data = await api('GET', '/api/v1/cameras'); } catch (e) { grid.textContent = t('err.generic', { msg: errText(e) }); return; }
  const cams = data.cameras || [];
  for (const c of cams) camInfo.set(c.id, c);
  if (!cams.length) { grid.innerHTML = `<p class="muted">${esc(t('cam.none'))}</p>`; return; }
  grid.innerHTML = cams.map((c) => `<div class="card cam" data-cam="${esc(c.id)}">
      <div class="frame"><div class="noframe">${esc(t('cam.noFrame'))}</div></div>
      <div class="meta"><strong>${esc(c.display_name || c.id)}</strong>
        <span class="${c.online ? 'on-ok' : 'on-bad'}" title="${esc(c.error || '')}">${esc(t(c.online ? 'cam.online' : c.state === 'degraded' ? 'cam.degraded' : 'cam.offline'))}</span>
        <span>${esc(t('cam.fps', { fps: (c.fps || 0).toFixed(1) }))}</span></div>
      <div class="meta muted"><span>${esc(fmtLoc(c.location))}</span><span>${esc(c.last_seen ? fmtAge(c.last_seen) : '')}</span></div>
      <div class="meta"><button type="button" class="link" data-live="${esc(c.id)}">${esc(t('cam.live'))}</button>
        <button type="button" class="link" data-recent="${esc(c.id)}">${esc(t('cam.recent'))}</button>
        ${session && session.role === 'admin' && (c.detectors || []).includes('throw') ? `<button type="button" class="link" data-calib="${esc(c.id)}">${esc(t('cam.calibrate'))}</button>` : ''}</div>
    </div>`).join('');
  // the grid is drawn again every 10 s: live tiles keep their video and session
  for (const [id, l] of [...lives]) {
    if (id === 'alarm') continue; // the alarm dialog's own
    const frame = $(`[data-cam="${CSS.escape(id)}"] .frame`, grid);
    if (!frame) { stopLive(id); continue; }
    frame.replaceChildren(l.el);
    $(`[data-live="${CSS.escape(id)}"]`, grid).textContent = t('cam.liveStop');
  }
  grid.querySelectorAll('[data-live]').forEach((b) => b.addEventListener('click', async () => {
    const id = b.dataset.live;
    const frame = $(`[data-cam="${CSS.escape(id)}"] .frame`, grid);
    if (lives.has(id)) { stopLive(id); b.textContent = t('cam.live'); frame.innerHTML = `<div class="noframe">${esc(t('cam.noFrame'))}</div>`; return; }
    b.disabled = true;
    try {
      await startLive(id, frame);
      b.textContent = t('cam.liveStop');
    } catch (e) {
      toast(t('cam.liveErr', { msg: errText(e) }));
    } finally { b.disabled = false; }
  }));
  grid.querySelectorAll('[data-calib]').forEach((b) => b.addEventListener('click', () =>
    openCalibration(b.dataset.calib, { api, errText, toast, esc })));
  // the last 30 s from the camera's own buffer: what happened just before
  grid.querySelectorAll('[data-recent]').forEach((b) => b.addEventListener('click', () =>
    openMedia({ kind: 'clip', url: `/api/v1/cameras/${encodeURIComponent(b.dataset.recent)}/recent.mp4?seconds=30&t=${Date.now()}` })));
  await Promise.all(cams.filter((c) => !lives.has(c.id)).map(async (c) => {
    try {
      const r = await fetch(`/api/v1/cameras/${encodeURIComponent(c.id)}/snapshot`, { credentials: 'same-origin', cache: 'no-store' });
      if (!r.ok) return;
      const url = URL.createObjectURL(await r.blob());
      if (camURLs.has(c.id)) URL.revokeObjectURL(camURLs.get(c.id));
      camURLs.set(c.id, url);
      const frame = $(`[data-cam="${CSS.escape(c.id)}"] .frame`, grid);
      if (frame) {
        frame.innerHTML = `<img alt="${esc(c.id)}" src="${url}">`;
        $('img', frame).addEventListener('click', () => openMedia({ kind: 'snapshot', url }));
      }
    } catch { /* offline camera: keep the placeholder */ }
  }));
}

// Live view from the camera's own RTSP session, no re-encoding: WebRTC
// (WHEP) for H.264, LL-HLS where WebRTC is missing or fails and for H.265.
// An H.265 camera with an H.264 sub-stream plays that over WebRTC (every
// browser decodes it), marked as the sub-stream.
// One session per open tile; closing the tab ends them all.

class LiveError extends Error {} // shown in the tile: the guard must see why

// key names the session: the camera id for a tile, 'alarm' for the
// alarm dialog's.
async function startLive(id, frame, key = id) {
  const codec = await cameraCodec(id);
  const sub = codec === 'h265' && (camInfo.get(id) || {}).sub_codec === 'h264';
  if ((codec !== 'h265' || sub) && window.RTCPeerConnection) {
    try {
      await startWHEP(id, frame, key, sub);
      return;
    } catch (e) {
      // not the camera's fault or a refusal to this user: try HLS
      if (e instanceof ApiError && [401, 403, 404, 429].includes(e.status)) throw e;
    }
  }
  try {
    // the sub-stream over LL-HLS too: it plays where H.265 does not
    await startHLS(id, frame, key, sub ? 'h264' : codec, sub);
  } catch (e) {
    if (e instanceof LiveError) frame.innerHTML = `<div class="noframe live-err">${esc(e.message)}</div>`;
    throw e;
  }
}

// cameraCodec is the camera's codec from the last camera list, fetched
// again when unknown (the alarm dialog may open before the camera tab).
async function cameraCodec(id) {
  if (!(camInfo.get(id) || {}).codec) {
    try {
      for (const c of (await api('GET', '/api/v1/cameras')).cameras || []) camInfo.set(c.id, c);
    } catch { /* WHEP or HLS will say what is wrong */ }
  }
  return (camInfo.get(id) || {}).codec;
}

function liveVideo(via) {
  const video = document.createElement('video');
  video.autoplay = true; video.muted = true; video.playsInline = true;
  video.dataset.via = via;
  return video;
}

async function startWHEP(id, frame, key, sub = false) {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  const video = liveVideo('webrtc');
  pc.ontrack = (e) => { video.srcObject = e.streams[0] || new MediaStream([e.track]); };
  let loc = null;
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((done) => { // all candidates in the offer: WHEP without trickle
      if (pc.iceGatheringState === 'complete') { done(); return; }
      pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') done(); });
      setTimeout(done, 3000);
    });
    const headers = { 'Content-Type': 'application/sdp' };
    if (session && session.csrf) headers['X-CSRF-Token'] = session.csrf;
    const r = await fetch(`/api/v1/cameras/${encodeURIComponent(id)}/whep`,
      { method: 'POST', headers, credentials: 'same-origin', cache: 'no-store', body: pc.localDescription.sdp });
    if (r.status !== 201) {
      let data = null;
      try { data = await r.json(); } catch { /* not JSON */ }
      throw new ApiError(r.status, data && data.code, (data && data.error) || r.statusText);
    }
    loc = r.headers.get('Location');
    await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
    // a network that blocks the media path fails here, not at the offer
    await new Promise((done, fail) => {
      const check = () => {
        if (pc.connectionState === 'connected') done();
        else if (pc.connectionState === 'failed' || pc.connectionState === 'closed') fail(new Error('WebRTC: ' + pc.connectionState));
      };
      pc.addEventListener('connectionstatechange', check);
      check();
      setTimeout(() => fail(new Error('WebRTC: no connection in 8 s')), 8000);
    });
    showLive(frame, key, { pc, loc, video }, sub);
  } catch (e) {
    pc.close();
    if (loc) endWHEP(loc);
    throw e;
  }
}

let hlsLib = null; // hls.js, loaded on first use (Chromium and Firefox play HLS through it)
function loadHls() {
  hlsLib ||= new Promise((done, fail) => {
    const s = document.createElement('script');
    s.src = '/console/hls.light.min.js';
    s.onload = () => (window.Hls ? done(window.Hls) : fail(new Error('hls.js did not load')));
    s.onerror = () => { hlsLib = null; fail(new Error('hls.js did not load')); };
    document.head.append(s);
  });
  return hlsLib;
}

// showLive puts a started session's video in the frame, marked when it is
// the sub-stream, and remembers the session under key.
function showLive(frame, key, l, sub) {
  l.el = l.video;
  if (sub) {
    l.video.dataset.stream = 'sub';
    l.el = document.createElement('div');
    l.el.className = 'live-box';
    l.el.innerHTML = `<span class="live-sub" title="${esc(t('cam.subStreamWhy'))}">${esc(t('cam.subStream'))}</span>`;
    l.el.prepend(l.video);
  }
  lives.set(key, l);
  frame.replaceChildren(l.el);
}

async function startHLS(id, frame, key, codec, sub = false) {
  const url = `/api/v1/cameras/${encodeURIComponent(id)}/live/${sub ? 'h264/' : ''}index.m3u8`;
  const video = liveVideo('hls');
  const hevc = 'video/mp4; codecs="hvc1.1.6.L93.B0"';
  // hls.js wherever Media Source Extensions exist: it plays LL-HLS the same
  // everywhere, while a browser's own HLS player (iPhone Safari, recent
  // Chromium) may not keep up with the live edge
  const Hls = await loadHls().catch(() => null);
  if (!Hls || !Hls.isSupported()) {
    if (!video.canPlayType('application/vnd.apple.mpegurl')) throw new LiveError(t('cam.noHls'));
    if (codec === 'h265' && !video.canPlayType(hevc)) throw new LiveError(t('cam.noHevc'));
    video.src = url;
    showLive(frame, key, { video }, sub);
    return;
  }
  if (codec === 'h265' && !MediaSource.isTypeSupported(hevc)) throw new LiveError(t('cam.noHevc'));
  const hls = new Hls({ lowLatencyMode: true, enableWorker: false, manifestLoadPolicy: { default: {
    maxTimeToFirstByteMs: 15000, maxLoadTimeMs: 20000,
    timeoutRetry: { maxNumRetry: 2, retryDelayMs: 0, maxRetryDelayMs: 0 },
    errorRetry: { maxNumRetry: 4, retryDelayMs: 1000, maxRetryDelayMs: 4000 } } } });
  try {
    await new Promise((done, fail) => {
      hls.on(Hls.Events.MANIFEST_PARSED, done);
      hls.on(Hls.Events.ERROR, (_ev, d) => {
        if (!d.fatal) return;
        const msg = (d.response && d.response.code ? `HTTP ${d.response.code}` : d.details) || 'HLS';
        fail(d.type === Hls.ErrorTypes.MEDIA_ERROR && codec === 'h265' ? new LiveError(t('cam.noHevc')) : new Error(msg));
        if (lives.get(key)?.hls === hls) { // broke while playing
          stopLive(key);
          frame.innerHTML = `<div class="noframe live-err">${esc(t('cam.liveErr', { msg }))}</div>`;
        }
      });
      hls.loadSource(url);
      hls.attachMedia(video);
    });
  } catch (e) { hls.destroy(); throw e; }
  showLive(frame, key, { hls, video }, sub);
}

// The camera wall: the first n×n cameras live at once (0: snapshots).
async function setWall(n) {
  for (const b of document.querySelectorAll('[data-wall]')) b.classList.toggle('on', Number(b.dataset.wall) === n);
  const grid = $('#camera-grid');
  grid.dataset.wall = String(n);
  const tiles = [...grid.querySelectorAll('[data-cam]')];
  for (const [i, tile] of tiles.entries()) {
    const id = tile.dataset.cam;
    const on = n > 0 && i < n * n;
    const btn = $(`[data-live="${CSS.escape(id)}"]`, tile);
    if (on && !lives.has(id)) {
      try { await startLive(id, $('.frame', tile)); btn.textContent = t('cam.liveStop'); } catch (e) { toast(t('cam.liveErr', { msg: errText(e) })); }
    } else if (!on && lives.has(id)) {
      stopLive(id);
      btn.textContent = t('cam.live');
      $('.frame', tile).innerHTML = `<div class="noframe">${esc(t('cam.noFrame'))}</div>`;
    }
  }
}

function stopLive(key) {
  const l = lives.get(key);
  if (!l) return;
  lives.delete(key);
  if (l.pc) { l.pc.close(); endWHEP(l.loc); }
  // HLS: the gateway ends the stream once nobody has asked for a while
  if (l.hls) l.hls.destroy();
  l.video.removeAttribute('src');
  l.video.load();
}

function endWHEP(loc) {
  const headers = {};
  if (session && session.csrf) headers['X-CSRF-Token'] = session.csrf;
  fetch(loc, { method: 'DELETE', headers, credentials: 'same-origin', keepalive: true }).catch(() => {});
}

window.addEventListener('pagehide', () => { for (const id of [...lives.keys()]) stopLive(id); });

// ---------- devices ----------

let devices = [];

function batteryLow(d) {
  const s = d.state || {};
  return s.battery_low === true || (typeof s.battery === 'number' && s.battery < 20) ||
    s.last_event === 'wristband.low_battery' || s.last_event === 'device.low_battery';
}

async function loadDevices() {
  const box = $('#device-groups');
  try { devices = (await api('GET', '/api/v1/devices')).devices || []; } catch (e) { box.textContent = t('err.generic', { msg: errText(e) }); return; }
  if (!devices.length) { box.innerHTML = `<p class="muted">${esc(t('dev.none'))}</p>`; return; }
  const groups = new Map();
  for (const d of devices) {
    const b = (d.location && d.location.building) || '';
    if (!groups.has(b)) groups.set(b, []);
    groups.get(b).push(d);
  }
  const keys = [...groups.keys()].sort((x, y) => (x === '') - (y === '') || x.localeCompare(y, undefined, { numeric: true }));
  const admin = session && session.role === 'admin';
  box.innerHTML = keys.map((b) => `<div class="dev-group"><h2>${esc(b ? t('dev.building', { b }) : t('dev.common'))}</h2><div class="grid">${
    groups.get(b).map((d) => `<div class="card dev ${d.online ? '' : 'offline'}" data-dev="${esc(d.id)}" data-kind="${esc(d.kind)}">
      <div class="meta"><strong>${esc(d.id)}</strong><span>${fmtSource({ kind: d.kind, id: '' })}</span></div>
      <div class="meta"><span class="${d.online ? 'on-ok' : 'on-bad'}">${esc(t(d.online ? 'dev.online' : 'dev.offline'))}</span>
        ${batteryLow(d) ? `<span class="on-bad">${esc(t('dev.battery'))}</span>` : ''}
        <span class="muted">${esc(t('dev.lastSeen'))}: ${esc(d.last_seen && !d.last_seen.startsWith('0001') ? fmtAge(d.last_seen) : t('dev.never'))}</span></div>
      <div class="meta muted"><span>${esc(fmtLoc(d.location))}</span></div>
      ${d.kind === 'barrier_gate' ? `<div><button type="button" class="warn" data-cmd="gate">${esc(t('dev.openGate'))}</button></div>` : ''}
      ${d.kind === 'gas_valve' ? `<div><button type="button" data-cmd="valve" ${admin ? '' : 'disabled'} title="${esc(admin ? '' : t('dev.adminOnly'))}">${esc(t('dev.reopenValve'))}</button>${admin ? '' : ` <span class="muted">${esc(t('dev.adminOnly'))}</span>`}</div>` : ''}
    </div>`).join('')}</div></div>`).join('');
}

async function deviceCommand(id, which) {
  const d = devices.find((x) => x.id === id);
  if (!d) return;
  let r;
  if (which === 'gate') {
    r = await ask({ title: t('dev.confirmGate', { id }), note: 'optional', okText: t('dev.openGate'), okClass: 'warn' });
  } else {
    r = await ask({ title: t('dev.confirmValve', { home: home(d.location, id) }), note: 'required', okText: t('dev.reopenValve'), okClass: 'danger' });
    if (r.ok && !r.note) { toast(t('dlg.noteRequired')); return; }
  }
  if (!r.ok) return;
  try {
    await api('POST', `/api/v1/devices/${encodeURIComponent(id)}/command`, { action: 'open', note: r.note });
    toast(t('dev.done'));
  } catch (e) {
    toast(t('dev.failed', { msg: e.status === 403 ? t('err.forbidden') : errText(e) }));
  }
}

// ---------- event search ----------

let evQuery = null;
let evNext = 0;
let evShown = [];

function fillEventForm() {
  const f = $('#event-form');
  const type = f.elements.type;
  const cur = type.value;
  const groups = [...new Set(EVENT_TYPES.map((x) => x.split('.')[0]))];
  type.innerHTML = `<option value="">${esc(t('ev.any'))}</option>` +
    groups.map((g) => `<optgroup label="${esc(t('group.' + g))}"><option value="${esc(g)}.">${esc(t('ev.allOf', { g: t('group.' + g) }))}</option>${
      EVENT_TYPES.filter((x) => x.startsWith(g + '.')).map((x) => `<option value="${esc(x)}">${esc(typeName(x))}</option>`).join('')}</optgroup>`).join('');
  type.value = cur;
  const sev = f.elements.severity;
  const sv = sev.value;
  sev.innerHTML = `<option value="">${esc(t('ev.any'))}</option>` + ['info', 'warning', 'critical'].map((s) => `<option value="${s}">${esc(t('sev.' + s))}</option>`).join('');
  sev.value = sv;
  if (!f.elements.since.value) f.elements.since.value = fmtInput(new Date(Date.now() - 24 * 3600 * 1000));
}

// Time fields are plain text "YYYY-MM-DD HH:MM" (local time): the browser's
// own date picker speaks the operating system's language, not the console's.
function fmtInput(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

function parseInput(v) {
  const m = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2}))?$/.exec(v.trim());
  if (!m) return null;
  const d = new Date(+m[1], +m[2] - 1, +m[3], +(m[4] || 0), +(m[5] || 0));
  return Number.isNaN(d.getTime()) || d.getMonth() !== +m[2] - 1 ? null : d;
}

async function searchEvents(more) {
  const f = $('#event-form');
  if (!more) {
    const q = new URLSearchParams();
    for (const k of ['type', 'severity', 'building', 'unit', 'room']) if (f.elements[k].value.trim()) q.set(k, f.elements[k].value.trim());
    for (const k of ['since', 'until']) {
      const v = f.elements[k].value.trim();
      if (!v) continue;
      const d = parseInput(v);
      if (!d) { toast(t('ev.badTime', { v })); f.elements[k].focus(); return; }
      q.set(k, d.toISOString());
    }
    q.set('limit', '100');
    q.set('order', 'desc'); // newest first
    evQuery = q;
    evNext = 0;
    evShown = [];
  }
  const q = new URLSearchParams(evQuery);
  if (evNext) q.set('before', String(evNext));
  let data;
  try { data = await api('GET', '/api/v1/events?' + q); } catch (e) { toast(t('err.generic', { msg: errText(e) })); return; }
  evNext = data.next;
  evShown.push(...(data.events || []));
  renderEvents();
  $('#event-more').hidden = (data.events || []).length < 100;
}

function renderEvents() {
  $('#event-rows').innerHTML = evShown.map((e, i) => `<tr class="sev-${esc(e.severity)}" data-ev="${i}" data-seq="${e.seq}">
    <td>${esc(fmtTime(e.time))}</td><td>${esc(typeName(e.type))}</td><td>${esc(fmtLoc(e.location))}</td>
    <td>${fmtSource(e.source)}</td><td>${mediaLinks(e.media)}</td></tr>`).join('');
  $('#event-empty').hidden = evShown.length > 0;
}

// ---------- frame: tabs, language, login ----------

function showTab(name) {
  tab = name;
  for (const b of document.querySelectorAll('.tabs [data-tab]')) b.classList.toggle('on', b.dataset.tab === name);
  for (const s of document.querySelectorAll('main .tab')) s.hidden = s.id !== 'tab-' + name;
  clearInterval(camTimer);
  camTimer = null;
  if (name === 'cameras') { loadCameras(); camTimer = setInterval(loadCameras, 10000); }
  if (name === 'devices') loadDevices();
  if (name === 'events') { fillEventForm(); if (!evQuery) searchEvents(false); }
}

function renderAll() {
  applyStatic(document);
  document.title = t('app.title');
  if (session) {
    $('#who').textContent = `${session.name} · ${t('top.role.' + session.role)}`;
    setConn(document.body.dataset.conn || 'connecting');
    renderAlarms();
    renderEvents();
    for (const li of document.querySelectorAll('#live-list li')) $('.ty', li).textContent = typeName(li.dataset.type);
    if (tab !== 'alarms') showTab(tab);
  }
}

function toggleLang() {
  setLang(getLang() === 'zh-CN' ? 'en' : 'zh-CN');
  try { localStorage.setItem('warden.lang', getLang()); } catch { /* private mode */ }
  renderAll();
}

function showLogin(msg) {
  $('#app').hidden = true;
  $('#login').hidden = false;
  $('#login-error').textContent = msg || '';
  const u = $('#login-form').elements.username;
  (u.closest('[hidden]') ? $('#login-form').elements.token : u).focus();
}

function sessionLost() {
  stop();
  session = null;
  showLogin(t('login.expired'));
}

function stop() {
  for (const id of [...lives.keys()]) stopLive(id);
  if (es) es.close();
  es = null;
  clearTimeout(soundTimer);
  soundTimer = null;
  $('#sound-gate').hidden = true;
  $('#conn-banner').hidden = true;
  connLostAt = null;
  clearTimeout(esRetry);
  clearInterval(camTimer);
  camTimer = null;
  alarms.clear();
  lastSeq = 0;
  // Nothing of the last guard's session stays in the page: the next one
  // (maybe with another role) starts from an empty view.
  for (const id of ['#live-list', '#alarm-list', '#resolved-list', '#camera-grid', '#device-groups', '#event-rows']) {
    $(id).innerHTML = '';
  }
  updateAlert();
}

async function start(info) {
  session = info;
  $('#login').hidden = true;
  $('#app').hidden = false;
  document.body.dataset.conn = 'connecting';
  ensureAudio();
  renderAll();
  showTab('alarms');
  try { places = { buildings: {}, zones: {}, cameras: {}, ...(await api('GET', '/api/v1/places')) }; } catch { /* ids then */ }
  renderAlarms();
  try { await backfillLive(); } catch { /* the stream still starts */ }
  if (session === info) connect();
}

async function onLogin(ev) {
  ev.preventDefault();
  ensureAudio(); // a click: the browser now lets the alert sound
  const f = ev.target;
  const tokenMode = !$('.mode-token', f).hidden;
  const body = tokenMode ? { token: f.elements.token.value } : { username: f.elements.username.value, password: f.elements.password.value };
  $('#login-error').textContent = '';
  try {
    const info = await api('POST', '/api/v1/session', body);
    f.elements.password.value = '';
    f.elements.token.value = '';
    start(info);
  } catch (e) {
    let msg = t('login.failed', { msg: e.status === 401 ? t('login.bad') : errText(e) });
    if (e.status === 429) msg = t('login.rate', { s: e.retryAfter || '?' });
    if (e.status === 403) msg = t('login.forbidden');
    $('#login-error').textContent = msg;
  }
}

async function logout() {
  for (const id of [...lives.keys()]) stopLive(id); // while the session may still end them
  try { await api('DELETE', '/api/v1/session'); } catch { /* gone already */ }
  stop();
  session = null;
  showLogin('');
}

function wire() {
  for (const b of document.querySelectorAll('[data-wall]')) b.addEventListener('click', () => setWall(Number(b.dataset.wall)));
  for (const b of document.querySelectorAll('[data-action="lang"]')) b.addEventListener('click', toggleLang);
  $('#login-form').addEventListener('submit', onLogin);
  for (const b of document.querySelectorAll('.seg [data-mode]')) {
    b.addEventListener('click', () => {
      for (const x of document.querySelectorAll('.seg [data-mode]')) x.classList.toggle('on', x === b);
      $('.mode-user').hidden = b.dataset.mode !== 'user';
      $('.mode-token').hidden = b.dataset.mode !== 'token';
    });
  }
  $('#logout').addEventListener('click', logout);
  $('#sound-on').addEventListener('click', () => { ensureAudio(); beep(); });
  for (const b of document.querySelectorAll('.tabs [data-tab]')) b.addEventListener('click', () => showTab(b.dataset.tab));
  $('#alarm-list').addEventListener('click', onListClick);
  $('#resolved-list').addEventListener('click', onListClick);
  $('#show-resolved').addEventListener('change', () => loadAlarms().catch((e) => toast(e.message)));
  $('#device-groups').addEventListener('click', (ev) => {
    const b = ev.target.closest('[data-cmd]');
    if (b) deviceCommand(b.closest('[data-dev]').dataset.dev, b.dataset.cmd);
  });
  $('#event-form').addEventListener('submit', (ev) => { ev.preventDefault(); searchEvents(false); });
  $('#event-more').addEventListener('click', () => searchEvents(true));
  $('#event-rows').addEventListener('click', (ev) => {
    const m = ev.target.closest('[data-media]');
    const tr = ev.target.closest('[data-ev]');
    if (m && tr) openMedia(evShown[Number(tr.dataset.ev)].media[Number(m.dataset.media)]);
  });
  document.addEventListener('click', () => { if (audio && audio.state === 'suspended') ensureAudio(); });
  setInterval(() => {
    for (const el of document.querySelectorAll('.age[data-time]')) el.textContent = fmtAge(el.dataset.time);
  }, 15000);
}

async function main() {
  let l = 'zh-CN';
  try { l = localStorage.getItem('warden.lang') || l; } catch { /* private mode */ }
  setLang(l);
  applyStatic(document);
  document.title = t('app.title');
  wire();
  try {
    const info = await api('GET', '/api/v1/session');
    if (info.via !== 'session') throw new ApiError(401);
    start(info);
  } catch {
    showLogin('');
  }
}

main();
