import { BROKER_DEATH_HEADERS, type DeadReason, errorCode, errorMessage, HEADERS, stringHeader } from '../core/index.ts';

/**
 * Headers of retry copies and dead letters (the wire contract is core/message.ts). Pure: the
 * caller passes the clock. Everything is bounded, because AMQP header tables are limited
 * (amqplib refuses a table over 64 KiB) and a dead letter must always be publishable.
 */

export type Headers = Record<string, unknown>;

export const LIMITS = Object.freeze({ message: 500, stack: 2000, historyEntries: 10, historyMessage: 200 });

export interface FailureInfo {
  code: string;
  message: string;
  stack: string | undefined;
  at: Date;
}

export interface HistoryEntry {
  at: string;
  attempt: number;
  code: string;
  message: string;
}

/**
 * Headers the broker writes about a copy's own path (dead-lettering, quorum delivery count).
 * They are dropped from the copies the worker publishes: they describe the old copy, and a stale
 * x-delivery-count on a new message would only mislead whoever reads it.
 */
const BROKER_OWNED = new Set(BROKER_DEATH_HEADERS);

export function describeFailure(err: unknown, at: Date): FailureInfo {
  const stack = err instanceof Error && typeof err.stack === 'string' ? truncate(err.stack, LIMITS.stack) : undefined;
  return { code: truncate(errorCode(err), 100), message: truncate(errorMessage(err), LIMITS.message), stack, at };
}

/** The original headers minus the broker-owned ones (traceparent and the rest travel on). */
export function carriedHeaders(headers: Headers | undefined): Headers {
  const out: Headers = {};
  for (const [k, v] of Object.entries(headers ?? {})) if (!BROKER_OWNED.has(k)) out[k] = v;
  return out;
}

/** The history header as parsed entries; an unreadable one starts afresh rather than failing. */
export function readHistory(headers: Headers | undefined): HistoryEntry[] {
  const raw = stringHeader(headers, HEADERS.history);
  if (!raw) return [];
  try {
    const parsed: unknown = JSON.parse(raw);
    return Array.isArray(parsed) ? parsed.filter(isHistoryEntry) : [];
  } catch {
    return [];
  }
}

/** Appends one failure and keeps the most recent `LIMITS.historyEntries`. */
export function appendHistory(headers: Headers | undefined, attempt: number, failure: FailureInfo): HistoryEntry[] {
  const entry: HistoryEntry = { at: failure.at.toISOString(), attempt, code: failure.code, message: truncate(failure.message, LIMITS.historyMessage) };
  return [...readHistory(headers), entry].slice(-LIMITS.historyEntries);
}

export interface RetryHeaderInput {
  /** Attempts made and failed so far, this one included. */
  failures: number;
  failure: FailureInfo;
  originQueue: string;
}

/** Headers of the copy sent to a retry tier: the attempt count travels with the message. */
export function buildRetryHeaders(original: Headers | undefined, input: RetryHeaderInput): Headers {
  return {
    ...carriedHeaders(original),
    ...failureHeaders(original, input.failures, input.failure, input.originQueue),
  };
}

export interface DeadLetterHeaderInput {
  reason: DeadReason;
  /** Attempts made in all, this one included. */
  attempts: number;
  failure: FailureInfo;
  originQueue: string;
  deadAt: Date;
}

/** Headers of a dead letter: why (reason, error), how often, when, and from where. */
export function buildDeadLetterHeaders(original: Headers | undefined, input: DeadLetterHeaderInput): Headers {
  const headers: Headers = {
    ...carriedHeaders(original),
    ...failureHeaders(original, input.attempts, input.failure, input.originQueue),
    [HEADERS.reason]: input.reason,
    [HEADERS.attempts]: input.attempts,
    [HEADERS.deadAt]: input.deadAt.toISOString(),
  };
  if (input.failure.stack) headers[HEADERS.errorStack] = input.failure.stack;
  return headers;
}

function failureHeaders(original: Headers | undefined, failures: number, failure: FailureInfo, originQueue: string): Headers {
  return {
    [HEADERS.attempt]: failures,
    [HEADERS.firstFailure]: stringHeader(original, HEADERS.firstFailure) ?? failure.at.toISOString(),
    [HEADERS.lastFailure]: failure.at.toISOString(),
    [HEADERS.errorCode]: failure.code,
    [HEADERS.errorMessage]: failure.message,
    [HEADERS.originQueue]: originQueue,
    [HEADERS.history]: JSON.stringify(appendHistory(original, failures, failure)),
  };
}

export function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, Math.max(0, max - 1))}…`;
}

function isHistoryEntry(v: unknown): v is HistoryEntry {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o.at === 'string' && typeof o.attempt === 'number' && typeof o.code === 'string' && typeof o.message === 'string';
}
