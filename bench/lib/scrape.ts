/**
 * The API's Prometheus text at `base`/metrics: every family, or only those in `names` (`?name=`,
 * a fraction of a full scrape's cost to the API, for polling while a run is timed).
 */
export async function scrapeMetrics(base: string, names?: readonly string[]): Promise<string> {
  const query = names ? `?${names.map((n) => `name=${encodeURIComponent(n)}`).join('&')}` : '';
  const res = await fetch(`${base}/metrics${query}`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET ${base}/metrics answered ${res.status}`);
  return res.text();
}

/** Polls `check` every `everyMs` until it holds; throws, naming `what`, after `ms`. */
export async function waitFor(check: () => Promise<boolean>, ms: number, what: string, everyMs = 200): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}
