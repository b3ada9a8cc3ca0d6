/**
 * The small set of error classes Warren classifies on. Each has a stable `code` that tests,
 * dead-letter headers and scripts can rely on; the message is for humans and is never branched on.
 */
export class WarrenError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A failure worth trying again later (the default for anything unknown). */
export class RetryableError extends WarrenError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'RETRYABLE', message, options);
  }
}

/**
 * Marks a PermanentError across copies of the package: a handler may throw the class of another
 * copy than the worker's (an app that depends on Warren by `file:..` while the CLI runs the
 * sources, or two installed versions), and instanceof would then call it retryable.
 */
const PERMANENT = Symbol.for('warren.permanent');

/** A failure that retrying cannot fix: the message goes straight to dead-letter. */
export class PermanentError extends WarrenError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'PERMANENT', message, options);
    Object.defineProperty(this, PERMANENT, { value: true });
  }
}

/** A bad environment variable or option; `variable` names it. */
export class ConfigError extends WarrenError {
  readonly variable: string;

  constructor(variable: string, message: string) {
    super('CONFIG', `${variable}: ${message}`);
    this.variable = variable;
  }
}

/** A topology file that cannot be used: names the file, the key path and what was expected. */
export class TopologyError extends WarrenError {
  readonly problems: readonly TopologyProblem[];

  constructor(problems: readonly TopologyProblem[]) {
    super('TOPOLOGY', problems.map(formatTopologyProblem).join('\n'));
    this.problems = problems;
  }
}

export interface TopologyProblem {
  file: string;
  path: string;
  message: string;
}

export function formatTopologyProblem(p: TopologyProblem): string {
  return `${p.file}: ${p.path || '(root)'}: ${p.message}`;
}

/** The broker nacked a publish, or did not confirm it in time, or the channel closed first. */
export class PublishNotConfirmedError extends WarrenError {
  readonly reason: 'nack' | 'timeout' | 'closed' | 'blocked' | 'window-full' | 'unroutable';

  constructor(reason: PublishNotConfirmedError['reason'], message: string, options?: { cause?: unknown }) {
    super('PUBLISH_NOT_CONFIRMED', message, options);
    this.reason = reason;
  }
}

/** A timeout of our own (handler deadline, operation deadline); retryable. */
export class TimeoutError extends WarrenError {
  constructor(message: string) {
    super('TIMEOUT', message);
  }
}

/** Whether an error should be retried. Unknown errors count as retryable. */
export function isPermanent(err: unknown): boolean {
  return err instanceof PermanentError || (typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[PERMANENT] === true);
}

/** A short, stable code for any thrown value. */
export function errorCode(err: unknown): string {
  if (err instanceof WarrenError) return err.code;
  const code = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
  if (typeof code === 'string' || typeof code === 'number') return String(code);
  if (err instanceof Error) return err.name || 'Error';
  return 'UNKNOWN';
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
