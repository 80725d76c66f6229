// Throw camera calibration (admin): on the camera's latest picture the
// installer drags the facade's four corners (the floor lines follow,
// through the same homography the detector uses), draws mask and include
// regions, tests the result on the camera's last minute and saves it to
// the gateway's calibration overlay.
import { t } from './i18n.js';

const SVG = 'http://www.w3.org/2000/svg';

// homography maps the unit square (0,0 roof-left … 1,1 ground-right,
// facade coordinates) onto the image quad q: [roof-left, roof-right,
// ground-right, ground-left].
export function homography(q) {
  const src = [[0, 0], [1, 0], [1, 1], [0, 1]];
  const a = [];
  for (let i = 0; i < 4; i++) {
    const [x, y] = src[i];
    const [u, v] = q[i];
    a.push([x, y, 1, 0, 0, 0, -u * x, -u * y, u]);
    a.push([0, 0, 0, x, y, 1, -v * x, -v * y, v]);
  }
  for (let c = 0; c < 8; c++) {
    let p = c;
    for (let r = c + 1; r < 8; r++) if (Math.abs(a[r][c]) > Math.abs(a[p][c])) p = r;
    if (Math.abs(a[p][c]) < 1e-12) return null;
    [a[c], a[p]] = [a[p], a[c]];
    for (let r = 0; r < 8; r++) {
      if (r === c) continue;
      const f = a[r][c] / a[c][c];
      for (let k = c; k < 9; k++) a[r][k] -= f * a[c][k];
    }
  }
  const m = a.map((row, i) => row[8] / row[i]);
  m.push(1);
  return (x, y) => {
    const w = m[6] * x + m[7] * y + m[8];
    return [(m[0] * x + m[1] * y + m[2]) / w, (m[3] * x + m[4] * y + m[5]) / w];
  };
}

// floorLines are the image segments between floors: floors evenly spaced
// on the facade, so unevenly in a picture taken from below.
export function floorLines(q, floors) {
  const h = homography(q);
  if (!h || !(floors > 1)) return [];
  const out = [];
  for (let k = 1; k < floors; k++) out.push([h(0, k / floors), h(1, k / floors)]);
  return out;
}

function el(name, attrs = {}) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

// openCalibration shows the calibration page of camera id over the console.
export async function openCalibration(id, { api, errText, toast, esc }) {
  const page = document.getElementById('calib');
  let cal;
  try { cal = await api('GET', `/api/v1/cameras/${encodeURIComponent(id)}/calibration`); } catch (e) { toast(t('cal.err', { msg: errText(e) })); return; }
  const snap = await fetch(`/api/v1/cameras/${encodeURIComponent(id)}/snapshot`, { credentials: 'same-origin', cache: 'no-store' });
  if (!snap.ok) { toast(t('cal.noPicture')); return; }
  const url = URL.createObjectURL(await snap.blob());
  const img = new Image();
  await new Promise((done) => { img.onload = done; img.onerror = done; img.src = url; });
  const W = img.naturalWidth || 1280;
  const H = img.naturalHeight || 720;
  const state = {
    corners: cal.facade.corners.map((p) => [p[0], p[1]]),
    floors: cal.facade.floors, lowest: cal.facade.lowest_floor || 1,
    lines: cal.facade.floor_lines_y || [],
    zones: (cal.zones || []).map((z) => ({ ...z })),
    mode: 'corners', drawing: null,
  };
  page.innerHTML = `<div class="calib-head">
      <h2>${esc(t('cal.title', { cam: id }))}</h2>
      <label>${esc(t('cal.floors'))} <input type="number" min="1" max="200" name="floors" value="${state.floors}"></label>
      <label>${esc(t('cal.lowest'))} <input type="number" min="-200" max="200" name="lowest" value="${state.lowest}"></label>
      <div class="seg" role="group">
        <button type="button" data-mode="corners" class="on">${esc(t('cal.corners'))}</button>
        <button type="button" data-mode="mask">${esc(t('cal.mask'))}</button>
        <button type="button" data-mode="include">${esc(t('cal.include'))}</button>
      </div>
      <button type="button" data-act="finish" hidden>${esc(t('cal.finish'))}</button>
      <button type="button" data-act="clear">${esc(t('cal.clear'))}</button>
      <span class="spacer"></span>
      <button type="button" data-act="test">${esc(t('cal.test'))}</button>
      <button type="button" data-act="save" class="primary">${esc(t('cal.save'))}</button>
      <button type="button" data-act="close">${esc(t('cal.close'))}</button>
    </div>
    <p class="muted calib-help"></p>
    <div class="calib-stage"></div>
    <div class="calib-result"></div>`;
  const stage = page.querySelector('.calib-stage');
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, class: 'calib-svg' });
  svg.appendChild(el('image', { href: url, x: 0, y: 0, width: W, height: H }));
  const layer = el('g');
  svg.appendChild(layer);
  stage.appendChild(svg);
  const help = page.querySelector('.calib-help');
  const result = page.querySelector('.calib-result');
  const finishBtn = page.querySelector('[data-act="finish"]');
  const r = Math.max(6, W / 160);

  function toImage(ev) {
    const p = svg.createSVGPoint();
    p.x = ev.clientX; p.y = ev.clientY;
    const q = p.matrixTransform(svg.getScreenCTM().inverse());
    return [Math.round(Math.min(W, Math.max(0, q.x))), Math.round(Math.min(H, Math.max(0, q.y)))];
  }

  function draw() {
    layer.replaceChildren();
    for (const z of state.zones) {
      layer.appendChild(el('polygon', { points: z.points.map((p) => p.join(',')).join(' '), class: z.mask ? 'calib-mask' : 'calib-include' }));
    }
    if (state.drawing) {
      layer.appendChild(el('polyline', { points: state.drawing.points.map((p) => p.join(',')).join(' '), class: state.drawing.mask ? 'calib-mask' : 'calib-include' }));
    }
    const q = state.corners;
    layer.appendChild(el('polygon', { points: q.map((p) => p.join(',')).join(' '), class: 'calib-facade' }));
    for (const [a, b] of floorLines(q, state.floors)) {
      layer.appendChild(el('line', { x1: a[0], y1: a[1], x2: b[0], y2: b[1], class: 'calib-floor' }));
    }
    const label = el('text', { x: q[0][0], y: Math.max(14, q[0][1] - 6), class: 'calib-label' });
    label.textContent = `${state.lowest + state.floors - 1}F`;
    layer.appendChild(label);
    q.forEach((p, i) => {
      const h = el('circle', { cx: p[0], cy: p[1], r, class: 'calib-handle', 'data-corner': i });
      const tip = el('title');
      tip.textContent = t('cal.corner' + i);
      h.appendChild(tip);
      layer.appendChild(h);
    });
    help.textContent = t(state.mode === 'corners' ? 'cal.helpCorners' : 'cal.helpDraw');
    finishBtn.hidden = !state.drawing;
  }

  let drag = -1;
  svg.addEventListener('pointerdown', (ev) => {
    if (state.mode !== 'corners') return;
    const c = ev.target.getAttribute && ev.target.getAttribute('data-corner');
    if (c === null || c === undefined) return;
    drag = Number(c);
    svg.setPointerCapture(ev.pointerId);
    ev.preventDefault();
  });
  svg.addEventListener('click', (ev) => {
    if (state.mode === 'corners' || ev.detail > 1) return; // a double click's second ends the region
    if (!state.drawing) state.drawing = { mask: state.mode === 'mask', points: [] };
    state.drawing.points.push(toImage(ev));
    draw();
  });
  svg.addEventListener('pointermove', (ev) => {
    if (drag < 0) return;
    state.corners[drag] = toImage(ev);
    state.lines = []; // measured lines belong to the old corners
    draw();
  });
  svg.addEventListener('pointerup', () => { drag = -1; });
  svg.addEventListener('dblclick', () => finish());

  function finish() {
    const d = state.drawing;
    state.drawing = null;
    if (d && d.points.length >= 3) {
      const n = state.zones.filter((z) => z.mask === d.mask).length + 1;
      state.zones.push({ name: (d.mask ? 'mask-' : 'zone-') + n, mask: d.mask, points: d.points });
    } else if (d) toast(t('cal.needThree'));
    draw();
  }

  function body() {
    const facade = { corners: state.corners, floors: state.floors, lowest_floor: state.lowest };
    if (state.lines.length) facade.floor_lines_y = state.lines;
    return { facade, zones: state.zones.map((z) => ({ name: z.name, mask: z.mask, points: z.points })) };
  }

  function problem(e) {
    return e.code === 'calibration_invalid' ? `${t('errcode.calibration_invalid')}: ${e.message}` : errText(e);
  }

  page.querySelectorAll('[data-mode]').forEach((b) => b.addEventListener('click', () => {
    if (state.drawing) finish();
    state.mode = b.dataset.mode;
    page.querySelectorAll('[data-mode]').forEach((x) => x.classList.toggle('on', x === b));
    draw();
  }));
  page.querySelector('[name="floors"]').addEventListener('input', (ev) => { state.floors = Math.max(1, Number(ev.target.value) || 1); state.lines = []; draw(); });
  page.querySelector('[name="lowest"]').addEventListener('input', (ev) => { state.lowest = Number(ev.target.value) || 1; draw(); });
  finishBtn.addEventListener('click', finish);
  page.querySelector('[data-act="clear"]').addEventListener('click', () => { state.zones = []; state.drawing = null; draw(); });
  page.querySelector('[data-act="close"]').addEventListener('click', () => { page.hidden = true; page.replaceChildren(); URL.revokeObjectURL(url); });
  page.querySelector('[data-act="test"]').addEventListener('click', async (ev) => {
    const b = ev.target;
    b.disabled = true;
    result.textContent = t('cal.testing');
    try {
      const res = await api('POST', `/api/v1/cameras/${encodeURIComponent(id)}/calibration/test`, body());
      const head = `<p>${esc(t(res.alarms.length ? 'cal.found' : 'cal.nothing', { n: res.alarms.length, s: res.seconds.toFixed(0) }))}</p>`;
      result.innerHTML = head + res.alarms.map((a) => {
        const o = a.data.origin || {};
        return `<figure class="calib-alarm"><img alt="" src="${esc(a.image || '')}"><figcaption>${esc(t('cal.alarm', { t: a.t_s.toFixed(1), floor: o.floor, lo: o.floor_min, hi: o.floor_max }))}</figcaption></figure>`;
      }).join('');
    } catch (e) { result.textContent = problem(e); } finally { b.disabled = false; }
  });
  page.querySelector('[data-act="save"]').addEventListener('click', async (ev) => {
    const b = ev.target;
    b.disabled = true;
    try {
      const res = await api('PUT', `/api/v1/cameras/${encodeURIComponent(id)}/calibration`, body());
      toast(t(res.applied ? 'cal.saved' : 'cal.savedLater'));
      result.textContent = t('cal.where', { file: res.overlay });
    } catch (e) { result.textContent = problem(e); toast(problem(e)); } finally { b.disabled = false; }
  });
  page.hidden = false;
  draw();
}
