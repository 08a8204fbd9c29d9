// whakapapa's page: coverage sunburst, endpoint, test and line-of-code explorer, coverage over time,
// the dependency graph and the deprecated APIs programs call, all drawn by hand from the JSON API under api/v1. No framework, no build
// step. The URL's query string holds the whole view (filters, tab, zoom, selection) so a view
// can be shared; the first paint fetches only `releases` and `sunburst`, the rest on demand.
'use strict';

// Filters every query takes; sent to the API exactly as they appear in the page's URL.
const FILTER_KEYS = ['release', 'app', 'test', 'sig', 'conformance', 'since', 'until', 'ok-only', 'counting'];
// What the page shows; never sent to the API.
const VIEW_KEYS = ['view', 'focus', 'endpoint', 'loc', 'testcase', 'q', 'removed-in', 'overlay', 'relchart'];
// Rows drawn per list before a "show more" button: long lists stay cheap to draw.
const ROWS = 25;
// Rows asked of the API per list of an endpoint or search.
const LIMIT = 200;

let state = {};
let sunburstData = null;
// Endpoints the line of code or the test in the panel reaches, outlined in the sunburst.
let reached = new Set();
// Bumped by every load, so that a slow answer to an old view never overwrites a newer one.
const generation = { sunburst: 0, panel: 0, history: 0, deps: 0, deprecated: 0 };

const $ = (sel) => document.querySelector(sel);

// Builds an element: el('a', {class: 'link', onclick: f}, 'text', child...).
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  for (const k of kids.flat()) {
    if (k === null || k === undefined || k === false) continue;
    e.append(k instanceof Node ? k : String(k));
  }
  return e;
}

function svgEl(tag, attrs, ...kids) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttrs(e, attrs);
  for (const k of kids.flat()) {
    if (k === null || k === undefined) continue;
    e.append(k instanceof Node ? k : String(k));
  }
  return e;
}

function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
}

const fmt = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'));
const pct = (a, b) => (b ? `${((100 * a) / b).toFixed(1)}%` : '–');

// ---------------------------------------------------------------------------------------------
// URL state

function readUrl() {
  const p = new URLSearchParams(location.search);
  state = {};
  for (const k of [...FILTER_KEYS, ...VIEW_KEYS]) {
    const v = p.get(k);
    if (v !== null && v !== '') state[k] = v;
  }
}

function writeUrl(push) {
  const p = new URLSearchParams();
  for (const k of [...FILTER_KEYS, ...VIEW_KEYS]) if (state[k]) p.set(k, state[k]);
  const s = p.toString();
  const url = s ? `?${s}` : location.pathname;
  if (url === location.search || (!s && !location.search)) return;
  if (push) history.pushState(null, '', url);
  else history.replaceState(null, '', url);
}

// Changes view keys, records the new URL as a history entry, and redraws what changed.
function go(changes) {
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === '') delete state[k];
    else state[k] = String(v);
  }
  writeUrl(true);
}

// ---------------------------------------------------------------------------------------------
// API

// A collector started with --query-token-file answers the API only with that token. The page
// asks for it once and keeps it for the tab's session, never in the URL, which is for sharing.
const TOKEN_KEY = 'whakapapa-query-token';

async function api(name, extra, withFilters = true) {
  const p = new URLSearchParams();
  if (withFilters) for (const k of FILTER_KEYS) if (state[k]) p.set(k, state[k]);
  for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
  const qs = p.toString();
  const headers = { accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`api/v1/${name}${qs ? `?${qs}` : ''}`, { headers });
  if (res.status === 401) {
    askToken(!!token);
    throw new Error('the collector asks for its query token');
  }
  let body = null;
  try {
    body = await res.json();
  } catch (_) {
    body = null;
  }
  if (!res.ok) throw new Error(body && body.error ? body.error : `${name}: HTTP ${res.status}`);
  return body;
}

function askToken(wrong) {
  const form = $('#token');
  if (!form.hidden) return;
  form.hidden = false;
  $('#token-why').textContent = wrong ? 'That token was refused; query token:' : 'This collector needs its query token:';
  $('#token-input').focus();
}

function onToken(ev) {
  ev.preventDefault();
  const v = $('#token-input').value.trim();
  if (!v) return;
  sessionStorage.setItem(TOKEN_KEY, v);
  $('#token-input').value = '';
  $('#token').hidden = true;
  loadReleases().catch(() => {});
  refresh();
}

let busy = 0;
// `data-busy` on <body> counts loads in flight, so a test (or a person) can tell the page is idle.
function setBusy(n) {
  busy = n;
  document.body.dataset.busy = String(n);
}
function status(text, isError) {
  const s = $('#status');
  s.textContent = text || '';
  s.classList.toggle('error', !!isError);
}
async function loading(what, f) {
  setBusy(busy + 1);
  status(`loading ${what}…`);
  try {
    const r = await f();
    setBusy(busy - 1);
    if (busy === 0 && !$('#status').classList.contains('error')) status('');
    return r;
  } catch (e) {
    setBusy(busy - 1);
    status(`${what}: ${e.message}`, true);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Filters

function fromRfc3339(v) {
  // The inputs show UTC without the zone: 2026-11-20T10:03:11.402Z -> 2026-11-20T10:03:11
  return v ? v.replace(/Z$/, '').replace(/\.\d+$/, '').slice(0, 19) : '';
}
function toRfc3339(v) {
  if (!v) return '';
  return (v.length === 16 ? `${v}:00` : v) + 'Z';
}

function fillFilters() {
  for (const k of FILTER_KEYS) {
    const input = document.getElementById(`f-${k}`);
    if (!input) continue;
    const v = state[k] || '';
    if (input.type === 'checkbox') input.checked = v === 'true';
    else if (input.type === 'datetime-local') input.value = fromRfc3339(v);
    else if (input.tagName === 'SELECT' && v && ![...input.options].some((o) => o.value === v)) {
      input.append(el('option', { value: v }, v));
      input.value = v;
    } else input.value = v;
    input.classList.toggle('set', !!v);
  }
  $('#search').value = state.q || '';
  $('#overlay-hits').checked = state.overlay === 'hits';
}

function readFilter(input) {
  const k = input.name;
  let v;
  if (input.type === 'checkbox') v = input.checked ? 'true' : '';
  else if (input.type === 'datetime-local') v = toRfc3339(input.value);
  else v = input.value.trim();
  return [k, v];
}

let filterTimer = null;
function onFilter(ev) {
  const input = ev.target;
  if (!input.name) return;
  const typing = ev.type === 'input' && input.type !== 'checkbox' && input.tagName !== 'SELECT';
  clearTimeout(filterTimer);
  const apply = () => {
    const [k, v] = readFilter(input);
    if ((state[k] || '') === v) return;
    go({ [k]: v });
    input.classList.toggle('set', !!v);
    refresh();
  };
  if (typing) filterTimer = setTimeout(apply, 350);
  else apply();
}

// ---------------------------------------------------------------------------------------------
// Releases

async function loadReleases() {
  const rows = await api('releases', {}, false);
  const sel = $('#f-release');
  const latest = rows.length ? rows[rows.length - 1].release : null;
  sel.replaceChildren(el('option', { value: '' }, latest ? `latest (${latest})` : 'latest'));
  for (const r of rows) sel.append(el('option', { value: r.release }, `${r.release} · ${fmt(r.requests)} request${r.requests === 1 ? '' : 's'}`));
  fillFilters();
}

// ---------------------------------------------------------------------------------------------
// Sunburst: three rings (level, category, endpoint), every endpoint the same angle, as APISnoop's.

const R = { hole: 112, level: [114, 146], category: [148, 206], endpoint: [208, 318] };

function endpointClass(e) {
  if (e.conf_tested) return 'conf';
  if (e.tested) return 'tested';
  return e.eligible ? 'untested' : 'ineligible';
}

function arcPath(a0, a1, r0, r1) {
  // A full ring cannot be one arc: draw it as two halves.
  if (a1 - a0 >= 2 * Math.PI - 1e-9) {
    const m = a0 + Math.PI;
    return arcPath(a0, m, r0, r1) + arcPath(m, a0 + 2 * Math.PI, r0, r1);
  }
  const large = a1 - a0 > Math.PI ? 1 : 0;
  const p = (a, r) => `${(r * Math.sin(a)).toFixed(2)} ${(-r * Math.cos(a)).toFixed(2)}`;
  return `M${p(a0, r1)}A${r1} ${r1} 0 ${large} 1 ${p(a1, r1)}L${p(a1, r0)}A${r0} ${r0} 0 ${large} 0 ${p(a0, r0)}Z`;
}

function countsText(c) {
  return `${fmt(c.tested)} of ${fmt(c.total)} tested · ${fmt(c.conf_tested)} by conformance`;
}

// The part of the tree the zoom (focus = "level" or "level/category") shows.
function focused(data) {
  const [lv, cat] = (state.focus || '').split('/');
  let levels = data.levels;
  let node = { name: data.release, counts: data.totals };
  if (lv) {
    const l = levels.find((x) => x.level === lv);
    if (l) {
      levels = [l];
      node = { name: l.level, counts: l };
      if (cat) {
        const c = l.categories.find((x) => x.category === cat);
        if (c) {
          levels = [{ ...l, categories: [c] }];
          node = { name: `${l.level} / ${c.category}`, counts: c };
        }
      }
    }
  }
  return { levels, node };
}

function drawSunburst() {
  const data = sunburstData;
  const svg = $('#sunburst');
  if (!data) return;
  const { levels, node } = focused(data);
  const n = levels.reduce((s, l) => s + l.categories.reduce((t, c) => t + c.endpoints.length, 0), 0);
  const step = n ? (2 * Math.PI) / n : 0;
  // Thin arcs would be all outline: drop most of it when they are many.
  svg.classList.toggle('dense', n > 300);
  const frag = document.createDocumentFragment();
  const legend = { conf: 0, tested: 0, untested: 0, ineligible: 0 };
  // The hits overlay shades each endpoint by its requests on a log scale, so one busy endpoint
  // does not wash out the rest; the colour still says tested or not.
  const shade = state.overlay === 'hits' ? hitsShade(levels) : null;
  let a = 0;
  for (const l of levels) {
    const la = a;
    for (const c of l.categories) {
      const ca = a;
      for (const e of c.endpoints) {
        const cls = endpointClass(e);
        legend[cls]++;
        const selected = state.endpoint === e.endpoint || ((state.loc || state.testcase) && reached.has(e.endpoint)) ? ' selected' : '';
        const s = shade ? shade(e.hits) : null;
        frag.append(
          svgEl('path', { d: arcPath(a, a + step, R.endpoint[0], R.endpoint[1]), class: `ep ${cls}${selected}`, 'data-endpoint': e.endpoint, 'data-path': e.path, 'data-shade': s === null ? null : s.toFixed(3), style: s === null ? null : `fill-opacity:${s.toFixed(3)}` },
            svgEl('title', {}, `${e.endpoint}\n${e.path}\n${cls} · ${fmt(e.hits)} requests`)),
        );
        a += step;
      }
      if (a > ca) {
        frag.append(
          svgEl('path', { d: arcPath(ca, a, R.category[0], R.category[1]), class: `cat level-${l.level}`, 'data-level': l.level, 'data-category': c.category, style: `opacity:${0.35 + 0.65 * (c.total ? c.tested / c.total : 0)}` },
            svgEl('title', {}, `${l.level} / ${c.category}\n${countsText(c)}`)),
        );
        if (a - ca > 0.12) frag.append(ringLabel(c.category, ca, a, (R.category[0] + R.category[1]) / 2));
      }
    }
    if (a > la) {
      frag.append(
        svgEl('path', { d: arcPath(la, a, R.level[0], R.level[1]), class: `lvl level-${l.level}`, 'data-level': l.level },
          svgEl('title', {}, `${l.level}\n${countsText(l)}`)),
      );
      if (a - la > 0.2) frag.append(ringLabel(l.level, la, a, (R.level[0] + R.level[1]) / 2));
    }
  }
  frag.append(svgEl('circle', { r: R.hole, class: 'centre', 'data-centre': '' }));
  const centre = svgEl('g', { id: 'centre-text' });
  frag.append(centre);
  svg.replaceChildren(frag);
  for (const sel of [...svg.querySelectorAll('path.selected')]) svg.append(sel);
  showCentre(node.name, node.counts);
  showTotals(node.name, node.counts, legend);
  const crumbs = $('#crumbs');
  crumbs.replaceChildren();
  if (state.focus) {
    const [lv, cat] = state.focus.split('/');
    crumbs.append(el('a', { onclick: () => zoom('') }, data.release), ' › ');
    if (cat) crumbs.append(el('a', { onclick: () => zoom(lv) }, lv), ' › ', cat);
    else crumbs.append(lv);
  }
}

// Opacity for an endpoint's requests: 0.15 for none, 0.3 to 1 from one request to the most any
// endpoint drawn has.
function hitsShade(levels) {
  let max = 0;
  for (const l of levels) for (const c of l.categories) for (const e of c.endpoints) max = Math.max(max, e.hits);
  const top = Math.log1p(max);
  return (hits) => (hits > 0 && top > 0 ? 0.3 + (0.7 * Math.log1p(hits)) / top : 0.15);
}

function onOverlay(ev) {
  go({ overlay: ev.target.checked ? 'hits' : '' });
  drawSunburst();
}

function ringLabel(text, a0, a1, r) {
  const m = (a0 + a1) / 2;
  let deg = (m * 180) / Math.PI;
  // Keep the text upright on the lower half.
  if (deg > 90 && deg < 270) deg += 180;
  const x = r * Math.sin(m);
  const y = -r * Math.cos(m);
  const max = Math.max(3, Math.floor(((a1 - a0) * r) / 6.5));
  const t = text.length > max ? `${text.slice(0, max - 1)}…` : text;
  return svgEl('text', { class: 'ring-label', x: x.toFixed(1), y: (y + 3).toFixed(1), transform: `rotate(${(deg > 180 ? deg - 360 : deg).toFixed(1)} ${x.toFixed(1)} ${y.toFixed(1)})` }, t);
}

function showCentre(name, c, extra) {
  const g = $('#centre-text');
  if (!g) return;
  const eligible = c.eligible || 0;
  g.replaceChildren(
    svgEl('text', { class: 'c-name', y: -44 }, name.length > 26 ? `${name.slice(0, 25)}…` : name),
    svgEl('text', { class: 'c-big', y: 6, id: 'centre-pct' }, eligible ? pct(c.tested_eligible, eligible) : pct(c.tested, c.total)),
    svgEl('text', { class: 'c-small', y: 28 }, eligible ? 'of eligible endpoints tested' : 'of endpoints tested'),
    svgEl('text', { class: 'c-small', y: 46 }, `${fmt(c.tested)} / ${fmt(c.total)} tested`),
    svgEl('text', { class: 'c-small', y: 62 }, extra || `${fmt(c.conf_tested)} conformance-tested`),
  );
}

function showTotals(name, c, legend) {
  $('#summary-title').textContent = name;
  for (const k of ['total', 'tested', 'conf_tested', 'eligible', 'tested_eligible', 'conf_tested_eligible']) {
    const base = k === 'total' ? null : k.endsWith('_eligible') ? c.eligible : k === 'eligible' ? c.total : c.total;
    document.getElementById(`t-${k}`).textContent = base === null ? fmt(c[k]) : `${fmt(c[k])} (${pct(c[k], base)})`;
    document.getElementById(`t-${k}`).dataset.value = c[k];
  }
  for (const k of Object.keys(legend)) {
    const b = document.getElementById(`l-${k}`);
    b.textContent = fmt(legend[k]);
    b.dataset.value = legend[k];
  }
}

function onSunburstOver(ev) {
  const t = ev.target;
  if (!sunburstData || !t.dataset) return;
  if (t.dataset.endpoint) {
    const e = findEndpoint(t.dataset.endpoint);
    if (e) {
      const g = $('#centre-text');
      g.replaceChildren(
        svgEl('text', { class: 'c-name', y: -30 }, e.endpoint.length > 26 ? `${e.endpoint.slice(0, 25)}…` : e.endpoint),
        svgEl('text', { class: 'c-small', y: -8 }, e.path.length > 34 ? `…${e.path.slice(-33)}` : e.path),
        svgEl('text', { class: 'c-big', y: 30 }, fmt(e.hits)),
        svgEl('text', { class: 'c-small', y: 48 }, `requests · ${endpointClass(e)}`),
      );
    }
  } else if (t.dataset.category) {
    const l = sunburstData.levels.find((x) => x.level === t.dataset.level);
    const c = l && l.categories.find((x) => x.category === t.dataset.category);
    if (c) showCentre(`${l.level} / ${c.category}`, c);
  } else if (t.dataset.level) {
    const l = sunburstData.levels.find((x) => x.level === t.dataset.level);
    if (l) showCentre(l.level, l);
  }
}

function onSunburstOut() {
  if (!sunburstData) return;
  const { node } = focused(sunburstData);
  showCentre(node.name, node.counts);
}

function onSunburstClick(ev) {
  const t = ev.target;
  if (!t.dataset) return;
  if (t.dataset.endpoint) selectEndpoint(t.dataset.endpoint);
  else if (t.dataset.category) zoom(`${t.dataset.level}/${t.dataset.category}`);
  else if (t.dataset.level) zoom(t.dataset.level);
  else if (t.dataset.centre !== undefined) {
    const [lv, cat] = (state.focus || '').split('/');
    zoom(cat ? lv : '');
  }
}

function zoom(focus) {
  go({ focus });
  drawSunburst();
}

function findEndpoint(id) {
  for (const l of sunburstData.levels) for (const c of l.categories) for (const e of c.endpoints) if (e.endpoint === id) return e;
  return null;
}

async function loadSunburst() {
  const g = ++generation.sunburst;
  let data;
  try {
    data = await loading('sunburst', () => api('sunburst'));
  } catch (e) {
    // Say why in the chart's place too: an empty database is the first thing people see.
    if (g === generation.sunburst) {
      sunburstData = null;
      $('#sunburst').replaceChildren(svgEl('text', { y: 0, class: 'c-small', id: 'sunburst-error' }, e.message));
    }
    throw e;
  }
  if (g !== generation.sunburst) return;
  sunburstData = data;
  drawSunburst();
}

// ---------------------------------------------------------------------------------------------
// Panel: one endpoint, one line of code, or search results.

function selectEndpoint(id) {
  go({ endpoint: id, loc: '', testcase: '', q: '' });
  for (const p of document.querySelectorAll('#sunburst path.selected')) p.classList.remove('selected');
  const p = document.querySelector(`#sunburst path[data-endpoint="${CSS.escape(id)}"]`);
  if (p) {
    p.classList.add('selected');
    // Last drawn is on top: the outline is not hidden under its neighbours.
    p.parentNode.append(p);
  }
  loadPanel();
}

function selectLoc(loc) {
  go({ loc, endpoint: '', testcase: '', q: '' });
  for (const p of document.querySelectorAll('#sunburst path.selected')) p.classList.remove('selected');
  loadPanel();
}

function selectTest(name) {
  go({ testcase: name, endpoint: '', loc: '', q: '' });
  for (const p of document.querySelectorAll('#sunburst path.selected')) p.classList.remove('selected');
  loadPanel();
}

// Outlines in the sunburst the endpoints a line of code or a test reaches.
function markEndpoints(ids) {
  const svg = $('#sunburst');
  for (const p of svg.querySelectorAll('path.selected')) p.classList.remove('selected');
  for (const p of svg.querySelectorAll('path.ep')) {
    if (ids.has(p.dataset.endpoint)) {
      p.classList.add('selected');
      svg.append(p);
    }
  }
}

function endpointLink(id) {
  return el('button', { class: 'link endpoint-link', type: 'button', 'data-endpoint': id, onclick: () => selectEndpoint(id) }, id);
}

function testLink(name) {
  return el('button', { class: 'link test-link', type: 'button', 'data-test': name, title: 'this test\'s endpoints', onclick: () => selectTest(name) }, name);
}

function locLink(f, text) {
  const loc = `${f.file}:${f.line}`;
  return el('button', { class: 'link loc-link', type: 'button', 'data-loc': loc, title: `${f.function}\n${loc}`, onclick: () => selectLoc(loc) }, text || loc);
}

// A table of at most ROWS rows, with a button that draws the next ROWS.
function rowsTable(id, head, rows, row) {
  const tbody = el('tbody');
  const table = el('table', { class: 'rows', id }, el('thead', {}, el('tr', {}, head.map((h) => el('th', {}, h)))), tbody);
  const wrap = el('div', {}, table);
  let shown = 0;
  const more = el('button', { class: 'link more', type: 'button' });
  const draw = () => {
    const next = rows.slice(shown, shown + ROWS);
    for (const r of next) tbody.append(el('tr', {}, row(r).map((c) => (c instanceof Node && c.tagName === 'TD' ? c : el('td', {}, c)))));
    shown += next.length;
    more.textContent = `show ${Math.min(ROWS, rows.length - shown)} more of ${fmt(rows.length - shown)}`;
    more.hidden = shown >= rows.length;
  };
  more.addEventListener('click', draw);
  draw();
  if (!rows.length) tbody.append(el('tr', {}, el('td', { colspan: head.length, class: 'hint' }, 'none')));
  wrap.append(more);
  return wrap;
}

const num = (v) => el('td', { class: 'n' }, fmt(v));
const codeChip = (c) => el('span', { class: `chip ${c.code >= 200 && c.code < 300 ? 'ok' : c.code >= 400 || c.code === 0 ? 'err' : ''}`, 'data-code': c.code }, `${c.code === 0 ? 'no response' : c.code} × ${fmt(c.hits)}`);

async function loadPanel() {
  const g = ++generation.panel;
  const panel = $('#panel');
  let node;
  try {
    if (state.endpoint) {
      const d = await loading('endpoint', () => api('endpoint', { endpoint: state.endpoint, limit: LIMIT }));
      if (g !== generation.panel) return;
      node = endpointPanel(d);
    } else if (state.loc) {
      const d = await loading('line of code', () => api('loc', { loc: state.loc }));
      if (g !== generation.panel) return;
      node = locPanel(d);
      reached = new Set(d.endpoints.map((e) => e.endpoint));
      markEndpoints(reached);
    } else if (state.testcase) {
      // `test` matches a substring: of the tests it finds, the panel is the one of that name.
      const d = await loading('test', () => api('tests', { test: state.testcase }));
      if (g !== generation.panel) return;
      const t = d.find((row) => row.test === state.testcase);
      node = testPanel(t, state.testcase);
      reached = new Set(t ? t.endpoints.map((e) => e.endpoint) : []);
      markEndpoints(reached);
      // What other programs did on its behalf scans every request: drawn when it comes.
      if (t) loadIndirect(g, t.test);
    } else if (state.q) {
      const d = await loading('search', () => api('search', { q: state.q, limit: LIMIT }));
      if (g !== generation.panel) return;
      node = searchPanel(d);
    }
  } catch (e) {
    if (g !== generation.panel) return;
    node = el('p', { class: 'hint error' }, e.message);
  }
  if (node) panel.replaceChildren(node);
  else panel.replaceChildren();
}

// The programs whose stacks pass through each line of code, from the purposes listed.
function appsByLoc(purposes) {
  const m = new Map();
  for (const p of purposes) {
    for (const f of p.frames) {
      const k = `${f.function}@${f.file}:${f.line}`;
      if (!m.has(k)) m.set(k, new Set());
      if (p.app) m.get(k).add(p.app);
    }
  }
  return m;
}

function locApps(l, appsAt) {
  const names = [...(appsAt.get(`${l.function}@${l.file}:${l.line}`) || [])].sort();
  // Names when the purposes account for all of them; the count otherwise.
  if (!names.length || names.length !== l.apps) return num(l.apps);
  return el('td', { class: 'apps', title: `${l.apps} program(s)` }, names.slice(0, 3).join(', ') + (names.length > 3 ? ` +${names.length - 3}` : ''));
}

function endpointPanel(d) {
  const e = d.endpoint;
  const appsAt = appsByLoc(d.purposes);
  const cls = endpointClass(e);
  return el('div', { id: 'endpoint-panel', 'data-endpoint': e.endpoint },
    el('h2', {}, e.endpoint),
    el('div', { class: 'sub' }, el('code', {}, `${e.method.toUpperCase()} ${e.path}`)),
    el('div', { class: 'sub' }, `${e.level} · ${e.category}${e.group ? ` · ${e.group}/${e.version}` : ` · ${e.version}`}${e.kind ? ` · ${e.kind}` : ''} · ${e.action}`),
    el('p', {}, el('span', { class: `badge ${cls}` }, cls === 'conf' ? 'conformance-tested' : cls), e.eligible ? null : el('span', { class: 'badge ineligible' }, 'ineligible')),
    el('div', { class: 'stats' },
      el('div', {}, el('b', { id: 'ep-hits' }, fmt(e.hits)), 'requests'),
      el('div', {}, el('b', { id: 'ep-apps' }, fmt(e.apps)), 'programs'),
      el('div', {}, el('b', { id: 'ep-tests' }, fmt(e.tests)), 'tests'),
      el('div', {}, el('b', { id: 'ep-locs' }, fmt(e.locs)), 'lines of code')),
    el('h3', {}, 'Status codes'),
    el('div', { id: 'ep-codes' }, d.codes.length ? d.codes.map(codeChip) : el('span', { class: 'hint' }, 'no requests')),
    el('h3', {}, 'Verbs'),
    el('div', { id: 'ep-verbs' }, d.verbs.map((v) => el('span', { class: 'chip' }, `${v.verb} × ${fmt(v.hits)}`))),
    el('h3', {}, 'Lines of code'),
    rowsTable('ep-locs-table', ['function', 'file:line', 'programs', 'requests'], d.locs, (l) => [el('code', {}, l.function), locLink(l), locApps(l, appsAt), num(l.hits)]),
    el('h3', {}, 'Programs'),
    rowsTable('ep-apps-table', ['program', 'identity', 'requests'], d.apps, (a) => [
      el('button', { class: 'link', type: 'button', title: 'filter by this program', onclick: () => setFilter('app', a.app) }, a.app), el('code', {}, a.identity), num(a.hits)]),
    el('h3', {}, 'Tests'),
    rowsTable('ep-tests-table', ['test', 'SIG', 'conformance', 'requests'], d.tests, (t) => [testLink(t.test), t.sig || '', t.conformance ? 'yes' : '', num(t.hits)]),
    el('h3', {}, 'Purposes (call stacks)'),
    rowsTable('ep-purposes-table', ['stack', 'requests'], d.purposes, (p) => [
      el('details', {},
        el('summary', {}, el('code', {}, p.fingerprint), ` ${p.app || '?'}${p.test ? ` · ${p.test}` : ''}${p.complete ? '' : ' · partial'}`),
        el('ol', {}, p.frames.map((f) => el('li', {}, el('code', {}, f.function), ' ', locLink(f))))),
      num(p.hits)]),
  );
}

// One test: the endpoints its requests hit, by requests, under the page's filters.
function testPanel(t, name) {
  if (!t) return el('p', { class: 'hint', id: 'test-panel-none' }, `No requests from the test “${name}” under these filters.`);
  return el('div', { id: 'test-panel', 'data-test': t.test },
    el('h2', {}, t.test),
    el('p', {},
      t.sig ? el('span', { class: 'badge sig' }, t.sig) : null,
      t.conformance ? el('span', { class: 'badge conf' }, 'conformance') : null,
      el('button', { class: 'link', type: 'button', id: 'test-filter', title: 'count only this test everywhere', onclick: () => setFilter('test', t.test) }, 'filter by this test')),
    el('div', { class: 'stats' },
      el('div', { title: 'every request of the test, to any release or to no endpoint' }, el('b', { id: 'test-hits' }, fmt(t.hits)), 'requests'),
      el('div', {}, el('b', { id: 'test-release-hits' }, fmt(t.endpoints.reduce((n, e) => n + e.hits, 0))), 'to this release'),
      el('div', {}, el('b', { id: 'test-endpoints' }, fmt(t.endpoints.length)), 'endpoints')),
    el('h3', {}, 'Endpoints it hits'),
    rowsTable('test-endpoints-table', ['endpoint', 'requests'], t.endpoints, (e) => [endpointLink(e.endpoint), num(e.hits)]),
    el('h3', { title: 'requests of programs that are no test, in the namespaces the test owns, while it runs' }, 'On its behalf (indirect)'),
    el('div', { id: 'test-indirect' }, el('span', { class: 'hint' }, 'loading…')),
  );
}

async function loadIndirect(g, test) {
  let node;
  try {
    const d = await loading('indirect', () => api('indirect', { test }));
    if (g !== generation.panel) return;
    const rows = d.rows.filter((r) => r.test === test);
    const only = new Set(d.indirect_only);
    node = el('div', {},
      el('div', { class: 'stats' },
        el('div', {}, el('b', { id: 'test-indirect-hits' }, fmt(rows.reduce((n, r) => n + r.hits, 0))), 'requests'),
        el('div', {}, el('b', { id: 'test-indirect-only' }, fmt(new Set(rows.filter((r) => only.has(r.endpoint)).map((r) => r.endpoint)).size)), 'endpoints only this way')),
      rowsTable('test-indirect-table', ['program', 'endpoint', 'requests'], rows, (r) => [
        el('span', { title: r.detail }, r.app, r.detail ? el('div', { class: 'sub' }, r.detail) : null),
        endpointLink(r.endpoint), num(r.hits)]));
  } catch (e) {
    if (g !== generation.panel) return;
    node = el('p', { class: 'hint error' }, e.message);
  }
  const slot = $('#test-indirect');
  if (slot) slot.replaceChildren(node);
}

function locPanel(d) {
  return el('div', { id: 'loc-panel', 'data-loc': d.loc },
    el('h2', {}, d.loc),
    el('div', { class: 'sub' }, `${fmt(d.matched.length)} line(s) of code · reaches ${fmt(new Set(d.endpoints.map((e) => e.endpoint)).size)} endpoint(s)`),
    el('h3', {}, 'Endpoints it reaches'),
    rowsTable('loc-endpoints-table', ['endpoint', 'verb', 'programs', 'requests', 'status codes'], d.endpoints, (e) => [
      el('div', {}, e.endpoint.startsWith('unmapped:') ? el('span', { class: 'hint' }, e.endpoint) : endpointLink(e.endpoint), el('div', { class: 'sub' }, el('code', {}, `${e.method.toUpperCase()} ${e.path}`))),
      el('td', { class: 'nowrap' }, e.verb), num(e.apps), num(e.hits), el('div', {}, e.codes.map(codeChip))]),
    el('h3', {}, 'Lines of code matched'),
    rowsTable('loc-matched-table', ['function', 'file:line'], d.matched, (f) => [el('code', {}, f.function), locLink(f)]),
  );
}

function searchPanel(d) {
  return el('div', { id: 'search-panel' },
    el('h2', {}, `Search: ${state.q}`),
    el('h3', {}, 'Functions'),
    rowsTable('search-functions', ['function', 'lines', 'requests'], d.functions, (f) => [
      el('button', { class: 'link', type: 'button', onclick: () => selectLoc(f.function) }, el('code', {}, f.function)), num(f.locs), num(f.hits)]),
    el('h3', {}, 'Files'),
    rowsTable('search-files', ['file', 'lines', 'requests'], d.files, (f) => [
      el('button', { class: 'link', type: 'button', onclick: () => selectLoc(f.file) }, el('code', {}, f.file)), num(f.locs), num(f.hits)]),
  );
}

function setFilter(k, v) {
  go({ [k]: v });
  fillFilters();
  refresh();
}

let searchTimer = null;
function onSearch(ev) {
  clearTimeout(searchTimer);
  const q = ev.target.value.trim();
  searchTimer = setTimeout(() => {
    if (q === (state.q || '')) return;
    go(q ? { q, endpoint: '', loc: '', testcase: '' } : { q: '' });
    loadPanel();
  }, ev.type === 'change' ? 0 : 300);
}

// ---------------------------------------------------------------------------------------------
// Coverage over time: per ingest run, and per release.

async function loadHistory() {
  const g = ++generation.history;
  const [d, p] = await loading('history', () => Promise.all([api('history'), api('progress')]));
  if (g !== generation.history) return;
  drawHistory(d);
  progressData = p;
  drawProgress();
}

// ---------------------------------------------------------------------------------------------
// Conformance progress per release: one stacked bar a release, as a number of endpoints or as a
// percentage of those promoted so far (`relchart`, as APISnoop's page has it).

let progressData = null;
const PROGRESS_GROUPS = [
  ['tested', 'tested'],
  ['old_covered_by_new', 'old, first tested'],
  ['promoted_with_tests', 'new, with tests'],
  ['promoted_without_tests', 'new, without tests'],
  ['untested', 'untested'],
];

function drawProgress() {
  const p = progressData;
  const svg = $('#progress-chart');
  if (!p) return;
  const percent = state.relchart === 'percent';
  for (const b of document.querySelectorAll('#progress-mode button')) b.classList.toggle('active', (b.dataset.mode === 'percent') === percent);
  const W = 760;
  const H = 300;
  const m = { l: 52, r: 16, t: 12, b: 64 };
  const rels = p.releases;
  const frag = document.createDocumentFragment();
  const top = percent ? 100 : Math.max(1, ...rels.map((r) => r.endpoints));
  const y = (v) => H - m.b - (v * (H - m.t - m.b)) / top;
  const band = rels.length ? (W - m.l - m.r) / rels.length : 0;
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    const v = top * f;
    frag.append(svgEl('line', { class: 'grid', x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }),
      svgEl('text', { x: m.l - 6, y: y(v) + 4, 'text-anchor': 'end' }, percent ? `${Math.round(v)}%` : fmt(Math.round(v))));
  }
  if (!rels.length) frag.append(svgEl('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'no release whose label is a version'));
  rels.forEach((r, i) => {
    const x = m.l + i * band + band * 0.15;
    const w = band * 0.7;
    let acc = 0;
    for (const [key, label] of PROGRESS_GROUPS) {
      const n = r[key];
      const v = percent ? (r.endpoints ? (100 * n) / r.endpoints : 0) : n;
      frag.append(svgEl('rect', { class: `pg ${key}`, x, width: w, y: y(acc + v), height: Math.max(0, y(acc) - y(acc + v)), 'data-release': r.release, 'data-group': key, 'data-value': percent ? v.toFixed(1) : n },
        svgEl('title', {}, `${r.release}: ${label}\n${fmt(n)} of ${fmt(r.endpoints)} (${pct(n, r.endpoints)})`)));
      acc += v;
    }
    frag.append(svgEl('text', { x: x + w / 2, y: H - m.b + 16, 'text-anchor': 'middle' }, r.release),
      svgEl('text', { x: x + w / 2, y: H - m.b + 30, 'text-anchor': 'middle', class: 'pg-pct' }, pct(r.conformance_tested, r.endpoints)));
  });
  PROGRESS_GROUPS.forEach(([key, label], i) => {
    const lx = m.l + i * 142;
    frag.append(svgEl('rect', { class: `pg ${key}`, x: lx, y: H - 18, width: 12, height: 12 }), svgEl('text', { x: lx + 16, y: H - 8 }, label));
  });
  svg.replaceChildren(frag);
  $('#progress-new').replaceChildren(rowsTable('progress-new-table', ['release', 'new endpoint', 'state'],
    rels.flatMap((r) => r.new_endpoints.map((e) => ({ release: r.release, ...e }))),
    (e) => [e.release, endpointLink(e.endpoint), e.state.replaceAll('_', ' ')]));
  $('#progress-runs').replaceChildren(rowsTable('progress-runs-table', ['release', 'run', 'requests', 'source'],
    rels.flatMap((r) => r.runs.map((s) => ({ release: r.release, ...s }))),
    (s) => [s.release, `#${s.run}`, num(s.requests), s.url ? el('a', { href: s.url, rel: 'noopener' }, `${s.job} ${s.build}`) : el('code', {}, s.source)]));
}

function onProgressMode(ev) {
  const mode = ev.target.dataset.mode;
  if (!mode) return;
  go({ relchart: mode === 'percent' ? 'percent' : '' });
  drawProgress();
}

function drawHistory(d) {
  const svg = $('#history-chart');
  const W = 760;
  const H = 320;
  const m = { l: 52, r: 44, t: 16, b: 58 };
  const runs = d.runs;
  const frag = document.createDocumentFragment();
  const most = Math.max(1, ...runs.map((r) => Math.max(r.total_endpoints, r.tested_endpoints, r.cumulative_tested_endpoints)));
  // Round ticks: 1, 2 or 5 times a power of ten, four of them or so.
  const raw = most / 4;
  const p10 = 10 ** Math.floor(Math.log10(raw));
  const tick = Math.max(1, [1, 2, 5, 10].map((k) => k * p10).find((t) => t >= raw));
  const top = Math.ceil(most / tick) * tick;
  const x = (i) => m.l + (runs.length > 1 ? (i * (W - m.l - m.r)) / (runs.length - 1) : (W - m.l - m.r) / 2);
  const y = (v) => H - m.b - (v * (H - m.t - m.b)) / top;
  for (let v = 0; v <= top; v += tick) {
    frag.append(svgEl('line', { class: 'grid', x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }), svgEl('text', { x: m.l - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmt(v)));
  }
  frag.append(svgEl('line', { class: 'axis', x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }), svgEl('line', { class: 'axis', x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }));
  const series = [
    ['s-total', 'endpoints', (r) => r.total_endpoints],
    ['s-cum', 'tested so far', (r) => r.cumulative_tested_endpoints],
    ['s-tested', 'tested in run', (r) => r.tested_endpoints],
    ['s-conf', 'conformance-tested in run', (r) => r.conf_tested_endpoints],
  ];
  if (!runs.length) frag.append(svgEl('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'no ingest runs yet'));
  for (const [cls, , f] of series) {
    frag.append(svgEl('polyline', { class: cls, points: runs.map((r, i) => `${x(i).toFixed(1)},${y(f(r)).toFixed(1)}`).join(' ') }));
    runs.forEach((r, i) => frag.append(svgEl('circle', { cx: x(i), cy: y(f(r)), r: 3, class: cls, style: 'fill:currentColor', 'data-run': r.run },
      svgEl('title', {}, `run ${r.run} (${r.kind}) ${r.started_at}\n${f(r)} endpoints · ${fmt(r.requests)} requests`))));
  }
  const every = Math.max(1, Math.ceil(runs.length / 12));
  runs.forEach((r, i) => {
    if (i % every) return;
    frag.append(svgEl('text', { x: x(i), y: H - m.b + 16, 'text-anchor': 'middle' }, `#${r.run}`),
      svgEl('text', { x: x(i), y: H - m.b + 30, 'text-anchor': 'middle' }, (r.started_at || '').slice(0, 10)));
  });
  series.forEach(([cls, label], i) => {
    const lx = m.l + i * 175;
    frag.append(svgEl('line', { class: cls, x1: lx, x2: lx + 22, y1: H - 10, y2: H - 10, 'stroke-width': 3 }), svgEl('text', { x: lx + 28, y: H - 6 }, label));
  });
  svg.replaceChildren(frag);
  // The series colours come from CSS stroke; circles take the same colour.
  for (const c of svg.querySelectorAll('circle')) c.style.fill = getComputedStyle(c).stroke;
  const rel = $('#history-releases');
  rel.replaceChildren(rowsTable('history-releases-table', ['release', 'requests', 'tested', 'eligible tested', 'coverage'], d.releases, (r) => [
    el('button', { class: 'link', type: 'button', onclick: () => { setFilter('release', r.release); showView('coverage'); } }, r.release),
    num(r.requests),
    el('td', { class: 'n' }, `${fmt(r.tested_endpoints)} / ${fmt(r.total_endpoints)}`),
    el('td', { class: 'n' }, `${fmt(r.tested_eligible_endpoints)} / ${fmt(r.eligible_endpoints)}`),
    el('div', { class: 'bar', title: `${pct(r.conf_tested_endpoints, r.total_endpoints)} conformance-tested, ${pct(r.tested_endpoints, r.total_endpoints)} tested` },
      el('i', { class: 'conf', style: `width:${(100 * r.conf_tested_endpoints) / Math.max(1, r.total_endpoints)}%` }),
      el('i', { class: 'tested', style: `width:${(100 * Math.max(0, r.tested_endpoints - r.conf_tested_endpoints)) / Math.max(1, r.total_endpoints)}%` })),
  ]));
}

// ---------------------------------------------------------------------------------------------
// Dependency graph: programs on a circle, an arrow from writer to reader per pair.

const MAX_NODES = 60;

async function loadDeps() {
  const g = ++generation.deps;
  const d = await loading('dependencies', () => api('deps'));
  if (g !== generation.deps) return;
  drawDeps(d);
}

function drawDeps(d) {
  const svg = $('#deps-graph');
  const nodes = [...d.nodes].sort((a, b) => b.requests - a.requests).slice(0, MAX_NODES);
  const pos = new Map();
  const R0 = nodes.length > 1 ? 220 : 0;
  nodes.forEach((n, i) => {
    const a = (2 * Math.PI * i) / nodes.length;
    pos.set(n.app, { x: R0 * Math.sin(a), y: -R0 * Math.cos(a), n });
  });
  const pairs = new Map();
  for (const e of d.edges) {
    if (!pos.has(e.writer) || !pos.has(e.reader)) continue;
    const k = `${e.writer}\u0000${e.reader}`;
    if (!pairs.has(k)) pairs.set(k, []);
    pairs.get(k).push(e);
  }
  const maxReq = Math.max(1, ...nodes.map((n) => n.requests));
  const rad = (n) => 8 + 14 * Math.sqrt(n.requests / maxReq);
  const frag = document.createDocumentFragment();
  frag.append(svgEl('defs', {}, svgEl('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
    svgEl('path', { d: 'M0 0L10 5L0 10z', fill: '#64748b' }))));
  for (const [k, edges] of pairs) {
    const [w, r] = k.split('\u0000');
    const a = pos.get(w);
    const b = pos.get(r);
    const dx = b.x - a.x;
    const dy = b.y - a.y;
    const len = Math.hypot(dx, dy) || 1;
    // Bend every edge to its right, so that A→B and B→A do not overlap.
    const cx = (a.x + b.x) / 2 + (dy / len) * 40;
    const cy = (a.y + b.y) / 2 - (dx / len) * 40;
    const ra = rad(a.n);
    const rb = rad(b.n) + 2;
    const ua = Math.hypot(cx - a.x, cy - a.y) || 1;
    const ub = Math.hypot(cx - b.x, cy - b.y) || 1;
    const sx = a.x + ((cx - a.x) / ua) * ra;
    const sy = a.y + ((cy - a.y) / ua) * ra;
    const ex = b.x + ((cx - b.x) / ub) * rb;
    const ey = b.y + ((cy - b.y) / ub) * rb;
    const writes = edges.reduce((s, e) => s + e.writes, 0);
    const label = edges.map((e) => (e.group ? `${e.group}/${e.resource}` : e.resource));
    frag.append(svgEl('path', { class: 'edge', d: `M${sx.toFixed(1)} ${sy.toFixed(1)}Q${cx.toFixed(1)} ${cy.toFixed(1)} ${ex.toFixed(1)} ${ey.toFixed(1)}`, 'marker-end': 'url(#arrow)', 'stroke-width': 1 + Math.log10(1 + writes), 'data-writer': w, 'data-reader': r, onclick: (ev) => { markSelected(ev.currentTarget); depsPanel(w, r, edges); } },
      svgEl('title', {}, `${w} → ${r}\n${label.join(', ')}`)));
    frag.append(svgEl('text', { class: 'edge-label', x: ((sx + ex) / 2 + cx) / 2, y: ((sy + ey) / 2 + cy) / 2 }, label.length > 2 ? `${label.slice(0, 2).join(', ')} +${label.length - 2}` : label.join(', ')));
  }
  for (const { x, y, n } of pos.values()) {
    frag.append(svgEl('g', { class: 'node', 'data-app': n.app, onclick: (ev) => { markSelected(ev.currentTarget); depsPanel(n.app, null, d.edges.filter((e) => e.writer === n.app || e.reader === n.app)); } },
      svgEl('circle', { cx: x, cy: y, r: rad(n) }, svgEl('title', {}, `${n.app}\n${fmt(n.requests)} requests`)),
      svgEl('text', { x, y: y + rad(n) + 12 }, n.app.length > 24 ? `${n.app.slice(0, 23)}…` : n.app)));
  }
  if (!nodes.length) frag.append(svgEl('text', { x: 0, y: 0 }, 'no program writes what another reads (yet)'));
  if (d.nodes.length > nodes.length) frag.append(svgEl('text', { x: 0, y: 290 }, `${nodes.length} busiest of ${d.nodes.length} programs shown`));
  svg.replaceChildren(frag);
}

function markSelected(node) {
  for (const e of document.querySelectorAll('#deps-graph .selected')) e.classList.remove('selected');
  node.classList.add('selected');
}

function depsPanel(a, b, edges) {
  const locs = (ls) => rowsTable(null, ['line of code', 'verb', 'requests'], ls, (l) => [el('div', {}, el('code', {}, l.function), el('div', {}, locLink(l))), l.verb, num(l.hits)]);
  $('#panel').replaceChildren(el('div', { id: 'deps-panel' },
    el('h2', {}, b ? `${a} → ${b}` : a),
    el('div', { class: 'sub' }, b ? 'writes objects that the other reads' : 'edges of this program'),
    edges.map((e) => el('div', {},
      el('h3', {}, `${e.writer} → ${e.reader}: ${e.group ? `${e.group}/` : ''}${e.resource}`),
      el('div', { class: 'sub' }, `${fmt(e.writes)} writes, ${fmt(e.reads)} reads`),
      el('b', {}, 'writer'), locs(e.writer_locs),
      el('b', {}, 'reader'), locs(e.reader_locs)))));
}

// ---------------------------------------------------------------------------------------------
// Deprecated APIs: per program, line of code and API, soonest removal first.

async function loadDeprecated() {
  const g = ++generation.deprecated;
  const input = $('#deprecated-removed-in');
  if (document.activeElement !== input) input.value = state['removed-in'] || '';
  // The filters that narrow requests; `counting` is about coverage and not a parameter here.
  const extra = {};
  for (const k of FILTER_KEYS) if (k !== 'counting' && state[k]) extra[k] = state[k];
  if (state['removed-in']) extra['removed-in'] = state['removed-in'];
  const box = $('#deprecated-rows');
  let rows;
  try {
    rows = await loading('deprecated APIs', () => api('deprecated', extra, false));
  } catch (e) {
    if (g === generation.deprecated) box.replaceChildren(el('p', { class: 'hint error' }, e.message));
    return;
  }
  if (g !== generation.deprecated) return;
  box.replaceChildren(rowsTable('deprecated-table', ['program', 'line of code', 'API', 'endpoint', 'removed in', 'requests', 'last seen'], rows, (r) => [
    el('td', { title: r.identity }, r.app || '(no user agent)'),
    r.loc ? el('div', {}, el('code', {}, r.loc.function), el('div', {}, locLink(r.loc))) : el('span', { class: 'hint' }, 'unknown'),
    el('code', {}, r.api),
    r.endpoint ? endpointLink(r.endpoint) : '',
    el('td', { class: 'removed', 'data-removed': r.removed_release || '' }, r.removed_release || 'not planned'),
    num(r.requests),
    (r.last_seen || '').replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
  ]));
}

let removedTimer = null;
function onRemovedIn(ev) {
  clearTimeout(removedTimer);
  removedTimer = setTimeout(() => {
    const v = ev.target.value.trim();
    if ((state['removed-in'] || '') === v) return;
    go({ 'removed-in': v });
    loadDeprecated().catch(() => {});
  }, ev.type === 'change' ? 0 : 350);
}

// ---------------------------------------------------------------------------------------------
// Views

function showView(view) {
  if (view !== (state.view || 'coverage')) go({ view: view === 'coverage' ? '' : view });
  const v = state.view || 'coverage';
  for (const s of document.querySelectorAll('.view')) s.hidden = s.id !== `view-${v}`;
  for (const t of document.querySelectorAll('.tab')) t.classList.toggle('active', t.dataset.view === v);
  if (v === 'history') loadHistory().catch(() => {});
  if (v === 'deps') loadDeps().catch(() => {});
  if (v === 'deprecated') loadDeprecated().catch(() => {});
}

// Reloads what the filters change: the sunburst, the open tab and the panel.
function refresh() {
  const v = state.view || 'coverage';
  const jobs = [loadSunburst()];
  if (v !== 'coverage') showView(v);
  if (state.endpoint || state.loc || state.testcase || state.q) jobs.push(loadPanel());
  return Promise.allSettled(jobs);
}

async function start() {
  readUrl();
  fillFilters();
  $('#filters').addEventListener('change', onFilter);
  $('#filters').addEventListener('input', onFilter);
  $('#f-clear').addEventListener('click', () => {
    const changes = {};
    for (const k of FILTER_KEYS) changes[k] = '';
    go(changes);
    fillFilters();
    refresh();
  });
  $('#token').addEventListener('submit', onToken);
  $('#search').addEventListener('input', onSearch);
  $('#search').addEventListener('change', onSearch);
  $('#overlay-hits').addEventListener('change', onOverlay);
  $('#progress-mode').addEventListener('click', onProgressMode);
  $('#deprecated-removed-in').addEventListener('input', onRemovedIn);
  $('#deprecated-removed-in').addEventListener('change', onRemovedIn);
  const sb = $('#sunburst');
  sb.addEventListener('click', onSunburstClick);
  sb.addEventListener('mouseover', onSunburstOver);
  sb.addEventListener('mouseleave', onSunburstOut);
  for (const t of document.querySelectorAll('.tab')) {
    t.addEventListener('click', (ev) => {
      ev.preventDefault();
      showView(t.dataset.view);
    });
  }
  window.addEventListener('popstate', () => {
    readUrl();
    fillFilters();
    showView(state.view || 'coverage');
    drawSunburst();
    refresh();
  });
  showView(state.view || 'coverage');
  // First paint: releases and the sunburst only, in parallel; everything else on demand.
  const first = [loadReleases().catch(() => {}), loadSunburst().catch(() => {})];
  if (state.endpoint || state.loc || state.testcase || state.q) first.push(loadPanel());
  await Promise.allSettled(first);
  performance.mark('whakapapa:ready');
  document.body.dataset.ready = 'true';
}

start();
