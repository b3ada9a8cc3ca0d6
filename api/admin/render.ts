import type { DeadLetter } from '../dead-letters/index.ts';
import type { DeadGroupRecord, DeadLetterRecord, RequestRecord } from '../store/result-store.ts';
import { type Html, html, when } from './html.ts';
import type { QueueRow } from './queue-overview.ts';

/** The console's pages. Plain HTML: tables and forms work without the script; the script adds live refresh and the actions. */
export function layout(title: string, body: Html, csrf?: string): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Warren</title>
${csrf ? html`<meta name="csrf-token" content="${csrf}">` : ''}
<link rel="stylesheet" href="/admin/assets/app.css">
<script src="/admin/assets/app.js" defer></script>
</head>
<body>
${body}
</body>
</html>
`.text;
}

export function signInPage(error?: string): string {
  return layout(
    'Sign in',
    html`<main class="sign-in">
<h1>Warren failure console</h1>
<form method="post" action="/admin/sign-in" class="card">
  <label for="token">Admin token</label>
  <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
  ${error ? html`<p class="error" role="alert">${error}</p>` : ''}
  <button type="submit">Sign in</button>
</form>
<p class="hint">The token is the API's <code>ADMIN_TOKEN</code>.</p>
</main>`,
  );
}

function header(csrf: string, crumbs: Html | string = ''): Html {
  return html`<header>
  <a class="brand" href="/admin">Warren · failure console</a>
  <span class="crumbs">${crumbs}</span>
  <form class="search" method="get" action="/admin/search"><input name="requestId" placeholder="requestId" aria-label="search by requestId"><button>Search</button></form>
  <form method="post" action="/admin/sign-out"><input type="hidden" name="csrf" value="${csrf}"><button class="link">Sign out</button></form>
</header>
<div id="flash" role="status"></div>
<div id="progress" hidden><progress max="1" value="0"></progress> <span></span></div>
<dialog id="confirm"><form method="dialog"><p></p><menu><button value="cancel">Cancel</button><button value="ok" id="confirm-ok">Confirm</button></menu></form></dialog>`;
}

export function queueRows(rows: readonly QueueRow[]): Html {
  return html`${rows.map(
    (q) => html`<tr class="role-${q.role}${q.exists ? '' : ' missing'}">
  <td>${q.name}</td><td>${q.role}</td><td class="n">${q.messages}</td><td class="n">${q.ready}</td><td class="n">${q.unacked}</td>
  <td class="n">${q.consumers}</td><td class="n">${q.publishRate.toFixed(1)}</td><td class="n">${q.deliverRate.toFixed(1)}</td><td class="n">${q.ackRate.toFixed(1)}</td>
  <td class="n">${q.dead === undefined ? '' : q.dead}</td></tr>`,
  )}`;
}

export function homePage(p: { csrf: string; queues: readonly QueueRow[] | string; groups: readonly (DeadGroupRecord & { pattern: string })[] }): string {
  const queues = typeof p.queues === 'string' ? html`<tr><td colspan="10" class="error">${p.queues}</td></tr>` : queueRows(p.queues);
  return layout(
    'Failure console',
    html`${header(p.csrf)}
<main>
<section>
  <h2>Queues <small id="queues-updated">live</small></h2>
  <table id="queues" data-live="/api/v1/admin/queues">
    <thead><tr><th>queue</th><th>role</th><th>messages</th><th>ready</th><th>unacked</th><th>consumers</th><th>in/s</th><th>out/s</th><th>ack/s</th><th>dead</th></tr></thead>
    <tbody>${queues}</tbody>
  </table>
</section>
<section>
  <h2>Dead letters by cause</h2>
  ${
    p.groups.length === 0
      ? html`<p class="empty">No dead letters.</p>`
      : html`<table id="groups">
    <thead><tr><th>group</th><th>reason</th><th>error</th><th>count</th><th>first failure</th><th>last failure</th><th>origin queue</th><th></th></tr></thead>
    <tbody>${p.groups.map(
      (g) => html`<tr data-group="${g.group}">
      <td><a href="/admin/groups/${encodeURIComponent(g.group)}">${g.group}</a></td><td>${g.reason ?? ''}</td><td class="err">${g.pattern}</td>
      <td class="n count">${g.count}</td><td>${when(g.firstFailure)}</td><td>${when(g.lastFailure)}</td><td>${g.queues.join(', ')}</td>
      <td class="actions"><button data-action="replay" data-group="${g.group}" data-count="${g.count}">Replay</button>
        <button data-action="purge" data-group="${g.group}" data-count="${g.count}" class="danger">Purge…</button></td></tr>`,
    )}</tbody>
  </table>`
  }
</section>
</main>`,
    p.csrf,
  );
}

function statusBadge(s: string): Html {
  return html`<span class="status status-${s}">${s}</span>`;
}

export function letterTable(rows: readonly DeadLetterRecord[], selectable: boolean): Html {
  return html`<table id="letters">
  <thead><tr>${selectable ? html`<th><input type="checkbox" data-select-all aria-label="select all"></th>` : ''}<th>requestId</th><th>store</th><th>reason</th><th>error</th><th>attempts</th><th>first failure</th><th>dead at</th><th>origin queue</th></tr></thead>
  <tbody>${rows.map(
    (r) => html`<tr>${selectable ? html`<td>${r.status === 'dead' ? html`<input type="checkbox" data-id="${r.requestId}" aria-label="select">` : ''}</td>` : ''}
    <td><a href="/admin/messages/${encodeURIComponent(r.requestId)}">${r.requestId}</a></td><td>${statusBadge(r.status)}</td><td>${r.reason ?? ''}</td>
    <td class="err">${r.message ?? ''}</td><td class="n">${r.attempts ?? ''}</td><td>${when(r.firstFailure)}</td><td>${when(r.deadAt)}</td><td>${r.originQueue ?? ''}</td></tr>`,
  )}</tbody>
</table>`;
}

export function groupPage(p: { csrf: string; group: string; rows: readonly DeadLetterRecord[] }): string {
  const dead = p.rows.filter((r) => r.status === 'dead').length;
  return layout(
    `Group ${p.group}`,
    html`${header(p.csrf, html`/ group ${p.group}`)}
<main>
<section>
  <h2>Group ${p.group} <small>${dead} dead, ${p.rows.length - dead} replayed since</small></h2>
  <p class="actions">
    <button data-action="replay" data-selection>Replay selected</button>
    <button data-action="replay" data-group="${p.group}" data-count="${dead}">Replay group</button>
    <button data-action="purge" data-group="${p.group}" data-count="${dead}" class="danger">Purge group…</button>
  </p>
  ${p.rows.length ? letterTable(p.rows, true) : html`<p class="empty">Nothing in this group.</p>`}
</section>
</main>`,
    p.csrf,
  );
}

export function searchPage(p: { csrf: string; requestId: string; rows: readonly DeadLetterRecord[]; record: RequestRecord | undefined }): string {
  return layout(
    'Search',
    html`${header(p.csrf, html`/ search ${p.requestId}`)}
<main>
<section>
  <h2>Requests starting with <code>${p.requestId}</code></h2>
  ${p.record ? html`<p>Store: ${statusBadge(p.record.status)} since ${when(p.record.updatedAt)}</p>` : ''}
  ${p.rows.length ? letterTable(p.rows, false) : html`<p class="empty">No dead letter recorded for it.</p>`}
</section>
</main>`,
    p.csrf,
  );
}

/** One dead letter as the page shows it: the decoded dead letter, its group's id and its body. */
export type MessageView = Omit<DeadLetter, 'messageId' | 'fingerprint' | 'body'> & { group: string; body: unknown };

export function messagePage(p: { csrf: string; id: string; view: MessageView | undefined; record: RequestRecord | undefined; error?: string }): string {
  const v = p.view;
  const store = p.record ? html`${statusBadge(p.record.status)} since ${when(p.record.updatedAt)}` : html`<em>no row</em>`;
  return layout(
    `Dead letter ${p.id}`,
    html`${header(p.csrf, html`/ message ${p.id}`)}
<main>
${
  v
    ? html`<section>
  <h2>Dead letter <code>${p.id}</code></h2>
  <p class="actions"><button data-action="replay" data-id="${p.id}">Replay</button> <button data-action="purge" data-id="${p.id}" class="danger">Purge…</button></p>
  <dl class="facts">
    <dt>store</dt><dd>${store}</dd>
    <dt>origin queue</dt><dd>${v.originQueue}</dd>
    <dt>reason</dt><dd>${v.reason} (${v.errorCode ?? 'no code'})</dd>
    <dt>error</dt><dd class="err">${v.errorMessage ?? ''}</dd>
    <dt>attempts</dt><dd>${v.attempts}, replayed ${v.replays} time(s)</dd>
    <dt>first / last failure</dt><dd>${when(v.firstFailure)} / ${when(v.lastFailure)}</dd>
    <dt>dead at</dt><dd>${when(v.deadAt)}</dd>
    <dt>group</dt><dd><a href="/admin/groups/${encodeURIComponent(v.group)}">${v.group}</a></dd>
  </dl>
</section>
<section><h3>Attempt history</h3>${
        v.history.length ? html`<ol>${v.history.map((h) => html`<li><code>${JSON.stringify(h)}</code></li>`)}</ol>` : html`<p class="empty">None recorded.</p>`
      }</section>
<section><h3>Stack</h3><pre>${v.errorStack ?? '(none)'}</pre></section>
<section><h3>Body</h3><pre>${typeof v.body === 'string' ? v.body : JSON.stringify(v.body, null, 2)}</pre></section>
<section><h3>Headers</h3><table class="kv"><tbody>${Object.entries(v.headers).map(
        ([k, val]) => html`<tr><th>${k}</th><td><code>${typeof val === 'string' ? val : JSON.stringify(val)}</code></td></tr>`,
      )}</tbody></table></section>`
    : html`<section><h2>Dead letter <code>${p.id}</code></h2><p class="error">${p.error ?? 'not in any dead-letter queue'}</p><p>Store: ${store}</p></section>`
}
</main>`,
    p.csrf,
  );
}
