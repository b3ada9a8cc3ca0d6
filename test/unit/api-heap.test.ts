import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { API_HEAP_FLAGS, API_NODE_OPTIONS, apiNodeOptions, tuneApiHeap } from '../../api/heap.ts';

test('NODE_OPTIONS for the API: added to the caller own options, never over their own young-generation size', () => {
  assert.is(apiNodeOptions(undefined), API_NODE_OPTIONS);
  assert.is(apiNodeOptions('  '), API_NODE_OPTIONS);
  assert.is(apiNodeOptions('--enable-source-maps'), `--enable-source-maps ${API_NODE_OPTIONS}`);
  assert.is(apiNodeOptions('--max-semi-space-size=16'), '--max-semi-space-size=16');
});

test('tuneApiHeap sets its flags, unless node was started with a flag tuning the same, on its command line or in NODE_OPTIONS', () => {
  assert.equal(tuneApiHeap(['--heap-growing-percent=50'], undefined), []);
  assert.equal(tuneApiHeap(['--optimize-for-size'], ''), []);
  assert.equal(tuneApiHeap([], '--max-semi-space-size=4 --heap-growing-percent=80'), []);
  assert.equal(tuneApiHeap(['--enable-source-maps'], '--max-semi-space-size=4'), API_HEAP_FLAGS);
  assert.equal(tuneApiHeap([], undefined), API_HEAP_FLAGS);
});

test.run();
