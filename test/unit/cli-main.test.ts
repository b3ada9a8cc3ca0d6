import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { main } from '../../cli/main.ts';

/** Runs the CLI's main in-process, capturing what it writes. */
async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const write = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
  process.stdout.write = ((chunk: string) => {
    out += chunk;
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => {
    err += chunk;
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await main(argv);
    return { code, out, err };
  } finally {
    process.stdout.write = write.out;
    process.stderr.write = write.err;
  }
}

test('--help after any command prints its usage and runs nothing', async () => {
  // main answers it before the command runs (`warren start --help` used to start the broker, the
  // API and two workers; not called here, since a regression would start them).
  const plan = await cli('topology', 'plan', '--help');
  assert.is(plan.code, 0);
  assert.match(plan.out, /warren topology plan/);
  const status = await cli('status', '-h');
  assert.is(status.code, 0);
  assert.match(status.out, /^Usage: warren status/);
});

test('an unknown option is named, with the usage, and no stack trace', async () => {
  const r = await cli('topology', 'plan', '--bogus');
  assert.is(r.code, 1);
  assert.match(r.err, /^warren topology: Unknown option '--bogus'\n\nUsage:/);
  assert.not.match(r.err, /\n\s+at /);
  const d = await cli('dlq', 'list', '--nope');
  assert.is(d.code, 1);
  assert.match(d.err, /Unknown option '--nope'/);
  assert.not.match(d.err, /\n\s+at /);
});

test.run();
