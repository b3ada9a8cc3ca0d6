import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fingerprintOf, maskMessage } from '../../api/dead-letters/fingerprint.ts';

/**
 * Each mask of the failure fingerprint on its own, with the edges that decide a group: case,
 * word boundaries, lengths and the order the masks apply in. Two messages land in one group
 * exactly when their masked texts are equal, so a mask that drifts splits or merges groups.
 */
test('uuids are masked in either case, but not inside a longer word', () => {
  assert.is(maskMessage('ID 3F1C2B9A-1D2E-4F5A-8B9C-0D1E2F3A4B5C gone'), 'ID <uuid> gone');
  assert.is(maskMessage('id 3f1c2b9a-1d2e-4f5a-8b9c-0d1e2f3a4b5c'), 'id <uuid>');
  assert.not.match(maskMessage('x3F1C2B9A-1D2E-4F5A-8B9C-0D1E2F3A4B5C'), '<uuid>');
});

test('timestamps are one mask, with a T or a space, with or without Z', () => {
  assert.is(maskMessage('at 2024-01-02T03:04:05.678Z and 2024-01-02 03:04:05'), 'at <time> and <time>');
  assert.is(maskMessage('at 2024-01-02T03:04:05'), 'at <time>');
});

test('hex runs of 12 or more (0x optional, either case) are one mask; shorter ones are numbers', () => {
  assert.is(maskMessage('ptr 0xdeadbeefcafe hash abcdef0123456789 up DEADBEEFCAFE1'), 'ptr <hex> hash <hex> up <hex>');
  assert.is(maskMessage('short abcdef01234'), 'short abcdef<n>');
  assert.is(maskMessage('xabcdef0123456789'), 'xabcdef<n>', 'not inside a longer word');
});

test('quoted values are masked, double and single quotes alike', () => {
  assert.is(maskMessage('key "a b" missing'), 'key "<str>" missing');
  assert.is(maskMessage("key 'x y' missing"), "key '<str>' missing");
  assert.is(maskMessage('key "" missing'), 'key "<str>" missing');
});

test('addresses with or without a port, and emails, are masked whole', () => {
  assert.is(maskMessage('to 10.0.0.1:5672 or 10.0.0.2'), 'to <addr> or <addr>');
  assert.is(maskMessage('to 1.2.3.4:'), 'to <addr>:');
  assert.is(maskMessage('to 192.168.10.200:5672'), 'to <addr>');
  assert.is(maskMessage('mail to a.b+c@example.co.uk failed'), 'mail to <email> failed');
});

test('numbers, decimals included, become <n> even inside words', () => {
  assert.is(maskMessage('pi 3.14 and 42'), 'pi <n> and <n>');
  assert.is(maskMessage('abc123def v1.2'), 'abc<n>def v<n>');
});

test('whitespace is collapsed and trimmed; the pattern is cut at 300 characters', () => {
  assert.is(maskMessage('  a \n\t b  '), 'a b');
  assert.is(maskMessage('x'.repeat(400)).length, 300);
  assert.is(maskMessage('x'.repeat(300)).length, 300);
});

test('the group id is 10 hex digits of the reason and pattern, stable across releases', () => {
  // Operators pass these ids on the command line (--group): a changed id is a changed CLI.
  assert.equal(fingerprintOf('max-attempts', 'payment 1234 declined'), { id: '7b38666d0f', reason: 'max-attempts', pattern: 'payment <n> declined' });
  assert.equal(fingerprintOf('timeout', undefined), { ...fingerprintOf('timeout', ''), pattern: '' });
  assert.is.not(fingerprintOf('a', 'b c').id, fingerprintOf('a b', 'c').id, 'reason and pattern are kept apart');
});

test.run();
