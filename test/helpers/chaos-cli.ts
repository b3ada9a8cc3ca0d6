import { spawn } from 'node:child_process';

const root = new URL('../..', import.meta.url).pathname;

/**
 * Runs `node bin/warren.js chaos ...` as a user would. On timeout it sends SIGINT first, so the
 * harness stops the nodes and processes it started, then SIGKILL if it does not exit.
 */
export function runChaosCli(args: string[], timeoutMs: number): Promise<{ code: number | null; output: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/warren.js', 'chaos', ...args], {
      cwd: root,
      env: { ...process.env, FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let timedOut = false;
    const collect = (d: Buffer) => {
      output += d.toString();
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGINT');
      killTimer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      resolve({ code, output, timedOut });
    });
  });
}
