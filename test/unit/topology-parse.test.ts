import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TopologyError } from '../../core/index.ts';
import { DEFAULT_TOPOLOGY, parseDuration, parseTopology } from '../../topology/index.ts';

const shipped = readFileSync(DEFAULT_TOPOLOGY, 'utf8');

function problemsOf(text: string, file = 'bad.yaml'): string[] {
  try {
    parseTopology([{ file, text }]);
  } catch (err) {
    assert.instance(err, TopologyError);
    return (err as TopologyError).problems.map((p) => `${p.file}: ${p.path}: ${p.message}`);
  }
  throw new Error('expected the topology to be rejected');
}

test('the shipped topology parses with its retry tiers and dead-letter', () => {
  const t = parseTopology([{ file: 'processing.yaml', text: shipped }]);
  assert.equal(Object.keys(t.exchanges), ['processing']);
  assert.equal(Object.keys(t.queues), ['processing.requests', 'processing.results']);
  const q = t.queues['processing.requests'];
  assert.equal(q?.retry, { delays: [1000, 10_000, 60_000], maxAttempts: 4 });
  assert.is(q?.deadLetter, true);
  assert.is(q?.type, 'quorum');
});

test('a bad duration names the file, the key path with its index and what was expected', () => {
  const problems = problemsOf(shipped.replace('[1s, 10s, 1m]', '[1s, soon, 1m]'), 'topology/processing.yaml');
  assert.is(problems.length, 1);
  assert.match(problems[0] ?? '', /^topology\/processing\.yaml: queues\.processing\.requests\.retry\.delays\[1\]: expected a duration/);
});

test('an unknown key is rejected with its full path', () => {
  const problems = problemsOf(shipped.replace('maxLength: 100000', 'maxLenght: 100000'));
  assert.equal(problems.length, 1);
  assert.match(problems[0] ?? '', /queues\.processing\.requests\.maxLenght: unknown key/);
});

test('a dangling exchange reference is rejected', () => {
  const problems = problemsOf(shipped.replace('bind: { exchange: processing, routingKey: result }', 'bind: { exchange: procesing, routingKey: result }'));
  assert.equal(problems.length, 1);
  assert.match(problems[0] ?? '', /queues\.processing\.results\.bind\.exchange: expected a declared exchange \(one of: processing\), got "procesing"/);
});

test('wrong types and enum values say what was expected', () => {
  const problems = problemsOf('exchanges:\n  x: { type: round-robin }\nqueues:\n  q: { type: quorum, maxLength: -5 }\n');
  assert.is(problems.length, 2);
  assert.ok(problems.some((p) => p.includes('exchanges.x.type') && /expected one of/.test(p)));
  assert.ok(problems.some((p) => p.includes('queues.q.maxLength')));
});

test('invalid YAML is reported with its line', () => {
  const problems = problemsOf('queues:\n  q: { type: quorum\n');
  assert.ok(problems.length >= 1);
  assert.match(problems[0] ?? '', /bad\.yaml: line \d+, column \d+: invalid YAML/);
});

test('a queue declared in two files is rejected, naming both', () => {
  try {
    parseTopology([
      { file: 'a.yaml', text: 'queues:\n  q: { type: quorum }\n' },
      { file: 'b.yaml', text: 'queues:\n  q: { type: classic }\n' },
    ]);
    assert.unreachable('expected a duplicate to be rejected');
  } catch (err) {
    assert.instance(err, TopologyError);
    assert.match((err as TopologyError).message, /b\.yaml: queues\.q: queue already declared in a\.yaml/);
  }
});

test('retry without a dead-letter, too many delays, and quorum-only options are rejected', () => {
  const problems = problemsOf(
    'queues:\n  a: { retry: { delays: [1s], maxAttempts: 3 } }\n  b: { retry: { delays: [1s, 2s, 3s], maxAttempts: 2 }, deadLetter: true }\n  c: { type: classic, deliveryLimit: 3 }\n',
  );
  assert.ok(problems.some((p) => p.includes('queues.a.deadLetter')));
  assert.ok(problems.some((p) => p.includes('queues.b.retry.delays') && p.includes('at most maxAttempts - 1 = 1')));
  assert.ok(problems.some((p) => p.includes('queues.c.deliveryLimit')));
});

test('several files merge into one topology', () => {
  const t = parseTopology([
    { file: 'a.yaml', text: 'exchanges:\n  ex: { type: topic }\n' },
    { file: 'b.yaml', text: 'queues:\n  q: { bind: { exchange: ex, routingKey: "a.#" } }\n' },
  ]);
  assert.equal(Object.keys(t.queues), ['q']);
  assert.is(t.queues.q?.file, 'b.yaml');
});

test('durations', () => {
  assert.is(parseDuration('500ms'), 500);
  assert.is(parseDuration('10s'), 10_000);
  assert.is(parseDuration('1.5m'), 90_000);
  assert.is(parseDuration('2h'), 7_200_000);
  assert.is(parseDuration(250), 250);
  assert.is(parseDuration('10 minutes'), undefined);
  assert.is(parseDuration('0s'), undefined);
  assert.is(parseDuration(-1), undefined);
});

test.run();
