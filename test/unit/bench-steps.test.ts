import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type Bucket,
  bucketDelta,
  bucketize,
  exactQuantile,
  histogramBuckets,
  judgeStep,
  metricSum,
  quantileMs,
  shareWithin,
  sustainedRate,
} from '../../bench/lib/steps.ts';

/**
 * The sustained-rate section's decisions, on hand-made scrapes: what the API's /metrics says
 * before and after a step, and whether the step counts as sustained.
 */
const scrape = (done: number[], dead: number[] = []) => {
  const les = ['0.01', '0.1', '1', '10', '+Inf'];
  const lines = ['# HELP warren_end_to_end_seconds x', '# TYPE warren_end_to_end_seconds histogram'];
  for (const [i, le] of les.entries()) lines.push(`warren_end_to_end_seconds_bucket{le="${le}",status="done"} ${done[i] ?? 0}`);
  for (const [i, le] of les.entries()) lines.push(`warren_end_to_end_seconds_bucket{le="${le}",status="dead"} ${dead[i] ?? 0}`);
  lines.push(`warren_end_to_end_seconds_count{status="done"} ${done.at(-1) ?? 0}`);
  lines.push('warren_requests_accepted_total 120', 'warren_requests_accepted_totalish 5');
  lines.push('warren_results_stored_total{status="done"} 100', 'warren_results_stored_total{status="dead"} 3');
  return lines.join('\n');
};

test('metricSum adds every labelled series of one name and no other name', () => {
  const text = scrape([]);
  assert.is(metricSum(text, 'warren_results_stored_total'), 103);
  assert.is(metricSum(text, 'warren_requests_accepted_total'), 120);
  assert.is(metricSum(text, 'warren_missing_total'), 0);
});

test('histogramBuckets sums the status labels per bound, +Inf last', () => {
  const b = histogramBuckets(scrape([1, 5, 9, 10, 10], [0, 0, 1, 2, 2]), 'warren_end_to_end_seconds');
  assert.equal(
    b.map((x) => [x.le, x.count]),
    [
      [0.01, 1],
      [0.1, 5],
      [1, 10],
      [10, 12],
      [Number.POSITIVE_INFINITY, 12],
    ],
  );
});

test('bucketDelta keeps only the observations between two scrapes', () => {
  const before = histogramBuckets(scrape([1, 2, 2, 2, 2]), 'warren_end_to_end_seconds');
  const after = histogramBuckets(scrape([1, 52, 102, 102, 102]), 'warren_end_to_end_seconds');
  assert.equal(
    bucketDelta(after, before).map((x) => x.count),
    [0, 50, 100, 100, 100],
  );
});

const b = (pairs: [number, number][]): Bucket[] => pairs.map(([le, count]) => ({ le, count }));

test('quantileMs interpolates inside the bucket, like histogram_quantile', () => {
  // 100 observations: 50 in (0, 0.1], 50 in (0.1, 1].
  const buckets = b([
    [0.1, 50],
    [1, 100],
    [Number.POSITIVE_INFINITY, 100],
  ]);
  assert.is(quantileMs(buckets, 0.5), 100);
  assert.ok(Math.abs((quantileMs(buckets, 0.99) ?? 0) - 982) < 1e-9);
  assert.is(quantileMs(b([[Number.POSITIVE_INFINITY, 0]]), 0.5), undefined);
  // In the +Inf bucket: the highest finite bound, never Infinity (JSON has no Infinity).
  assert.is(
    quantileMs(
      b([
        [1, 10],
        [Number.POSITIVE_INFINITY, 100],
      ]),
      0.99,
    ),
    1000,
  );
});

test('shareWithin is exact at a bucket bound', () => {
  const buckets = b([
    [0.5, 980],
    [1, 989],
    [2.5, 1000],
    [Number.POSITIVE_INFINITY, 1000],
  ]);
  assert.is(shareWithin(buckets, 1), 0.989);
});

const fast = b([
  [0.1, 990],
  [1, 1000],
  [Number.POSITIVE_INFINITY, 1000],
]);

test('judgeStep: a step accepted, drained, with a small backlog and 99% within 1 s holds', () => {
  const v = judgeStep({ offeredPerSecond: 1000, acceptedPerSecond: 990, backlogAtEnd: 400, undrained: 0, buckets: fast, httpP99Ms: 40 });
  assert.ok(v.holds, v.reasons.join('; '));
  assert.equal(v.reasons, []);
});

test('judgeStep: each broken condition fails the step and says why', () => {
  const base = { offeredPerSecond: 1000, acceptedPerSecond: 1000, backlogAtEnd: 0, undrained: 0, buckets: fast, httpP99Ms: 40 as number | undefined };
  const cases: [Partial<typeof base>, RegExp][] = [
    [{ acceptedPerSecond: 900 }, /accepted 900\/s < 0.95 of 1000\/s/],
    [{ backlogAtEnd: 501 }, /backlog 501 > 500/],
    [{ undrained: 3 }, /3 accepted requests not stored/],
    [{ httpP99Ms: 1000 }, /HTTP p99 1000 ms >= 1000 ms from the due time/],
    [{ httpP99Ms: undefined }, /HTTP p99 unknown/],
    [
      {
        buckets: b([
          [0.1, 900],
          [1, 989],
          [Number.POSITIVE_INFINITY, 1000],
        ]),
      },
      /98.9% within 1 s/,
    ],
    [{ buckets: b([[Number.POSITIVE_INFINITY, 0]]) }, /no end-to-end observations/],
  ];
  for (const [change, reason] of cases) {
    const v = judgeStep({ ...base, ...change });
    assert.not.ok(v.holds, JSON.stringify(change));
    assert.is(v.reasons.length, 1);
    assert.match(v.reasons[0] ?? '', reason);
  }
});

test('judgeStep: a backlog under the floor holds at a low rate', () => {
  assert.ok(judgeStep({ offeredPerSecond: 50, acceptedPerSecond: 50, backlogAtEnd: 200, undrained: 0, buckets: fast, httpP99Ms: 999 }).holds);
});

test('sustainedRate is the last step that held before the first that did not', () => {
  const s = (offeredPerSecond: number, holds: boolean) => ({ offeredPerSecond, holds });
  assert.is(sustainedRate([s(100, true), s(200, true), s(400, false), s(800, true)]), 200);
  assert.is(sustainedRate([s(100, false), s(200, true)]), 0);
  assert.is(sustainedRate([]), 0);
});

test('bucketize reads exact latencies into the API histogram bounds, so both sides interpolate alike', () => {
  const buckets = bucketize([5, 10, 11, 400, 2000], [0.01, 0.5, 1]);
  assert.equal(
    buckets.map((x) => [x.le, x.count]),
    [
      [0.01, 2],
      [0.5, 4],
      [1, 4],
      [Number.POSITIVE_INFINITY, 5],
    ],
  );
});

test('exactQuantile is the nearest rank', () => {
  const values = Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.is(exactQuantile(values, 0.5), 50);
  assert.is(exactQuantile(values, 0.99), 99);
  assert.is(exactQuantile(values, 1), 100);
  assert.is(exactQuantile([], 0.5), undefined);
});

test.run();
