// Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by area of the code.

import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileSummary {
  readonly totalMs: number;
  readonly top: ReadonlyArray<{ fn: string; where: string; selfMs: number; pct: number }>;
  readonly areas: ReadonlyArray<{ area: string; selfMs: number; pct: number }>;
}

/** Which part of the system a frame belongs to. */
export function area(cf: CallFrame): string {
  const u = cf.url;
  if (cf.functionName === '(garbage collector)') return 'GC';
  if (cf.functionName === '(idle)') return 'idle';
  if (cf.functionName === '(program)') return 'V8/native (program)';
  if (u === '' ) return 'native/builtins';
  if (u.startsWith('node:net') || u.startsWith('node:stream') || u.startsWith('node:internal/stream') || u.startsWith('node:internal/net')) return 'node streams/net';
  if (u === 'node:buffer' || u === 'node:internal/buffer') return 'node Buffer';
  if (u === 'node:internal/encoding' || u === 'node:internal/util/types') return 'node TextDecoder/encoding';
  if (u.startsWith('node:internal/modules') || u.startsWith('node:internal/bootstrap')) return 'node module loading';
  if (u.startsWith('node:')) return 'node other';
  const m = /\/(agent\/src\/[^/]+|generator\/src|cli)\//.exec(u);
  if (m?.[1] !== undefined) return m[1];
  if (u.includes('/agent/src/')) return 'agent/src';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
  if (nm?.[1] !== undefined) return `dep ${nm[1]}`;
  return 'other';
}

/**
 * `skipMs`: samples in the first skipMs of the profile (start-up, warm-up) are left out; `untilMs`:
 * so are samples after it (both in ms from the profile's start), to summarise one window of a run.
 */
export function summariseProfile(file: string, skipMs = 0, topN = 15, untilMs = Infinity): ProfileSummary {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map<number, ProfileNode>(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const samples = prof.samples ?? [];
  const deltas = prof.timeDeltas ?? [];
  let t = 0;
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i];
    const d = deltas[i];
    if (id === undefined || d === undefined) continue;
    t += d;
    if (t < skipMs * 1000 || t > untilMs * 1000) continue;
    self.set(id, (self.get(id) ?? 0) + d / 1000);
  }
  let total = 0;
  let idle = 0;
  const byFn = new Map<string, { fn: string; where: string; selfMs: number }>();
  const byArea = new Map<string, number>();
  for (const [id, ms] of self) {
    const n = byId.get(id);
    if (n === undefined) continue;
    const cf = n.callFrame;
    const a = area(cf);
    if (a === 'idle') {
      idle += ms;
      continue;
    }
    total += ms;
    const where = cf.url === '' ? '' : `${cf.url.replace(/^file:\/\/.*?\/(dist\/|node_modules\/)/, '$1')}:${cf.lineNumber + 1}`;
    const key = `${cf.functionName}|${where}`;
    const e = byFn.get(key) ?? { fn: cf.functionName || '(anonymous)', where, selfMs: 0 };
    e.selfMs += ms;
    byFn.set(key, e);
    byArea.set(a, (byArea.get(a) ?? 0) + ms);
  }
  void idle;
  const pct = (ms: number): number => Number(((100 * ms) / (total || 1)).toFixed(1));
  return {
    totalMs: Math.round(total),
    top: [...byFn.values()]
      .sort((x, y) => y.selfMs - x.selfMs)
      .slice(0, topN)
      .map((e) => ({ ...e, selfMs: Math.round(e.selfMs), pct: pct(e.selfMs) })),
    areas: [...byArea.entries()].sort((x, y) => y[1] - x[1]).map(([a, ms]) => ({ area: a, selfMs: Math.round(ms), pct: pct(ms) })),
  };
}
