// Parses the CSV answer of HAProxy's `show stat` (admin socket). Pure.
//
// The first line is the header, `# pxname,svname,qcur,...` (HAProxy 2.6 has ~140 columns, each line
// ends with a comma); then one line per frontend, server and backend. Values are plain except the
// few HAProxy quotes (csv_enc), which may contain commas and doubled quotes.

export interface StatRow {
  /** Proxy (frontend/backend) name. */
  readonly pxname: string;
  /** FRONTEND, BACKEND, or the server name. */
  readonly svname: string;
  /** HAProxy's status: UP, DOWN, MAINT, no check, UP 1/2, DOWN 1/2, NOLB, DRAIN, MAINT (via x/y), OPEN, ... */
  readonly status: string;
  /** Current sessions. */
  readonly scur: number;
  /** Sessions per second over the last second. */
  readonly rate: number;
  /** Total sessions. */
  readonly stot: number;
  /** Connections waiting in the queue (a backend's own queue, or a server's). */
  readonly qcur: number;
  /** Connections HAProxy could not hand to a server: the connect failed, or the wait in the queue ended (full, `timeout queue`). */
  readonly econ: number;
  /** Server connection limit (maxconn) and queue limit (maxqueue); undefined: none. */
  readonly slim?: number;
  readonly qlimit?: number;
  /** Seconds since the last UP/DOWN change. */
  readonly lastchg?: number;
  /** Server address (servers only), e.g. 10.0.0.5:5432. */
  readonly addr?: string;
  /** Last health check result, e.g. L4OK, L4CON (servers with a check). */
  readonly checkStatus?: string;
  /** Every column by its header name, as text. */
  readonly fields: Readonly<Record<string, string>>;
}

export type ServerRole = 'frontend' | 'backend' | 'server';

export function rowRole(row: StatRow): ServerRole {
  return row.svname === 'FRONTEND' ? 'frontend' : row.svname === 'BACKEND' ? 'backend' : 'server';
}

/** Splits one CSV line, honouring double quotes. */
export function splitCsvLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (quoted) {
      if (c === '"') {
        if (line[i + 1] === '"') {
          cur += '"';
          i++;
        } else quoted = false;
      } else cur += c;
    } else if (c === '"' && cur === '') quoted = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/** A limit or time: undefined when HAProxy leaves it empty (no limit, never changed). */
function optionalNum(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

function num(v: string | undefined): number {
  if (v === undefined || v === '') return 0;
  const n = Number(v);
  return Number.isFinite(n) ? n : 0;
}

/**
 * The rows of a `show stat` answer. Throws when the header is missing (the socket answered
 * something else, e.g. "Unknown command" or a permission error), naming what came instead.
 */
export function parseShowStat(text: string): StatRow[] {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  const headerAt = lines.findIndex((l) => l.startsWith('# pxname,'));
  if (headerAt < 0) {
    const first = lines.find((l) => l.trim() !== '') ?? '(empty answer)';
    throw new Error(`not a "show stat" answer: ${first.slice(0, 120)}`);
  }
  const header = splitCsvLine((lines[headerAt] as string).slice(2));
  const rows: StatRow[] = [];
  for (const line of lines.slice(headerAt + 1)) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const values = splitCsvLine(line);
    const fields: Record<string, string> = {};
    header.forEach((name, i) => {
      if (name !== '' && name !== '-') fields[name] = values[i] ?? '';
    });
    const row: { -readonly [K in keyof StatRow]: StatRow[K] } = {
      pxname: fields['pxname'] ?? '',
      svname: fields['svname'] ?? '',
      status: fields['status'] ?? '',
      scur: num(fields['scur']),
      rate: num(fields['rate']),
      stot: num(fields['stot']),
      qcur: num(fields['qcur']),
      econ: num(fields['econ']),
      fields,
    };
    for (const k of ['slim', 'qlimit', 'lastchg'] as const) {
      const v = optionalNum(fields[k]);
      if (v !== undefined) row[k] = v;
    }
    if (fields['addr']) row.addr = fields['addr'];
    if (fields['check_status']) row.checkStatus = fields['check_status'];
    rows.push(row);
  }
  return rows;
}

export interface ProxyStats {
  /** The BACKEND line, when HAProxy has this backend. */
  readonly backend?: StatRow;
  /** Its servers, in HAProxy's order. */
  readonly servers: readonly StatRow[];
}

/** Rows grouped by backend name (frontends left out). */
export function statsByBackend(rows: readonly StatRow[]): Map<string, ProxyStats> {
  const out = new Map<string, { backend?: StatRow; servers: StatRow[] }>();
  for (const r of rows) {
    const role = rowRole(r);
    if (role === 'frontend') continue;
    let p = out.get(r.pxname);
    if (p === undefined) out.set(r.pxname, (p = { servers: [] }));
    if (role === 'backend') p.backend = r;
    else p.servers.push(r);
  }
  return out;
}
