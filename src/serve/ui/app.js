// The align serve dashboard: the trainers' runs by pipeline stage, the guard's review
// queue, and a chat with the served model showing which rail fired.  The JSON it reads is
// described in docs/serve.md.  Every piece of data goes into the page as text
// (textContent, text nodes, attributes), never as markup.
'use strict';

(() => {
  const KEY_STORE = 'align.apiKey';
  // the SVG namespace is a name, not a link: nothing is fetched from it
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const NO_RUNS = 'no runs directory (start align serve with --runs DIR)';
  const MAX_CHARTS_PER_RUN = 6;
  const MAX_CHART_POINTS = 600;  // a polyline of more points looks the same and draws slower
  const REFRESH_MS = 15000;

  const $ = (sel, root = document) => root.querySelector(sel);

  // An element with attributes and children; strings become text nodes.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    for (const c of children.flat(Infinity)) if (c != null && c !== false) e.append(c);
    return e;
  }

  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVG_NS, tag);
    setAttrs(e, attrs);
    for (const c of children.flat(Infinity)) if (c != null && c !== false) e.append(c);
    return e;
  }

  function setAttrs(e, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k === 'className' ? 'class' : k, v === true ? '' : String(v));
    }
  }

  // ---- the API, with the key when the server asks for one ----

  function storedKey() {
    try { return localStorage.getItem(KEY_STORE) || ''; } catch { return ''; }
  }

  function authHeaders() {
    const key = storedKey();
    return key ? { Authorization: 'Bearer ' + key } : {};
  }

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  function errorText(data, text, res) {
    if (data && data.error) return data.error.message || String(data.error);
    return (text || '').trim().slice(0, 200) || `${res.status} ${res.statusText}`;
  }

  async function api(path, { method = 'GET', body } = {}) {
    const headers = authHeaders();
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 401) askForKey();
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { /* reported below */ }
    if (!res.ok) throw new ApiError(res.status, errorText(data, text, res));
    if (data === null) throw new ApiError(res.status, 'the server did not answer JSON');
    return data;
  }

  function askForKey() {
    $('#auth').hidden = false;
    $('#auth-note').textContent = storedKey()
      ? 'the server refused this key' : 'the server wants an API key';
  }

  function saveKey() {
    const key = $('#api-key').value.trim();
    try {
      if (key) localStorage.setItem(KEY_STORE, key); else localStorage.removeItem(KEY_STORE);
    } catch { /* storage off: the key lasts until the page is left */ }
    $('#api-key').value = '';
    $('#auth-note').textContent = key ? 'key saved' : 'key cleared';
    loadAll();
  }

  // ---- numbers and times ----

  function fmt(v) {
    if (typeof v !== 'number') return v == null ? '—' : String(v);
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v) && Math.abs(v) < 1e7) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
    return String(Number(v.toPrecision(4)));
  }

  function fmtTime(unixSeconds) {
    if (typeof unixSeconds !== 'number') return '—';
    const d = new Date(unixSeconds * 1000);
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
           `${p(d.getHours())}:${p(d.getMinutes())}`;
  }

  // ---- the pipeline ----

  let lastPipeline = '';

  async function loadPipeline() {
    const box = $('#pipeline');
    let data;
    try {
      data = await api('/api/pipeline');
    } catch (e) {
      lastPipeline = '';
      box.replaceChildren(el('p', { class: 'empty' },
        e.status === 401 ? 'an API key is needed to read the runs' : NO_RUNS));
      box.dataset.loaded = 'error';
      return;
    }
    const text = JSON.stringify(data);
    if (text === lastPipeline) return;  // redrawing unchanged charts would only flicker
    lastPipeline = text;
    const stages = Array.isArray(data.stages) ? data.stages : [];
    $('#pipeline-dir').textContent = data.dir ? 'runs directory: ' + data.dir : '';
    if (!stages.length) {
      box.replaceChildren(el('p', { class: 'empty' }, NO_RUNS));
    } else {
      const row = [];
      stages.forEach((st, i) => {
        if (i) row.push(el('div', { class: 'arrow', 'aria-hidden': 'true' }, '→'));
        row.push(renderStage(st));
      });
      box.replaceChildren(...row);
    }
    box.setAttribute('aria-busy', 'false');
    box.dataset.loaded = 'ok';
  }

  function renderStage(st) {
    const runs = Array.isArray(st.runs) ? st.runs : [];
    return el('div', { class: 'stage', 'data-stage': st.stage },
      el('div', { class: 'stage-head' },
        el('h3', null, st.title || st.stage || '?'),
        el('span', { class: 'count' }, `${runs.length} run${runs.length === 1 ? '' : 's'}`)),
      st.from ? el('p', { class: 'muted small', 'data-from': st.from },
        st.from === 'served' ? 'the run that made the model being served'
          : 'the latest RL run (no run is named aligned)') : null,
      runs.length ? runs.map(renderRun) : el('p', { class: 'empty' }, 'no runs'));
  }

  function renderRun(run) {
    const last = run.last && typeof run.last === 'object' ? Object.entries(run.last) : [];
    const charts = chartsOf(run.curves);
    const shown = charts.slice(0, MAX_CHARTS_PER_RUN);
    return el('div', { class: 'run', 'data-run': run.path || run.name },
      el('div', { class: 'run-head' },
        el('span', { class: 'run-name', title: run.path || '' }, run.name || run.path || '?'),
        typeof run.steps === 'number' ? el('span', { class: 'muted' }, `${run.steps} steps`) : null),
      last.length ? el('dl', { class: 'last' },
        last.slice(0, 6).map(([k, v]) => [el('dt', null, k), el('dd', null, fmt(v))])) : null,
      shown.map(lineChart),
      charts.length > shown.length
        ? el('p', { class: 'muted small' }, `${charts.length - shown.length} more metrics not drawn`)
        : null,
      !charts.length ? el('p', { class: 'muted small' }, 'no curves yet') : null);
  }

  // loss and eval_loss share a chart (same scale, and their gap is the point); every
  // other metric gets its own, in the order the server listed them.
  function chartsOf(curves) {
    if (!curves || typeof curves !== 'object') return [];
    const names = Object.keys(curves).filter((k) => Array.isArray(curves[k]) && curves[k].length);
    const loss = ['loss', 'eval_loss'].filter((k) => names.includes(k));
    const charts = [];
    if (loss.length) charts.push(loss.map((k) => ({ name: k, points: curves[k] })));
    for (const k of names) if (!loss.includes(k)) charts.push([{ name: k, points: curves[k] }]);
    return charts;
  }

  function cleanPoints(points) {
    const out = [];
    for (const p of points) {
      if (!Array.isArray(p)) continue;
      const x = Number(p[0]), y = Number(p[1]);
      if (Number.isFinite(x) && Number.isFinite(y) && p[1] !== null) out.push([x, y]);
    }
    if (out.length <= MAX_CHART_POINTS) return out;
    const stride = out.length / MAX_CHART_POINTS, thin = [];
    for (let i = 0; i < MAX_CHART_POINTS - 1; i++) thin.push(out[Math.floor(i * stride)]);
    thin.push(out[out.length - 1]);  // the latest value is the one people look for
    return thin;
  }

  function lineChart(seriesList) {
    const W = 300, H = 120, L = 46, R = 8, T = 8, B = 20;
    const series = seriesList.map((s) => ({ name: s.name, points: cleanPoints(s.points) }));
    const all = series.flatMap((s) => s.points);
    const legend = el('figcaption', null, series.map((s, i) => el('span', { class: 'legend' },
      el('span', { class: `swatch series-${i}` }),
      s.name,
      s.points.length ? el('span', { class: 'muted' }, ' ' + fmt(s.points[s.points.length - 1][1])) : null)));
    if (!all.length) return el('figure', { class: 'chart-box' }, legend, el('p', { class: 'muted small' }, 'no finite values'));

    let x0 = Math.min(...all.map((p) => p[0])), x1 = Math.max(...all.map((p) => p[0]));
    let y0 = Math.min(...all.map((p) => p[1])), y1 = Math.max(...all.map((p) => p[1]));
    if (x0 === x1) { x0 -= 0.5; x1 += 0.5; }
    if (y0 === y1) { const pad = Math.abs(y0) * 0.05 || 0.5; y0 -= pad; y1 += pad; }
    const sx = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
    const sy = (y) => T + (y1 - y) / (y1 - y0) * (H - T - B);
    const xy = (p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`;

    const label = series.map((s) => s.name).join(' and ');
    const chart = svg('svg', {
      class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img',
      'aria-label': `${label}: steps ${fmt(x0)} to ${fmt(x1)}, values ${fmt(y0)} to ${fmt(y1)}`,
    },
      svg('line', { class: 'grid', x1: L, x2: W - R, y1: sy((y0 + y1) / 2), y2: sy((y0 + y1) / 2) }),
      svg('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }),
      svg('line', { class: 'axis', x1: L, x2: L, y1: T, y2: H - B }),
      svg('text', { class: 'tick', x: L - 4, y: T + 4, 'text-anchor': 'end' }, fmt(y1)),
      svg('text', { class: 'tick', x: L - 4, y: sy((y0 + y1) / 2) + 3, 'text-anchor': 'end' }, fmt((y0 + y1) / 2)),
      svg('text', { class: 'tick', x: L - 4, y: H - B, 'text-anchor': 'end' }, fmt(y0)),
      svg('text', { class: 'tick', x: L, y: H - 6, 'text-anchor': 'start' }, fmt(x0)),
      svg('text', { class: 'tick', x: (L + W - R) / 2, y: H - 6, 'text-anchor': 'middle' }, 'step'),
      svg('text', { class: 'tick', x: W - R, y: H - 6, 'text-anchor': 'end' }, fmt(x1)),
      series.map((s, i) => [
        s.points.length > 1
          ? svg('polyline', { class: `line series-${i}`, points: s.points.map(xy).join(' ') })
          : null,
        // sparse series (evaluations every N steps, or a single point) need their dots
        s.points.length <= 40
          ? s.points.map((p) => svg('circle', { class: `dot series-${i}`, cx: sx(p[0]).toFixed(1), cy: sy(p[1]).toFixed(1), r: 2 },
              svg('title', null, `${s.name} at step ${fmt(p[0])}: ${fmt(p[1])}`)))
          : null,
      ]));
    return el('figure', { class: 'chart-box' }, legend, chart);
  }

  // ---- the review queue ----

  const VERDICT_STATE = { approve: 'approved', reject: 'rejected' };
  let reviewSeq = 0;

  async function loadReview() {
    const seq = ++reviewSeq;  // a slow answer for an earlier selection must not win
    const state = $('#review-state').value;
    const status = $('#review-status');
    let data;
    try {
      data = await api('/api/review?state=' + encodeURIComponent(state));
    } catch (e) {
      if (seq !== reviewSeq) return;
      status.textContent = 'could not read the review queue: ' + e.message;
      $('#review-table tbody').replaceChildren();
      $('#review-count').textContent = '0';
      $('#review-table').dataset.loaded = 'error';
      return;
    }
    if (seq !== reviewSeq) return;
    const items = Array.isArray(data.items) ? data.items : [];
    $('#review-count').textContent = String(items.length);
    $('#review-noun').textContent = items.length === 1 ? 'item' : 'items';
    if (!items.length) status.textContent = state === 'all' ? 'the queue is empty' : `no ${state} items`;
    else if (status.dataset.sticky !== '1') status.textContent = '';
    status.dataset.sticky = '';
    $('#review-table tbody').replaceChildren(...items.map(reviewRow));
    $('#review-table').dataset.loaded = 'ok';
  }

  // Long text shows its start; the whole is in the tooltip and a click opens it in place.
  function clipped(text, cls) {
    if (text == null) return el('span', { class: 'muted' }, '—');
    const s = String(text);
    return el('div', {
      class: 'clip ' + cls, title: s, tabindex: 0,
      onclick: (ev) => ev.currentTarget.classList.toggle('open'),
      onkeydown: (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); ev.currentTarget.classList.toggle('open'); } },
    }, s);
  }

  function chips(values, scores) {
    if (!Array.isArray(values) || !values.length) return el('span', { class: 'muted' }, '—');
    return values.map((v) => {
      const name = typeof v === 'string' ? v : JSON.stringify(v);
      const score = scores && typeof scores === 'object' ? scores[name] : undefined;
      return el('span', { class: 'chip' }, name,
        typeof score === 'number' ? el('span', { class: 'score' }, ' ' + score.toFixed(2)) : null);
    });
  }

  function reviewRow(item) {
    const pending = item.state === 'pending';
    const tr = el('tr', { class: 'review-item', 'data-id': item.id, 'data-state': item.state });
    let verdict;
    if (pending) {
      const reason = el('input', { class: 'reason', type: 'text', placeholder: 'via /ui', 'aria-label': `reason for #${item.id}` });
      const approve = el('button', { class: 'approve', type: 'button' }, 'Approve');
      const reject = el('button', { class: 'reject', type: 'button' }, 'Reject');
      approve.addEventListener('click', () => decide(item.id, 'approve', tr));
      reject.addEventListener('click', () => decide(item.id, 'reject', tr));
      verdict = el('div', { class: 'verdict' }, reason, el('div', { class: 'buttons' }, approve, reject));
    } else {
      const who = item.who || item.reviewer || item.decided_by;
      const why = item.why || item.note;
      verdict = el('div', { class: 'verdict muted' },
        who ? 'by ' + who : null, why ? el('div', null, why) : null);
    }
    tr.append(
      el('td', { class: 'num' }, String(item.id)),
      el('td', null,
        el('div', { class: 'nowrap' }, fmtTime(item.created_at)),
        el('span', { class: 'state state-' + safeClass(item.state) }, item.state || '?')),
      el('td', null,
        el('div', { class: 'chips' }, chips(item.categories, item.scores)),
        el('div', { class: 'chips reasons' }, chips(item.reasons))),
      el('td', null, clipped(item.input, 'prompt')),
      el('td', null, clipped(item.output, 'answer')),
      el('td', null, verdict));
    return tr;
  }

  async function decide(id, verdict, tr) {
    const why = $('input.reason', tr).value.trim() || 'via /ui';
    for (const b of tr.querySelectorAll('button, input')) b.disabled = true;
    const status = $('#review-status');
    try {
      await api(`/api/review/${encodeURIComponent(id)}/${verdict}`,
                { method: 'POST', body: { who: 'dashboard', why } });
      status.textContent = `#${id} ${VERDICT_STATE[verdict]}`;
    } catch (e) {
      status.textContent = `#${id} not ${VERDICT_STATE[verdict]}: ${e.message}`;
    }
    status.dataset.sticky = '1';  // keep the outcome visible across the reload below
    await loadReview();
  }

  // ---- the chat ----

  let conversation = [];
  let modelId = null;
  let chatBusy = false;

  async function loadModel() {
    try {
      const data = await api('/v1/models');
      modelId = (data.data && data.data[0] && data.data[0].id) || null;
    } catch { modelId = null; }
    $('#model-id').textContent = modelId ? 'model: ' + modelId : '';
  }

  function safeClass(s) {
    return /^[a-z_]+$/.test(String(s)) ? s : 'other';
  }

  function railText(side, g) {
    const reasons = Array.isArray(g.reasons) ? g.reasons.map(String) : [];
    let detail = g.category || '';
    if (reasons.length) detail = detail ? `${detail}: ${reasons.join(', ')}` : reasons.join(', ');
    return `${side}: ${g.action}${detail ? ` (${detail})` : ''}`;
  }

  function railBadges(guard) {
    if (!guard || typeof guard !== 'object') {
      return [el('span', { class: 'rail-badge action-none' }, 'no guard verdict')];
    }
    const fired = [];
    for (const side of ['input', 'output']) {
      const g = guard[side];
      if (g && g.action && g.action !== 'allow') {
        fired.push(el('span', { class: 'rail-badge action-' + safeClass(g.action) }, railText(side, g)));
      }
    }
    return fired.length ? fired : [el('span', { class: 'rail-badge action-allow' }, 'no rail fired')];
  }

  // Server-sent events from a fetch body: "data: {json}" lines, blank-line separated,
  // "[DONE]" last.
  async function readEvents(res, onEvent) {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    const take = (block) => {
      const data = block.split(/\r?\n/).filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, '')).join('\n');
      if (!data) return false;
      if (data === '[DONE]') return true;
      onEvent(JSON.parse(data));
      return false;
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let m;
      while ((m = /\r?\n\r?\n/.exec(buf))) {
        const block = buf.slice(0, m.index);
        buf = buf.slice(m.index + m[0].length);
        if (take(block)) { reader.cancel().catch(() => {}); return; }
      }
    }
    buf += decoder.decode();
    if (buf.trim()) take(buf);
  }

  function scrollChat() {
    const log = $('#chat-log');
    log.scrollTop = log.scrollHeight;
  }

  async function sendChat() {
    const input = $('#chat-input');
    const text = input.value.trim();
    if (!text || chatBusy) return;
    chatBusy = true;
    $('#chat-send').disabled = true;
    input.value = '';
    conversation.push({ role: 'user', content: text });
    const log = $('#chat-log');
    log.append(el('div', { class: 'chat-msg chat-user' }, el('div', { class: 'who' }, 'you'), el('div', { class: 'chat-text' }, text)));
    const body = el('div', { class: 'chat-text' }, el('span', { class: 'muted' }, '…'));
    const reply = el('div', { class: 'chat-msg chat-reply pending' }, el('div', { class: 'who' }, 'assistant'), body);
    log.append(reply);
    scrollChat();

    const stream = $('#chat-stream').checked;
    const maxTokens = parseInt($('#chat-max-tokens').value, 10);
    const req = { messages: conversation.slice(), stream };
    if (modelId) req.model = modelId;
    if (maxTokens > 0) req.max_tokens = maxTokens;
    try {
      const res = await fetch('/v1/chat/completions', {
        method: 'POST',
        headers: { ...authHeaders(), 'Content-Type': 'application/json' },
        body: JSON.stringify(req),
      });
      if (res.status === 401) askForKey();
      if (!res.ok) {
        const t = await res.text();
        let data = null;
        try { data = JSON.parse(t); } catch { /* plain text error */ }
        let msg = errorText(data, t, res);
        // the usual 400 mid-conversation is a history grown past the model's context
        if (res.status === 400 && conversation.length > 1) msg += ' (Clear starts a new conversation)';
        throw new Error(msg);
      }
      let content = '', guard = null, finish = null;
      if ((res.headers.get('content-type') || '').includes('text/event-stream')) {
        await readEvents(res, (chunk) => {
          if (chunk.error) throw new Error(chunk.error.message || 'stream error');
          const ch = chunk.choices && chunk.choices[0];
          if (ch && ch.delta && typeof ch.delta.content === 'string') {
            content += ch.delta.content;
            body.textContent = content;
            scrollChat();
          }
          if (ch && ch.finish_reason) finish = ch.finish_reason;
          if (chunk.guard) guard = chunk.guard;
        });
      } else {
        const data = await res.json();
        const ch = data.choices && data.choices[0];
        content = (ch && ch.message && ch.message.content) || '';
        finish = ch && ch.finish_reason;
        guard = data.guard;
      }
      body.textContent = content || '(empty reply)';
      conversation.push({ role: 'assistant', content });
      reply.classList.remove('pending');
      reply.append(el('div', { class: 'rails' }, railBadges(guard),
        finish ? el('span', { class: 'finish muted' }, 'finish: ' + finish) : null));
      // an escalation has just joined the queue
      if (guard && ['input', 'output'].some((s) => guard[s] && guard[s].action === 'escalate')) loadReview();
    } catch (e) {
      conversation.pop();  // the question went unanswered: let it be asked again
      reply.className = 'chat-msg chat-error';
      body.textContent = 'error: ' + e.message;
    } finally {
      chatBusy = false;
      $('#chat-send').disabled = false;
      scrollChat();
      input.focus();
    }
  }

  // ---- wiring ----

  function loadAll() {
    loadModel();
    loadPipeline();
    loadReview();
  }

  function reviewIdle() {
    // a reviewer typing a reason or reading an opened prompt must keep the row in place
    const active = document.activeElement;
    if (active && active.classList && active.classList.contains('reason')) return false;
    if (document.querySelector('#review-table .clip.open')) return false;
    return ![...document.querySelectorAll('#review-table input.reason')].some((i) => i.value);
  }

  $('#auth').addEventListener('submit', (ev) => { ev.preventDefault(); saveKey(); });
  $('#pipeline-refresh').addEventListener('click', () => { lastPipeline = ''; loadPipeline(); });
  $('#review-refresh').addEventListener('click', loadReview);
  $('#review-state').addEventListener('change', loadReview);
  $('#chat-form').addEventListener('submit', (ev) => { ev.preventDefault(); sendChat(); });
  $('#chat-input').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); sendChat(); }
  });
  $('#chat-clear').addEventListener('click', () => { conversation = []; $('#chat-log').replaceChildren(); });

  if (storedKey()) $('#auth').hidden = false;  // so a stored key can be changed
  loadAll();
  setInterval(() => {
    if (document.hidden) return;
    loadPipeline();
    if (reviewIdle()) loadReview();
  }, REFRESH_MS);
})();
