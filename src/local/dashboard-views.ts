// The dashboard's HTML, rendered on the server from the embedded services' data. Everything that
// comes from a push (task names, symbols, commit messages, logs, artifact names) is escaped, and
// no link is built from push-controlled text except through encodeURIComponent: a push cannot
// inject markup or script. Pages carry no inline script (the Content-Security-Policy forbids it);
// /dashboard.js refreshes the `data-live` parts in place.
import type { PushArchive, PushRecord } from './pushes.js';
import type { TaskDefinition, TaskRun, TaskStatus } from '../taskcluster/types.js';

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text made safe for HTML element content and quoted attribute values. */
export function esc(v: unknown): string {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

export interface TaskRow {
  taskId: string;
  label: string;
  state: string;
  symbol: string;
  groupSymbol?: string;
}

export interface PushView {
  push: PushRecord;
  tasks: TaskRow[];
  archive?: PushArchive;
}

const short = (s: string, n = 12) => (s ? s.slice(0, n) : '-');
const when = (unixSeconds: number) =>
  new Date(unixSeconds * 1000)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');

export function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<link rel="stylesheet" href="/dashboard.css">
<script src="/dashboard.js" defer></script>
</head><body>
<header><a class="home" href="/">mozharness-archive · local forest</a>
<form class="lookup" action="/lookup" method="get">
<input name="revision" placeholder="revision → archive" aria-label="revision" size="24">
<button type="submit">Look up</button></form></header>
<main>${body}</main>
</body></html>`;
}

export function taskLink(t: TaskRow): string {
  return `<a class="job s-${esc(t.state)}" data-label="${esc(t.label)}" data-state="${esc(t.state)}" href="/task/${encodeURIComponent(t.taskId)}" title="${esc(`${t.label} (${t.state})`)}">${esc(t.symbol)}</a>`;
}

/** A push's symbols, grouped as Treeherder groups them: `G( a b )`. */
function symbols(tasks: TaskRow[]): string {
  const groups = new Map<string, TaskRow[]>();
  for (const t of tasks) {
    const g = t.groupSymbol && t.groupSymbol !== '?' ? t.groupSymbol : '';
    groups.set(g, [...(groups.get(g) ?? []), t]);
  }
  const parts: string[] = [];
  for (const [g, ts] of groups) {
    const links = ts.map(taskLink).join(' ');
    parts.push(g ? `<span class="group">${esc(g)}(${links})</span>` : links);
  }
  return parts.join(' ');
}

function archiveLine(a: PushArchive | undefined): string {
  if (!a?.taskId) return '<div class="archive muted">archive: not yet known</div>';
  const how = a.reused ? 'reused' : 'built';
  return `<div class="archive"><span class="badge ${how}">archive ${how}</span>
<a href="/task/${encodeURIComponent(a.taskId)}">${esc(a.taskId)}</a>
<span title="${esc(a.reason)}">· tree digest <code>${esc(short(a.treeDigest, 16))}</code></span>
· sha256 <code class="sha256">${esc(a.sha256 ? short(a.sha256, 16) : 'pending')}</code>
${a.url && a.sha256 ? `· <a class="download" href="${esc(a.url)}">download</a>` : ''}</div>`;
}

export function pushesFragment(views: PushView[]): string {
  if (!views.length) {
    return '<p class="muted">No pushes yet. Push to the repository `local up --repo` serves, or run `npm start`.</p>';
  }
  return views
    .map(
      ({
        push: p,
        tasks,
        archive,
      }) => `<section class="push" id="push-${esc(p.pushlogId)}" data-revision="${esc(p.revision)}">
<div class="push-head"><span class="rev"><code>${esc(short(p.revision))}</code></span>
<span class="author">${esc(p.author)}</span>
<span class="time">${esc(when(p.pushdate))}</span>
<span class="muted">push ${esc(p.pushlogId)} · ${esc(p.producer)}</span></div>
${p.message ? `<div class="message">${esc(p.message)}</div>` : ''}
<div class="jobs">${symbols(tasks)}</div>
${archiveLine(archive)}
</section>`,
    )
    .join('\n');
}

export function pushesPage(views: PushView[], flash?: { text: string; taskId?: string }): string {
  const note = flash
    ? `<p class="flash">${esc(flash.text)}${flash.taskId ? ` <a href="/task/${encodeURIComponent(flash.taskId)}">${esc(flash.taskId)}</a>` : ''}</p>`
    : '';
  return layout(
    'Pushes · local forest',
    `${note}
<h1>Pushes</h1>
<p class="legend"><span class="job s-pending">pending</span> <span class="job s-running">running</span>
<span class="job s-completed">completed</span> <span class="job s-failed">failed</span>
<span class="job s-exception">exception</span> <span class="job s-unscheduled">unscheduled</span></p>
<div id="pushes" data-live="/fragments/pushes">${pushesFragment(views)}</div>`,
  );
}

export interface TaskPageData {
  taskId: string;
  task: TaskDefinition;
  status: TaskStatus;
  label: string;
  push?: PushRecord;
  dependencies: TaskRow[];
  dependents: TaskRow[];
  artifacts: Array<{ name: string; url: string; contentType?: string }>;
  log: string[];
  logSource: string;
  actions: Array<{ name: string; title: string; description?: string }>;
  token: string;
}

function runsTable(status: TaskStatus | undefined): string {
  const runs: TaskRun[] = status?.runs ?? [];
  if (!runs.length) return '<p class="muted">No runs yet.</p>';
  const rows = runs
    .map(
      (r) =>
        `<tr><td>${esc(r.runId)}</td><td><span class="job s-${esc(r.state)}">${esc(r.state)}</span></td><td>${esc(r.reasonCreated)}</td><td>${esc(r.reasonResolved ?? '')}</td><td>${esc(r.workerGroup ?? '')}/${esc(r.workerId ?? '')}</td><td>${esc(r.started ?? '')}</td><td>${esc(r.resolved ?? '')}</td></tr>`,
    )
    .join('');
  return `<table class="runs"><tr><th>run</th><th>state</th><th>created</th><th>resolved as</th><th>worker</th><th>started</th><th>resolved</th></tr>${rows}</table>`;
}

function taskList(rows: TaskRow[], none: string): string {
  if (!rows.length) return `<p class="muted">${esc(none)}</p>`;
  return `<ul class="deps">${rows.map((t) => `<li>${taskLink(t)} ${esc(t.label)} <span class="muted">${esc(t.state)}</span></li>`).join('')}</ul>`;
}

export function taskFragment(d: TaskPageData): string {
  const state = d.status?.state ?? 'unknown';
  const artifacts = d.artifacts.length
    ? `<ul class="artifacts">${d.artifacts.map((a) => `<li><a href="${esc(a.url)}">${esc(a.name)}</a> <span class="muted">${esc(a.contentType ?? '')}</span></li>`).join('')}</ul>`
    : '<p class="muted">No artifacts yet.</p>';
  return `<p>State: <span class="job s-${esc(state)}" id="task-state" data-state="${esc(state)}">${esc(state)}</span></p>
<h2>Runs</h2>${runsTable(d.status)}
<h2>Log <span class="muted">(${esc(d.logSource)})</span></h2>
<pre class="log" id="log">${esc(d.log.join('\n')) || '<span class="muted">(empty)</span>'}</pre>
<h2>Artifacts</h2>${artifacts}
<h2>Dependencies</h2>${taskList(d.dependencies, 'None.')}
<h2>Dependents</h2>${taskList(d.dependents, 'None.')}`;
}

export function taskPage(d: TaskPageData): string {
  const forms = d.actions
    .map(
      (a) => `<form method="post" action="/actions" class="action">
<input type="hidden" name="token" value="${esc(d.token)}">
<input type="hidden" name="decisionTaskId" value="${esc(d.task.taskGroupId)}">
<input type="hidden" name="taskId" value="${esc(d.taskId)}">
<input type="hidden" name="action" value="${esc(a.name)}">
<button type="submit" title="${esc(a.description ?? '')}">${esc(a.title)}</button></form>`,
    )
    .join('\n');
  const pushLine = d.push
    ? `<p>Push <a href="/#push-${esc(d.push.pushlogId)}"><code>${esc(short(d.push.revision))}</code></a> by ${esc(d.push.author)}</p>`
    : '';
  return layout(
    `${d.label} · local forest`,
    `<h1>${esc(d.label)} <code class="muted">${esc(d.taskId)}</code></h1>
${pushLine}
<div class="actions">${forms || '<span class="muted">No actions from actions.json apply to this task.</span>'}</div>
<div id="task" data-live="/fragments/task/${encodeURIComponent(d.taskId)}">${taskFragment(d)}</div>
<h2>Definition</h2><pre class="definition">${esc(JSON.stringify(d.task, null, 2))}</pre>`,
  );
}

export function lookupPage(
  revision: string,
  found: Record<string, unknown> | undefined,
  error?: string,
): string {
  const rows = found
    ? Object.entries(found)
        .map(([k, v]) => {
          const text = String(v);
          const value = /^https?:\/\//.test(text)
            ? `<a href="${esc(text)}">${esc(text)}</a>`
            : esc(text);
          return `<tr><th>${esc(k)}</th><td>${value}</td></tr>`;
        })
        .join('')
    : '';
  return layout(
    `Look up ${revision} · local forest`,
    `<h1>Archive of <code>${esc(revision)}</code></h1>
${error ? `<p class="error">${esc(error)}</p>` : `<table class="lookup-result">${rows}</table>`}`,
  );
}

export function errorPage(status: number, message: string): string {
  return layout(
    `${status} · local forest`,
    `<h1>${esc(status)}</h1><p class="error">${esc(message)}</p>`,
  );
}

export const DASHBOARD_CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#f7f7f9}
header{display:flex;gap:1em;align-items:center;justify-content:space-between;background:#2b2f3a;color:#fff;padding:.5em 1em}
header a.home{color:#fff;font-weight:600;text-decoration:none}
main{padding:0 1em 2em}
h1{font-size:1.3em}h2{font-size:1.05em;margin-top:1.2em}
.muted{color:#777}.error{color:#b00020}.flash{background:#e7f3ff;border:1px solid #9cc7f5;padding:.4em .7em}
.push{background:#fff;border:1px solid #ddd;border-radius:4px;margin:.6em 0;padding:.5em .8em}
.push-head{display:flex;gap:1.2em;align-items:baseline}.rev code{font-weight:600}
.message{color:#444;margin:.2em 0}
.jobs{margin:.4em 0;line-height:2}
.group{margin-right:.4em;color:#555}
.job{display:inline-block;min-width:1.6em;text-align:center;padding:0 .35em;margin:0 .1em;border-radius:3px;border:1px solid transparent;text-decoration:none;font-weight:600;font-size:.9em}
.s-pending{background:#e6e6e6;color:#555;border-color:#ccc}
.s-unscheduled{background:#f4f4f4;color:#999;border-color:#ddd}
.s-running{background:#d6e9ff;color:#0a4a8a;border-color:#7fb3ef}
.s-completed{background:#d9f2d9;color:#1e6b1e;border-color:#8fcf8f}
.s-failed{background:#fbd5d5;color:#9b1c1c;border-color:#ef8f8f}
.s-exception{background:#ead9f7;color:#5b2a86;border-color:#c39be3}
.archive{font-size:.92em}.badge{padding:0 .4em;border-radius:3px;font-weight:600}
.badge.built{background:#fff1c2}.badge.reused{background:#d9f2d9}
pre{background:#fff;border:1px solid #ddd;padding:.5em;overflow:auto;max-height:28em;font-size:12px}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;font-size:.92em}
.actions form{display:inline-block;margin-right:.5em}
button{cursor:pointer}
`;

export const DASHBOARD_JS = `
// Refresh every [data-live] part of the page in place, from its server-rendered fragment.
(function () {
  var busy = false;
  function refresh() {
    if (busy || document.hidden) return;
    var parts = document.querySelectorAll('[data-live]');
    busy = true;
    Promise.all(Array.prototype.map.call(parts, function (el) {
      return fetch(el.getAttribute('data-live'), { credentials: 'same-origin' })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null && html !== el.innerHTML) el.innerHTML = html; })
        .catch(function () {});
    })).then(function () { busy = false; });
  }
  setInterval(refresh, 1500);
})();
`;
