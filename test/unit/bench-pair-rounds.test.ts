import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { inOrder, medianRound, runRounds } from '../../bench/lib/pair-rounds.ts';

/** How a pair section of the bench picks the round it reports. */

test('the round with the median ratio is reported, with its own two figures', () => {
  const rounds = [
    { warren: 19822, raw: 20095, order: 'raw-first' }, // 0.99
    { warren: 19132, raw: 23956, order: 'warren-first' }, // 0.80
    { warren: 26509, raw: 20865, order: 'raw-first' }, // 1.27
    { warren: 21175, raw: 16207, order: 'warren-first' }, // 1.31
    { warren: 24439, raw: 21413, order: 'raw-first' }, // 1.14
  ];
  const m = medianRound(rounds);
  assert.is(m, rounds[4]);
  assert.is(Math.round((m.warren / m.raw) * 100) / 100, 1.14);
});

test('not the best of each side: the two figures come from the same round', () => {
  // Best-of-each would pair warren 30000 (round 2) with raw 40000 (round 3): a ratio of 0.75 that
  // no round measured.
  const rounds = [
    { warren: 20000, raw: 20000 }, // 1.0
    { warren: 30000, raw: 25000 }, // 1.2
    { warren: 18000, raw: 40000 }, // 0.45
  ];
  assert.equal(medianRound(rounds), { warren: 20000, raw: 20000 });
});

test('one round is its own median; no round is an error', () => {
  assert.equal(medianRound([{ warren: 1, raw: 2 }]), { warren: 1, raw: 2 });
  assert.throws(() => medianRound([]), /no rounds/);
});

test('inOrder runs the side named first first, and reports each figure under its own name', async () => {
  for (const order of ['raw-first', 'warren-first'] as const) {
    const ran: string[] = [];
    const side = (name: string, figure: number) => async () => {
      ran.push(name);
      return figure;
    };
    const pair = await inOrder(order, side('raw', 1), side('warren', 2));
    assert.equal(ran, order === 'raw-first' ? ['raw', 'warren'] : ['warren', 'raw']);
    assert.equal(pair, { raw: 1, warren: 2 });
  }
});

test('runRounds alternates the order only when asked, and records it then', async () => {
  const seen: string[] = [];
  const round = async (order: string) => {
    seen.push(order);
    return { raw: 1, warren: 1 };
  };
  const alternated = await runRounds(3, round, true);
  assert.equal(seen, ['raw-first', 'warren-first', 'raw-first']);
  assert.equal(
    alternated.map((r) => r.order),
    ['raw-first', 'warren-first', 'raw-first'],
  );
  const fixed = await runRounds(2, round);
  assert.equal(seen.slice(3), ['raw-first', 'raw-first']);
  assert.equal(fixed, [
    { raw: 1, warren: 1 },
    { raw: 1, warren: 1 },
  ]);
});

test.run();
