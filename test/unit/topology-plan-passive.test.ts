import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compileTopology, DEFAULT_TOPOLOGY, type LiveState, parseTopology, planTopology } from '../../topology/index.ts';

const compiled = compileTopology(parseTopology([{ file: 'processing.yaml', text: readFileSync(DEFAULT_TOPOLOGY, 'utf8') }]));

/** What passive declares find after a successful apply: every exchange and queue, no bindings, no arguments. */
const afterApply: LiveState = {
  detailed: false,
  exchanges: compiled.exchanges.map((e) => ({ name: e.name, type: e.type, durable: e.durable })),
  queues: compiled.queues.map((q) => ({ name: q.name, durable: q.durable, arguments: {} })),
  bindings: [],
};

test('without the management API, plan after apply is not pending: bindings of existing queues and exchanges "exist"', () => {
  const plan = planTopology(compiled, afterApply);
  assert.not.ok(
    plan.pending,
    plan.items
      .filter((i) => i.action === 'create')
      .map((i) => i.name)
      .join(', '),
  );
  const bindings = plan.items.filter((i) => i.kind === 'binding');
  assert.is(bindings.length, compiled.bindings.length);
  for (const b of bindings) assert.is(b.action, 'exists', b.name);
});

test('without the management API, a binding whose queue or exchange is missing is still to create', () => {
  const live: LiveState = { ...afterApply, queues: afterApply.queues.filter((q) => q.name !== 'processing.results') };
  const plan = planTopology(compiled, live);
  assert.ok(plan.pending);
  const b = plan.items.find((i) => i.kind === 'binding' && i.binding?.queue === 'processing.results');
  assert.is(b?.action, 'create');
  const noExchange: LiveState = { ...afterApply, exchanges: afterApply.exchanges.filter((e) => e.name !== 'processing.requests.dlx') };
  const dlx = planTopology(compiled, noExchange).items.filter((i) => i.kind === 'binding' && i.binding?.exchange === 'processing.requests.dlx');
  assert.ok(dlx.length > 0);
  for (const i of dlx) assert.is(i.action, 'create');
});

test('with the management API, a missing binding is to create', () => {
  const live: LiveState = { ...afterApply, detailed: true, queues: compiled.queues.map((q) => ({ name: q.name, durable: q.durable, arguments: q.arguments })) };
  const plan = planTopology(compiled, live);
  assert.ok(plan.pending);
  for (const b of plan.items.filter((i) => i.kind === 'binding')) assert.is(b.action, 'create');
});

test.run();
