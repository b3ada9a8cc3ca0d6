import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { profileTop } from '../../bench/lib/profile-top.ts';

/** The profile summary the Profiles section of bench/README.md is written from. */
const frame = (functionName: string, url: string, lineNumber: number) => ({ functionName, url, lineNumber });

test('profileTop sums self samples per function across nodes, largest first, with project-relative files', () => {
  const profile = {
    startTime: 0,
    endTime: 100_000, // 100 ms in microseconds, over 10 samples: 10 ms each
    nodes: [
      { id: 1, callFrame: frame('(root)', '', -1) },
      { id: 2, callFrame: frame('publish', 'file:///repo/amqp/confirm-publisher.ts', 41) },
      { id: 3, callFrame: frame('publish', 'file:///repo/amqp/confirm-publisher.ts', 41) },
      { id: 4, callFrame: frame('', 'file:///repo/api/http/app.ts', 9) },
      { id: 5, callFrame: frame('(garbage collector)', '', -1) },
    ],
    samples: [2, 3, 3, 4, 5, 5, 5, 5, 1, 4],
  };
  const rows = profileTop(profile, 3, '/repo/');
  assert.equal(
    rows.map((r) => [r.frame, r.selfMs, r.share]),
    [
      ['(garbage collector)', 40, 0.4],
      ['publish (amqp/confirm-publisher.ts:42)', 30, 0.3],
      ['(anonymous) (api/http/app.ts:10)', 20, 0.2],
    ],
  );
});

test('profileTop falls back on hitCount when a profile has no samples', () => {
  const profile = { startTime: 0, endTime: 4000, nodes: [{ id: 1, callFrame: frame('f', '', 0), hitCount: 4 }] };
  assert.equal(profileTop(profile), [{ frame: 'f', selfMs: 4, share: 1 }]);
});

test.run();
