import { type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger };

/**
 * One root logger per process. JSON by default; pretty on a terminal when pino-pretty is
 * installed. Credentials are redacted wherever they appear as fields.
 */
export function createLogger(options: { name: string; level?: string; pretty?: boolean }): Logger {
  const opts: LoggerOptions = {
    name: options.name,
    level: options.level ?? 'info',
    redact: {
      paths: ['password', '*.password', 'url', '*.url', 'authorization', '*.authorization', 'headers.authorization'],
      censor: '[redacted]',
    },
    serializers: { err: pino.stdSerializers.err },
  };
  const pretty = options.pretty ?? (process.stdout.isTTY === true && process.env.LOG_PRETTY !== '0');
  if (pretty && canResolve('pino-pretty')) {
    return pino({ ...opts, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l' } } });
  }
  return pino(opts);
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
