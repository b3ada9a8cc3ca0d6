import { type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger };

/**
 * One root logger per process. JSON by default; pretty when asked (the CLI asks on a terminal
 * unless LOG_PRETTY=0) and pino-pretty is installed. Credentials are redacted wherever they appear
 * as fields. Reads no environment: the CLI decides.
 */
export function createLogger(options: { name: string; level?: string; pretty?: boolean /** 1 = stdout (default), 2 = stderr */; destination?: 1 | 2 }): Logger {
  const opts: LoggerOptions = {
    name: options.name,
    level: options.level ?? 'info',
    redact: {
      paths: ['password', '*.password', 'url', '*.url', 'authorization', '*.authorization', 'headers.authorization'],
      censor: '[redacted]',
    },
    serializers: { err: pino.stdSerializers.err },
  };
  const fd = options.destination ?? 1;
  const pretty = options.pretty ?? false;
  if (pretty && canResolve('pino-pretty')) {
    return pino({ ...opts, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', destination: fd } } });
  }
  // The CLI's stderr lines are written at once. Services log to stdout without blocking: lines
  // are written in the background, and those that pile up meanwhile go out in one write (a
  // write syscall per line was a cost on every request under load). pino writes what is left
  // when the process exits; a SIGKILL loses at most the lines not yet written.
  return pino(opts, pino.destination({ fd, sync: fd === 2 }));
}

function canResolve(mod: string): boolean {
  try {
    import.meta.resolve(mod);
    return true;
  } catch {
    return false;
  }
}

/** Masks the password in an AMQP or HTTP URL, for log lines and messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '[unparseable url]';
  }
}
