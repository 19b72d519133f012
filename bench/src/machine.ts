// The machine a run was made on (for every bench runner's result header).

import { cpus, loadavg } from 'node:os';
import type { Results } from './report.js';
import { run } from './procs.js';

export async function machineInfo(root: string, pgbin = '/usr/lib/postgresql/15/bin'): Promise<Results['machine']> {
  const first = async (cmd: string, args: string[]): Promise<string> => {
    const r = await run(cmd, args);
    return (r.stdout || r.stderr).split('\n')[0]?.trim() ?? '';
  };
  const sha = (await run('git', ['-C', root, 'rev-parse', '--short', 'HEAD'])).stdout.trim();
  const dirty = (await run('git', ['-C', root, 'status', '--porcelain'])).stdout.trim() !== '';
  return {
    nproc: Number((await first('nproc', [])) || cpus().length),
    cpu: cpus()[0]?.model ?? '?',
    haproxy: await first('haproxy', ['-v']),
    node: process.version,
    postgres: await first(`${pgbin}/postgres`, ['--version']),
    kernel: await first('uname', ['-r']),
    loadavgAtStart: loadavg().map((x) => Number(x.toFixed(2))),
    gitSha: sha === '' ? null : sha,
    gitDirty: dirty,
  };
}

/** Header lines for a result: when, which tree, which machine (and, with `withPostgres`, which PostgreSQL). */
export function machineHeader(m: Results['machine'], started: string, mode: string, finished?: string, withPostgres = false): string[] {
  return [
    `run: ${started} (${mode})${finished ? `, finished ${finished}` : ''}`,
    `git: ${m.gitSha ?? 'no commit'}${m.gitDirty ? ' (uncommitted changes)' : ''}`,
    `machine: nproc ${m.nproc}, ${m.cpu}, kernel ${m.kernel}, load average at start ${m.loadavgAtStart.join(' ')}`,
    `software: ${m.haproxy}; node ${m.node}${withPostgres ? `; ${m.postgres}` : ''}`,
  ];
}
