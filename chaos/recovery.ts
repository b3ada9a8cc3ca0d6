import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiClient } from './api-client.ts';
import { expectDone, type Ledger } from './ledger.ts';

export interface RecoveryProbeOptions {
  client: ApiClient;
  ledger: Ledger;
  /** Probe keys are `<prefix>-probe-<n>`. */
  prefix: string;
  /** Stops probing (recovery null) when aborted. */
  signal: AbortSignal;
  /** A new probe is submitted when none of the earlier ones is done after this long. */
  resubmitMs?: number;
}

let probeSeq = 0;

/**
 * Measures recovery from `since`: submits a fresh probe request (retrying until accepted) and
 * waits until it, or a later probe, ends done. A request submitted after the fault proves the
 * whole path works again (API, broker, worker, result consumer, store); if a backlog is ahead of
 * it, recovery includes working that off. Every accepted probe is in the ledger, so the probes
 * must end done like the load.
 */
export async function measureRecovery(o: RecoveryProbeOptions, since: number): Promise<number | null> {
  const outstanding: string[] = [];
  let lastSubmit = 0;
  while (!o.signal.aborted) {
    if (outstanding.length === 0 || Date.now() - lastSubmit >= (o.resubmitMs ?? 15_000)) {
      const id = await submitProbe(o);
      if (id === undefined) {
        await sleep(250);
        continue;
      }
      outstanding.push(id);
      lastSubmit = Date.now();
    }
    for (const id of outstanding) {
      const obs = await o.client.observe(id);
      if (obs.kind === 'record' && obs.status === 'done') return (Date.now() - since) / 1000;
    }
    await sleep(200);
  }
  return null;
}

/**
 * Submits one probe, retrying the same key (so the same Idempotency-Key) for up to 30 s as a client
 * would: a probe dropped after one 503 could still be processed (a publish that timed out but
 * reached the queue), and would then show as an outcome nobody was promised. Resolves with the
 * requestId once accepted, undefined when given up (recorded as abandoned).
 */
async function submitProbe(o: RecoveryProbeOptions): Promise<string | undefined> {
  probeSeq += 1;
  const key = `${o.prefix}-probe-${probeSeq}`;
  o.ledger.add(key, 'probe', expectDone(key));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const out = await o.client.post(key, key);
    if (out.kind === 'accepted') {
      o.ledger.accept(key, out.requestId);
      return out.requestId;
    }
    if (out.kind === 'retry') {
      o.ledger.reject(key);
      if (out.requestId !== undefined) o.ledger.noteUnknown(out.requestId);
      if (out.indeterminate) o.ledger.markIndeterminate(key);
    }
    if (out.kind === 'refused' || Date.now() > deadline || o.signal.aborted) {
      o.ledger.abandon(key, out.why);
      return undefined;
    }
    await sleep(250);
  }
}
