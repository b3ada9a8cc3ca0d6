import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { answerFor, parseByteSize, readApiConfig } from '../../api/index.ts';
import { ConfigError, DEFAULT_RETENTION, PublishNotConfirmedError, readEnv, retentionOf, retentionVars } from '../../core/index.ts';
import { enqueueErrorOf } from '../../producer/index.ts';
import { readWorkerConfig } from '../../worker/index.ts';

test('defaults', () => {
  const c = readApiConfig({});
  assert.is(c.port, 3000);
  assert.is(c.dataDir, '.warren');
  assert.is(c.databaseUrl, undefined);
  assert.is(c.databaseSchema, 'public');
  assert.is(c.bodyLimitBytes, 1024 * 1024);
  assert.is(c.publishTimeoutMs, 5000);
  assert.is(c.maxInFlight, 1000);
  assert.equal(c.amqpUrls, ['amqp://guest:guest@127.0.0.1:5672']);
  assert.ok(Object.isFrozen(c));
});

test('values from the environment', () => {
  const c = readApiConfig({
    PORT: '0',
    AMQP_URL: 'amqp://a:5672, amqp://b:5672',
    DATABASE_URL: 'postgresql://u@h/db',
    DATABASE_SCHEMA: 'warren_x',
    API_BODY_LIMIT: '10kb',
    API_PUBLISH_TIMEOUT_MS: '800',
    API_MAX_IN_FLIGHT: '5',
    DATA_DIR: '/tmp/x',
  });
  assert.is(c.port, 0);
  assert.equal(c.amqpUrls, ['amqp://a:5672', 'amqp://b:5672']);
  assert.is(c.databaseUrl, 'postgresql://u@h/db');
  assert.is(c.databaseSchema, 'warren_x');
  assert.is(c.bodyLimitBytes, 10240);
  assert.is(c.publishTimeoutMs, 800);
  assert.is(c.maxInFlight, 5);
  assert.is(c.dataDir, '/tmp/x');
});

test('errors name the variable', () => {
  const bad: Array<[string, string]> = [
    ['API_PUBLISH_TIMEOUT_MS', '60000'],
    ['API_MAX_IN_FLIGHT', '0'],
    ['API_BODY_LIMIT', 'lots'],
    ['DATABASE_URL', 'mysql://x'],
    ['DATABASE_SCHEMA', 'Robert"); DROP'],
    ['PORT', '70000'],
  ];
  for (const [variable, value] of bad) {
    try {
      readApiConfig({ [variable]: value });
      assert.unreachable(`${variable}=${value} was accepted`);
    } catch (err) {
      assert.instance(err, ConfigError);
      assert.is((err as ConfigError).variable, variable);
    }
  }
});

test('byte sizes', () => {
  assert.is(parseByteSize('512'), 512);
  assert.is(parseByteSize('1mb'), 1048576);
  assert.is(parseByteSize('1.5KB'), 1536);
  assert.is(parseByteSize('1 tb'), undefined);
});

test('publish failures map to 503 with Retry-After and the code clients script against; unknown errors to a bare 500', () => {
  const codes = {
    nack: 'PUBLISH_REJECTED',
    timeout: 'PUBLISH_TIMEOUT',
    closed: 'BROKER_UNAVAILABLE',
    blocked: 'BROKER_BLOCKED',
    'window-full': 'OVERLOADED',
    unroutable: 'UNROUTABLE',
  };
  for (const [reason, code] of Object.entries(codes)) {
    const a = answerFor(enqueueErrorOf(new PublishNotConfirmedError(reason as keyof typeof codes, 'x'), 'process', 'r1'));
    assert.is(a.status, 503);
    assert.is(a.code, code);
    assert.ok((a.retryAfter ?? 0) > 0);
  }
  assert.equal(answerFor(new Error('secret detail')), { status: 500, code: 'INTERNAL', message: 'internal error' });
});

test('AMQP_MANAGEMENT_URL: read the same way by the API and the worker', () => {
  for (const read of [readApiConfig, readWorkerConfig]) {
    assert.is(read({ AMQP_MANAGEMENT_URL: ' http://h:15672 ' }).managementUrl, 'http://h:15672');
    assert.is(read({ AMQP_MANAGEMENT_URL: 'https://h' }).managementUrl, 'https://h');
    assert.is(read({ AMQP_MANAGEMENT_URL: '  ' }).managementUrl, undefined);
    assert.is(read({}).managementUrl, undefined);
    assert.throws(
      () => read({ AMQP_MANAGEMENT_URL: 'h:15672' }),
      (err: unknown) => err instanceof ConfigError && /AMQP_MANAGEMENT_URL: expected an http:\/\/ or https:\/\/ URL/.test(err.message),
    );
  }
});

test('no config error prints the value it refused (a password, a token)', () => {
  const secret = 'Sup3rS3cretVa1ue';
  const bad: Array<[string, string]> = [
    ['DATABASE_URL', `mysql://warren:${secret}@db:3306/x`],
    ['ADMIN_TOKEN', secret.slice(0, 12)],
    ['AMQP_URL', `http://guest:${secret}@h:5672`],
    ['AMQP_MANAGEMENT_URL', `ftp://guest:${secret}@h`],
    ['API_BODY_LIMIT', secret],
  ];
  for (const read of [readApiConfig, readWorkerConfig]) {
    for (const [variable, value] of bad) {
      if (read === readWorkerConfig && (variable === 'DATABASE_URL' || variable === 'ADMIN_TOKEN' || variable === 'API_BODY_LIMIT')) continue;
      try {
        read({ [variable]: value });
        assert.unreachable(`${variable} was accepted`);
      } catch (err) {
        assert.instance(err, ConfigError);
        const shown = `${String(err)} ${(err as Error).stack ?? ''} ${JSON.stringify(err)}`;
        assert.ok(shown.includes(variable), `the error names ${variable}: ${String(err)}`);
        assert.not.ok(shown.includes(secret.slice(0, 12)), `the error for ${variable} prints its value: ${String(err)}`);
      }
    }
  }
});

test('store retention: defaults, durations, 0 to turn off, errors naming the variable and the range', () => {
  const read = (env: Record<string, string>) => retentionOf(readEnv(retentionVars(), env));
  assert.equal(read({}), { requestsMs: 7 * 86_400_000, idempotencyKeysMs: 86_400_000, sweepIntervalMs: 600_000 });
  assert.equal(read({}), { ...DEFAULT_RETENTION });
  assert.equal(read({ REQUEST_RETENTION: '30d', IDEMPOTENCY_KEY_TTL: '48h', STORE_SWEEP_INTERVAL: '30s' }), {
    requestsMs: 30 * 86_400_000,
    idempotencyKeysMs: 48 * 3_600_000,
    sweepIntervalMs: 30_000,
  });
  assert.equal(read({ REQUEST_RETENTION: '0', STORE_SWEEP_INTERVAL: '0' }), { requestsMs: 0, idempotencyKeysMs: 86_400_000, sweepIntervalMs: 0 });
  for (const [variable, value, expected] of [
    ['REQUEST_RETENTION', '5s', /REQUEST_RETENTION: expected a duration such as 30s, 10m, 24h or 7d, from 1m to 3650d, or 0 to turn it off/],
    ['IDEMPOTENCY_KEY_TTL', '0', /IDEMPOTENCY_KEY_TTL: expected a duration .* from 1m to 365d$/],
    ['STORE_SWEEP_INTERVAL', 'often', /STORE_SWEEP_INTERVAL: expected a duration/],
  ] as const) {
    assert.throws(
      () => read({ [variable]: value }),
      (err: unknown) => err instanceof ConfigError && expected.test(err.message),
      `${variable}=${value}`,
    );
  }
});

test.run();
