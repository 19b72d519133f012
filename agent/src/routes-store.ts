// Holds the route table the agent decides with. Replaced whole (never edited in place), so a
// decision always sees one consistent snapshot.

import { readFile } from 'node:fs/promises';
import type { RouteTable } from './decision/types.js';
import { routeTableDocumentProblem, toRouteTable, type RouteTableDocument } from './contract.js';

export class RouteStore {
  #table: RouteTable;
  readonly #listeners: (() => void)[] = [];

  constructor(initial: RouteTable) {
    this.#table = initial;
  }

  get table(): RouteTable {
    return this.#table;
  }

  replace(table: RouteTable): void {
    this.#table = table;
    for (const l of this.#listeners) l();
  }

  /** Called after every replace() (the hold queue releases what the new table lets go). */
  onReplace(listener: () => void): void {
    this.#listeners.push(listener);
  }
}

export const EMPTY_ROUTE_TABLE: RouteTable = {
  version: 'empty',
  policy: { keys: ['database'], targetByPort: {}, defaultTarget: 'primary', revealDisabled: false },
  tenants: new Map(),
};

/** Reads and checks routes.json. Throws an Error naming the file and the problem. */
export async function loadRouteTable(path: string): Promise<RouteTable> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new Error(`cannot load route table ${path}: ${(err as Error).message}`);
  }
  const problem = routeTableDocumentProblem(parsed);
  if (problem) throw new Error(`route table ${path} is unusable: ${problem}`);
  return toRouteTable(parsed as RouteTableDocument);
}
