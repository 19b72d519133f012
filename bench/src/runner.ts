// What every bench runner (main.ts, tls-main.ts, generator-main.ts) does around its measurements:
// the scratch directories run.sh made, the log line, the result files, signals and failure.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Results } from './report.js';
import { killRunning, type Procs } from './procs.js';

/** BENCH_RUN_DIR and BENCH_BIN_DIR from run.sh; exits with a hint (`bench/run.sh <how>`) when unset. */
export function runDirs(how: string): { runDir: string; binDir: string } {
  const runDir = process.env.BENCH_RUN_DIR ?? '';
  const binDir = process.env.BENCH_BIN_DIR ?? '';
  if (runDir === '' || binDir === '') {
    process.stderr.write(`run me through ${how} (BENCH_RUN_DIR and BENCH_BIN_DIR are not set)\n`);
    process.exit(2);
  }
  return { runDir, binDir };
}

/** A log line to stderr: `[<tag> HH:MM:SS] msg`. */
export function logger(tag: string): (msg: string) => void {
  return (msg: string): void => void process.stderr.write(`[${tag} ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** `YYYY-MM-DD-HHMM` of the start, the first part of a result file's name. */
export function resultStamp(started: Date): string {
  return started.toISOString().slice(0, 16).replace('T', '-').replace(':', '');
}

/** The tree in a result file's name: the commit when the tree is clean, else `wip`. */
export function treeName(m: Results['machine']): string {
  return m.gitSha !== null && !m.gitDirty ? m.gitSha : 'wip';
}

/** `first`, or `first-2`, `first-3`, ... : two runs in the same minute must not overwrite each other's results. */
export function freeBase(first: string): string {
  let base = first;
  for (let n = 2; existsSync(`${base}.md`) || existsSync(`${base}.json`); n++) base = `${first}-${n}`;
  return base;
}

/** Writes <base>.json and <base>.md, prints the text report and where the files went. */
export function writeResults(base: string, results: unknown, markdown: string, text: string): void {
  mkdirSync(dirname(base), { recursive: true });
  writeFileSync(`${base}.json`, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(`${base}.md`, markdown);
  process.stdout.write(text);
  process.stdout.write(`\nwritten: ${base}.md\n         ${base}.json\n`);
}

/**
 * Runs `main`; on SIGINT/SIGTERM or failure stops what the runner started (`stop`) and exits
 * (130, or 1); on any exit kills what is still running.
 */
export function runMain(main: () => Promise<void>, procs: Procs, log: (msg: string) => void, stop: () => Promise<unknown>): void {
  let stopping = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (stopping) return;
      stopping = true;
      log(`${sig}: stopping everything`);
      killRunning();
      void stop().then(() => process.exit(130));
    });
  }
  process.on('exit', () => {
    killRunning();
    procs.killAllNow();
  });

  main().catch(async (err: unknown) => {
    log(`FAILED: ${(err as Error).stack ?? String(err)}`);
    await stop();
    process.exit(1);
  });
}
