// The failure console's script: the live queue table, and replay / purge with a confirmation and
// progress. Plain browser JavaScript, no build and nothing fetched from elsewhere.
const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? '';
const API = '/api/v1/admin/dead-letters';

function $(sel, root = document) {
  return root.querySelector(sel);
}

async function call(path, body) {
  const res = await fetch(path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json', 'x-csrf-token': csrf },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const data = await res.json().catch(() => ({}));
  return { ok: res.ok, status: res.status, data };
}

function flash(text, kind = 'info') {
  const el = $('#flash');
  if (!el) return;
  el.textContent = text;
  el.className = kind;
}

function progress(done, total, label) {
  const box = $('#progress');
  box.hidden = false;
  $('progress', box).max = Math.max(total, 1);
  $('progress', box).value = done;
  $('span', box).textContent = `${label} ${done}/${total}`;
}

function confirmDialog(text, okLabel) {
  const dialog = $('#confirm');
  $('p', dialog).textContent = text;
  $('#confirm-ok', dialog).textContent = okLabel;
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}

/** The requestIds an action applies to: one, the checked rows, or a group's (from the store). */
async function idsFor(button) {
  if (button.dataset.id) return [button.dataset.id];
  if (button.hasAttribute('data-selection')) return [...document.querySelectorAll('input[data-id]:checked')].map((c) => c.dataset.id);
  const res = await call(`${API}/?group=${encodeURIComponent(button.dataset.group)}&limit=50000`);
  if (!res.ok) throw new Error(res.data.error?.message ?? `HTTP ${res.status}`);
  return res.data.deadLetters.map((d) => d.requestId);
}

/** In slices, so the bar moves; the server paces each slice (rate-limited) and keeps anything it cannot route dead. */
async function replay(ids) {
  const slice = Math.max(5, Math.ceil(ids.length / 10));
  let replayed = 0;
  const failed = [];
  progress(0, ids.length, 'Replaying');
  for (let i = 0; i < ids.length; i += slice) {
    const res = await call(`${API}/replay`, { ids: ids.slice(i, i + slice) });
    if (!res.ok && res.status !== 409) throw new Error(res.data.error?.message ?? `HTTP ${res.status}`);
    replayed += res.data.replayed ?? 0;
    failed.push(...(res.data.failed ?? []));
    progress(Math.min(i + slice, ids.length), ids.length, 'Replaying');
  }
  const queues = [...new Set(failed.map((f) => f.queue))].join(', ');
  return `Replayed ${replayed} of ${ids.length}.${failed.length ? ` ${failed.length} stay dead: origin queue ${queues} does not exist.` : ''}`;
}

/** Export first (downloaded as JSON lines), then purge exactly what the export holds. */
async function purge(ids, name) {
  progress(0, ids.length, 'Exporting');
  const exp = await call(`${API}/export`, { ids });
  if (!exp.ok) throw new Error(exp.data.error?.message ?? `HTTP ${exp.status}`);
  const blob = new Blob([`${exp.data.records.map((r) => JSON.stringify(r)).join('\n')}\n`], { type: 'application/x-ndjson' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `dead-letters-${name}-${exp.data.exportedAt.replace(/[:.]/g, '-')}.jsonl`;
  document.body.append(a);
  a.click();
  a.remove();
  progress(0, exp.data.count, 'Purging');
  const res = await call(`${API}/purge`, { token: exp.data.token, yes: true });
  if (!res.ok) throw new Error(res.data.error?.message ?? `HTTP ${res.status}`);
  progress(res.data.purged, exp.data.count, 'Purged');
  return `Exported ${exp.data.count} to ${a.download}, then purged ${res.data.purged}.`;
}

function setBusy(busy) {
  for (const b of document.querySelectorAll('button[data-action]')) b.disabled = busy;
}

async function act(button) {
  const action = button.dataset.action;
  const ids = await idsFor(button);
  if (ids.length === 0) return flash('Nothing selected.', 'error');
  const what = button.dataset.group ? `group ${button.dataset.group}` : ids.length === 1 ? ids[0] : 'the selection';
  const question =
    action === 'replay'
      ? `Replay ${ids.length} dead letter(s) of ${what} to their origin queue?`
      : `Purge ${ids.length} dead letter(s) of ${what}? An export downloads first; then they are removed for good.`;
  if (!(await confirmDialog(question, action === 'replay' ? 'Replay' : 'Export and purge'))) return;
  setBusy(true);
  try {
    const text = action === 'replay' ? await replay(ids) : await purge(ids, button.dataset.group ?? 'selection');
    sessionStorage.setItem('flash', text);
    location.reload();
  } catch (err) {
    flash(`${action} failed: ${err.message}`, 'error');
    setBusy(false);
  }
}

function fmt(n) {
  return Number(n).toFixed(1);
}

/** Rebuilds the queue table every few seconds from the management API (through the API). */
async function refreshQueues(table) {
  const res = await call(table.dataset.live);
  const stamp = $('#queues-updated');
  if (!res.ok) {
    stamp.textContent = res.data.error?.message ?? `HTTP ${res.status}`;
    return;
  }
  const body = document.createElement('tbody');
  for (const q of res.data.queues) {
    const tr = body.insertRow();
    tr.className = `role-${q.role}${q.exists ? '' : ' missing'}`;
    const cells = [q.name, q.role, q.messages, q.ready, q.unacked, q.consumers, fmt(q.publishRate), fmt(q.deliverRate), fmt(q.ackRate), q.dead ?? ''];
    cells.forEach((v, i) => {
      const td = tr.insertCell();
      td.textContent = String(v);
      if (i >= 2) td.className = 'n';
    });
  }
  table.tBodies[0].replaceWith(body);
  stamp.textContent = `live · ${new Date(res.data.at).toLocaleTimeString()}`;
}

document.addEventListener('DOMContentLoaded', () => {
  const message = sessionStorage.getItem('flash');
  if (message) {
    sessionStorage.removeItem('flash');
    flash(message, 'ok');
  }
  for (const b of document.querySelectorAll('button[data-action]')) b.addEventListener('click', () => act(b));
  $('input[data-select-all]')?.addEventListener('change', (e) => {
    for (const c of document.querySelectorAll('input[data-id]')) c.checked = e.target.checked;
  });
  const live = $('table[data-live]');
  if (live) {
    const tick = () => refreshQueues(live).catch((err) => ($('#queues-updated').textContent = err.message));
    setInterval(tick, 3000);
  }
});
