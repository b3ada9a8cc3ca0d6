import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TopologyError } from '../../core/index.ts';
import { compileTopology, DEFAULT_TOPOLOGY, parseTopology } from '../../topology/index.ts';

function problemsOf(text: string): string[] {
  try {
    parseTopology([{ file: 'loss.yaml', text }]);
  } catch (err) {
    assert.instance(err, TopologyError);
    return (err as TopologyError).problems.map((p) => `${p.file}: ${p.path}: ${p.message}`);
  }
  return [];
}

const queue = (spec: string) => `exchanges:\n  x: { type: direct }\nqueues:\n  q: ${spec}\n`;

test('drop-head without a dead-letter queue is refused, naming file, key and what was expected', () => {
  const [p, ...more] = problemsOf(queue('{ maxLength: 10, overflow: drop-head }'));
  assert.is(more.length, 0);
  assert.match(p ?? '', /^loss\.yaml: queues\.q\.overflow: drop-head, which drops the oldest messages/);
  assert.match(p ?? '', /expected overflow: reject-publish .*, or deadLetter: true/);
});

test('a length limit without overflow (the broker default is drop-head) and without a dead-letter queue is refused', () => {
  assert.match(problemsOf(queue('{ maxLength: 10 }'))[0] ?? '', /queues\.q\.maxLength: a length limit without overflow means drop-head/);
  assert.match(problemsOf(queue('{ type: classic, maxLengthBytes: 1000 }'))[0] ?? '', /queues\.q\.maxLengthBytes: /);
});

test('messageTtl without a dead-letter queue is refused', () => {
  assert.match(
    problemsOf(queue('{ messageTtl: 5s }'))[0] ?? '',
    /queues\.q\.messageTtl: messageTtl without a dead-letter queue drops expired messages.*expected deadLetter: true/,
  );
});

test('a delivery limit without a dead-letter target is refused (past it the broker drops the message)', () => {
  assert.match(
    problemsOf(queue('{ type: quorum, deliveryLimit: 5 }'))[0] ?? '',
    /queues\.q\.deliveryLimit: a delivery limit without a dead-letter target drops/,
  );
});

test('the same settings with a dead-letter queue, or with reject-publish, are accepted', () => {
  for (const spec of [
    '{ maxLength: 10, overflow: drop-head, deadLetter: true }',
    '{ maxLength: 10, deadLetter: true }',
    '{ maxLength: 10, overflow: reject-publish }',
    '{ messageTtl: 5s, deadLetter: true }',
    '{ deliveryLimit: 5, deadLetter: true }',
  ]) {
    assert.equal(problemsOf(queue(spec)), [], spec);
  }
  assert.equal(problemsOf(readFileSync(DEFAULT_TOPOLOGY, 'utf8')), [], 'the shipped topology');
});

test('a classic queue compiles with a loud warning: no delivery limit, a crash loop never ends', () => {
  const c = compileTopology(parseTopology([{ file: 'c.yaml', text: queue('{ type: classic, maxLength: 5, overflow: reject-publish }') }]));
  assert.equal(c.warnings.length, 1);
  assert.match(c.warnings[0] ?? '', /^c\.yaml: queues\.q\.type: classic queues have no delivery limit: .*redelivered for ever/);
  const shipped = compileTopology(parseTopology([{ file: 'p.yaml', text: readFileSync(DEFAULT_TOPOLOGY, 'utf8') }]));
  assert.equal(shipped.warnings, []);
});

test.run();
