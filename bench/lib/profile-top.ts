/**
 * The top of a V8 `.cpuprofile` (what `node --cpu-prof` writes): self time per function, summed
 * over the profile's nodes, largest first. Pure: takes the parsed JSON.
 */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileRow {
  /** `name (file:line)`, the file relative to the project where it is inside it. */
  frame: string;
  selfMs: number;
  /** Share of all samples. */
  share: number;
}

export function profileTop(profile: CpuProfile, n = 25, root = ''): ProfileRow[] {
  const hits = new Map<number, number>();
  if (profile.samples && profile.samples.length > 0) for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  else for (const node of profile.nodes) hits.set(node.id, node.hitCount ?? 0);
  const total = [...hits.values()].reduce((a, b) => a + b, 0);
  const msPerSample = total > 0 ? (profile.endTime - profile.startTime) / 1000 / total : 0;
  const byFrame = new Map<string, number>();
  for (const node of profile.nodes) {
    const h = hits.get(node.id) ?? 0;
    if (h === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.replace(/^file:\/\//, '').replace(root, '');
    const frame = file ? `${functionName || '(anonymous)'} (${file}:${lineNumber + 1})` : functionName || '(anonymous)';
    byFrame.set(frame, (byFrame.get(frame) ?? 0) + h);
  }
  return [...byFrame.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([frame, h]) => ({ frame, selfMs: Math.round(h * msPerSample), share: total > 0 ? h / total : 0 }));
}
