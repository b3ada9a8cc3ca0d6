import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Histogram, Registry } from 'prom-client';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger, metricNamesOf, serveMetrics } from '../../core/index.ts';

/** `GET /metrics?name=...`: only the families asked for, from a registry or an aggregated text. */
const logger = createLogger({ name: 'test', level: 'silent' });

function registry(): Registry {
  const r = new Registry();
  new Counter({ name: 'warren_results_stored_total', help: 'Results stored.', registers: [r] }).inc(7);
  new Counter({ name: 'warren_requests_accepted_total', help: 'Requests accepted.', registers: [r] }).inc(9);
  new Histogram({ name: 'warren_end_to_end_seconds', help: 'End to end.', buckets: [0.1, 1], registers: [r] }).observe(0.05);
  return r;
}

async function scrape(server: Server, query = ''): Promise<{ status: number; text: string }> {
  const { port } = server.address() as AddressInfo;
  const res = await fetch(`http://127.0.0.1:${port}/metrics${query}`);
  return { status: res.status, text: await res.text() };
}

/** The metric families named by the # HELP lines of an exposition, in order. */
const families = (text: string) => [...text.matchAll(/^# HELP (\S+)/gm)].map((m) => m[1]);

test('metricNamesOf reads repeated name parameters, without duplicates or empty ones', () => {
  assert.is(metricNamesOf('/metrics'), undefined);
  assert.is(metricNamesOf('/metrics?other=1'), undefined);
  assert.is(metricNamesOf('/metrics?name='), undefined);
  assert.equal(metricNamesOf('/metrics?name=a&name=b&name=a'), ['a', 'b']);
});

for (const [kind, source] of [
  ['a registry', registry()],
  [
    'an aggregated text (a supervisor)',
    (() => {
      const r = registry();
      return () => r.metrics();
    })(),
  ],
] as const) {
  test(`${kind}: a plain scrape has every family, ?name= only those named`, async () => {
    const server = (await serveMetrics({ source, port: 0, host: '127.0.0.1', logger })) as Server;
    try {
      const all = await scrape(server);
      assert.equal(families(all.text), ['warren_results_stored_total', 'warren_requests_accepted_total', 'warren_end_to_end_seconds']);
      const one = await scrape(server, '?name=warren_results_stored_total');
      assert.is(one.status, 200);
      assert.is(one.text, '# HELP warren_results_stored_total Results stored.\n# TYPE warren_results_stored_total counter\nwarren_results_stored_total 7\n');
      const two = await scrape(server, '?name=warren_end_to_end_seconds&name=warren_results_stored_total&name=no_such_metric');
      assert.equal(families(two.text).sort(), ['warren_end_to_end_seconds', 'warren_results_stored_total']);
      assert.match(two.text, /^warren_end_to_end_seconds_bucket\{le="0.1"\} 1$/m);
      assert.ok(two.text.endsWith('\n') && !two.text.endsWith('\n\n'), 'one newline at the end, as a plain scrape');
      const none = await scrape(server, '?name=no_such_metric');
      assert.equal(none, { status: 200, text: '' });
    } finally {
      server.close();
    }
  });
}

test.run();
