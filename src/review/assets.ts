/**
 * The review page: static HTML, CSS and script, served from fixed paths under a CSP that allows
 * only these same-origin files. Nothing from the log is ever put into the markup: the script
 * fetches JSON and builds elements with textContent, and charts are <img> of server-drawn SVG.
 * Kept as strings (not files) so the compiled CLI needs no asset copying.
 */

const FILTER_FIELDS: Array<[string, string, string]> = [
  ['team', 'Team', 'payments or pay*'],
  ['sub', 'Subject', 'alice'],
  ['agent', 'Agent', 'agent-1'],
  ['server', 'Server', 'billing'],
  ['tool', 'Tool', 'delete_*'],
  ['reason', 'Reason contains', 'not allowed'],
  ['revision', 'Revision', 'rev-7'],
  ['since', 'Since', '24h, 2025-03-01'],
  ['until', 'Until', 'now, 2025-03-02'],
];

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tollgate review</title>
<link rel="icon" href="/static/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/review.css">
<script src="/static/review.js" defer></script>
</head>
<body>
<header>
  <h1>Tollgate review</h1>
  <span id="indexed">indexing…</span>
</header>
<section id="chain" class="chain pending"><h2>Chain verification</h2><p id="chain-status">checking…</p><ul id="chain-findings"></ul></section>
<form id="filters" method="get" action="/">
${FILTER_FIELDS.map(([k, label, hint]) => `  <label>${label}<input name="${k}" placeholder="${hint}" maxlength="256"></label>`).join('\n')}
  <label>Decision<select name="decision"><option value="">any</option><option value="allow">allow</option><option value="deny">deny</option><option value="error">refused before policy</option></select></label>
  <button type="submit">Apply</button> <a href="/">Clear</a>
</form>
<p id="error" class="error" hidden></p>
<section id="summary"><p id="counts"></p><div id="charts"></div><div id="burn"></div></section>
<section id="detail" hidden></section>
<table id="timeline">
<thead><tr><th>Time (UTC)</th><th>Decision</th><th>Subject</th><th>Team</th><th>Agent</th><th>Server</th><th>Tool</th><th>Revision</th><th>Reasons</th></tr></thead>
<tbody></tbody>
</table>
<p><button id="more" type="button" hidden>Older records</button></p>
</body>
</html>
`;

export const PAGE_ICON = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#2471a3"/><path d="M3 5h10M8 5v8" stroke="#fff" stroke-width="2"/></svg>';

export const PAGE_CSS = `body { font: 14px/1.4 sans-serif; margin: 0 16px 32px; color: #222; }
header { display: flex; align-items: baseline; gap: 16px; }
h1 { font-size: 20px; } h2 { font-size: 15px; margin: 4px 0; }
.chain { border: 1px solid #ccc; padding: 6px 10px; margin-bottom: 10px; border-radius: 4px; }
.chain.ok { border-color: #1e8449; background: #eafaf1; }
.chain.broken { border-color: #c0392b; background: #fdedec; }
.chain.warn { border-color: #b9770e; background: #fef5e7; }
#chain-findings li { font-family: monospace; }
form { display: flex; flex-wrap: wrap; gap: 8px; align-items: end; margin-bottom: 10px; }
label { display: flex; flex-direction: column; font-size: 12px; }
input, select { font: inherit; padding: 2px 4px; width: 130px; }
.error { color: #c0392b; font-weight: bold; }
#charts, #burn { display: flex; flex-wrap: wrap; gap: 10px; }
#charts img, #burn img { border: 1px solid #ddd; }
table { border-collapse: collapse; width: 100%; margin-top: 10px; }
th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid #eee; vertical-align: top; word-break: break-word; }
tbody tr { cursor: pointer; } tbody tr:hover { background: #f4f6f7; }
tr.deny td:nth-child(2) { color: #c0392b; font-weight: bold; }
tr.selected { background: #eaf2f8; }
#detail { border: 1px solid #2471a3; padding: 8px 12px; margin: 10px 0; border-radius: 4px; }
#detail dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; }
#detail dt { font-weight: bold; }
#detail pre { background: #f8f9f9; padding: 6px; overflow: auto; max-height: 360px; white-space: pre-wrap; word-break: break-all; }
`;

/** Runs in the browser; plain ES2017, no dependencies. */
export const PAGE_JS = `'use strict';
(function () {
  var params = new URLSearchParams(location.search);
  var FILTERS = ['team', 'sub', 'agent', 'server', 'tool', 'reason', 'revision', 'since', 'until', 'decision'];

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function filterQuery(extra) {
    var q = new URLSearchParams();
    FILTERS.forEach(function (k) { var v = params.get(k); if (v) q.set(k, v); });
    Object.keys(extra || {}).forEach(function (k) { q.set(k, extra[k]); });
    return q.toString();
  }
  function getJson(path) {
    return fetch(path, { credentials: 'same-origin' }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body && body.error ? body.error : 'HTTP ' + r.status);
        return body;
      });
    });
  }
  function showError(e) {
    var p = document.getElementById('error');
    p.textContent = e.message;
    p.hidden = false;
  }

  // The form shows the filters in force.
  var form = document.getElementById('filters');
  FILTERS.forEach(function (k) { var v = params.get(k); if (v && form.elements[k]) form.elements[k].value = v; });
  // Empty fields are left out of the URL, so it stays short and shareable.
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    var q = new URLSearchParams();
    FILTERS.forEach(function (k) { var v = form.elements[k].value.trim(); if (v) q.set(k, v); });
    location.search = q.toString();
  });

  var tbody = document.querySelector('#timeline tbody');
  var more = document.getElementById('more');
  var next = null;

  function cell(tr, text) { tr.appendChild(el('td', text === null || text === undefined || text === '' ? '-' : text)); }
  function addRow(r) {
    var tr = el('tr', null, r.decision);
    tr.dataset.row = String(r.row);
    cell(tr, r.time.replace('T', ' ').replace(/\\.\\d+Z$/, 'Z'));
    cell(tr, r.error ? 'deny (refused)' : r.decision);
    cell(tr, r.sub); cell(tr, r.team); cell(tr, r.agent);
    cell(tr, r.namespace && r.namespace !== 'default' ? r.namespace + '/' + r.server : r.server);
    cell(tr, r.tool || r.method); cell(tr, r.revision); cell(tr, r.reasons);
    tr.addEventListener('click', function () { openDetail(r.row, tr); });
    tbody.appendChild(tr);
  }
  function loadPage() {
    var extra = { limit: '50' };
    if (next) extra.cursor = next;
    return getJson('/api/timeline?' + filterQuery(extra)).then(function (page) {
      page.rows.forEach(addRow);
      next = page.next;
      more.hidden = !next;
      document.getElementById('indexed').textContent = page.indexed + ' records indexed';
      if (page.rows.length === 0 && tbody.children.length === 0) {
        var tr = el('tr'); var td = el('td', 'no matching decisions'); td.colSpan = 9; tr.appendChild(td); tbody.appendChild(tr);
      }
    });
  }
  more.addEventListener('click', function () { loadPage().catch(showError); });

  function img(src, alt) { var i = el('img'); i.src = src; i.alt = alt; return i; }
  function loadSummary() {
    return getJson('/api/summary?' + filterQuery()).then(function (s) {
      document.getElementById('counts').textContent = s.matched + ' matching decisions: ' + s.allowed + ' allowed, ' + s.denied +
        ' denied (' + s.errors + ' before policy); tokens in ' + s.tokensIn + ', out ' + s.tokensOut +
        (s.first ? '; from ' + s.first + ' to ' + s.last : '');
      var charts = document.getElementById('charts');
      charts.appendChild(img('/charts/denied-tools.svg?' + filterQuery(), 'Top denied tools'));
      charts.appendChild(img('/charts/denied-teams.svg?' + filterQuery(), 'Top denied teams'));
      var burn = document.getElementById('burn');
      s.busiestTeams.slice(0, 4).forEach(function (t) {
        if (t.key === '(no team)') return;
        burn.appendChild(img('/charts/burndown.svg?' + filterQuery({ team_chart: t.key }), 'Budget burn-down of team ' + t.key));
      });
    });
  }

  function loadChain() {
    return getJson('/api/verify').then(function (v) {
      var box = document.getElementById('chain');
      var status = document.getElementById('chain-status');
      var list = document.getElementById('chain-findings');
      list.textContent = '';
      box.className = 'chain ' + (v.state === 'done' ? (v.ok ? (v.warnings ? 'warn' : 'ok') : 'broken') : 'pending');
      status.textContent = v.summary;
      (v.findings || []).forEach(function (f) {
        list.appendChild(el('li', f.severity.toUpperCase() + ' ' + f.kind + ' at ' + (f.file ? f.file + (f.line ? ':' + f.line : '') : '-') + ': ' + f.message));
      });
      if (v.state === 'running') setTimeout(function () { loadChain().catch(showError); }, 1000);
    });
  }

  function pre(value) { return el('pre', JSON.stringify(value, null, 2)); }
  function openDetail(row, tr) {
    Array.prototype.forEach.call(tbody.querySelectorAll('tr.selected'), function (x) { x.classList.remove('selected'); });
    if (tr) tr.classList.add('selected');
    getJson('/api/record?row=' + encodeURIComponent(row)).then(function (d) {
      var box = document.getElementById('detail');
      box.textContent = '';
      var r = d.record;
      box.appendChild(el('h2', 'Decision ' + r.decision_id));
      var dl = el('dl');
      function item(k, v) { dl.appendChild(el('dt', k)); var dd = el('dd'); if (v instanceof Node) dd.appendChild(v); else dd.textContent = v === null || v === undefined ? '-' : String(v); dl.appendChild(dd); }
      item('Where', d.place.file + ':' + d.place.line + ' (seq ' + r.seq + ')');
      item('Chain', d.chain);
      item('Time', r.timestamp);
      item('Decision', r.result.allow ? 'allow' : 'deny');
      item('HTTP status / code', r.result.http_status + ' / ' + (r.result.code === null ? '-' : r.result.code));
      var reasons = el('ul');
      (r.result.reasons || []).forEach(function (x) { reasons.appendChild(el('li', x)); });
      if (r.result.error) reasons.appendChild(el('li', 'error: ' + r.result.error));
      item('Reasons', reasons);
      item('Identity', [r.identity.sub, r.identity.iss, r.identity.team, r.identity.agent].map(function (x) { return x === null ? '-' : x; }).join(' · '));
      item('Delegation chain', (r.identity.delegation || []).length ? pre(r.identity.delegation) : 'none (direct call)');
      item('Server / tool', r.mcp.namespace + '/' + r.mcp.server + ' · ' + (r.mcp.method || '-') + ' · ' + (r.mcp.tool || '-'));
      item('Policy revision', d.revision);
      item('Tokens', 'in ' + (d.tokens.in === null ? '-' : d.tokens.in) + ', out ' + (d.tokens.out === null ? '-' : d.tokens.out));
      item('Budgets', r.budget ? pre(r.budget) : '-');
      item('Masked paths', (r.masked || []).join(', ') || '-');
      item('Erased', (r.erased || []).join(', ') || '-');
      item('Accounting record', d.accounting ? pre({ place: d.accounting.place.file + ':' + d.accounting.place.line, record: d.accounting.record }) : 'none');
      item('Input (masked)', pre(r.input));
      box.appendChild(dl);
      box.hidden = false;
      box.scrollIntoView({ block: 'nearest' });
    }).catch(showError);
  }

  loadChain().catch(showError);
  loadSummary().catch(showError);
  loadPage().catch(showError);
  var m = /^#row=(\\d+)$/.exec(location.hash);
  if (m) openDetail(m[1], null);
})();
`;
