// `pgroute plan` for a human: the tenant changes as a table, then how they would be applied
// (route table only, runtime API commands, or a reload and why), HAProxy's judgement of the
// configuration (haproxy -c: warnings, or why it would reject it), then the refused definitions. Pure.

import { renderTable } from '../status/table.js';
import type { ChangeAction } from './changes.js';
import type { PlanCheck } from './check.js';
import type { ChangePreview } from './preview.js';

const SIGN: Readonly<Record<ChangeAction, string>> = {
  add: '+',
  remove: '-',
  enable: '~',
  disable: '~',
  move: '~',
  'add-target': '~',
  'remove-target': '~',
  limit: '~',
  reconfigure: '~',
};

function how(p: ChangePreview): string {
  switch (p.kind) {
    case 'unchanged':
      return 'No changes: the running HAProxy and agent already serve this.';
    case 'initial':
      return `Nothing is applied on this state dir yet: a first start would render ${p.tenants.desired} tenant(s).`;
    case 'agent':
      return "Applied by the agent's route table alone: no HAProxy command, no reload.";
    case 'runtime':
      return `Applied through HAProxy's runtime API, without a reload (${p.commands.length} command(s)):\n${p.commands.map((c) => `  ${c}`).join('\n')}`;
    case 'reload':
      return `Applied by a graceful reload of HAProxy, because:\n${p.reloadReasons.map((r) => `  - ${r}`).join('\n')}`;
  }
}

const indent = (text: string): string => text.split('\n').map((l) => `  ${l.trim()}`).join('\n');

function checkWords(c: PlanCheck): string {
  const warnings = c.warnings.length > 0 ? `, with warnings:\n${indent(c.warnings.join('\n'))}` : '.';
  switch (c.result) {
    case 'passed':
      return `HAProxy accepts the configuration this would write (haproxy -c)${warnings}`;
    case 'rejected':
      return `HAProxy would REJECT the configuration this would write (haproxy -c): applying it would fail and the running configuration would stay:\n${indent(c.reason ?? '')}`;
    case 'not-checked':
      return `Not checked by HAProxy: ${c.reason ?? 'no reason given'}.`;
  }
}

/** The plan for a human; `check`: HAProxy's judgement of the configuration (absent: --no-check). */
export function previewText(p: ChangePreview, check?: PlanCheck): string {
  const parts: string[] = [];
  if (p.changes.length > 0) {
    const rows = p.changes.map((c) => [SIGN[c.action], c.tenant, c.action, c.target ?? '', [c.before, c.after].filter((x) => x !== undefined).join(' -> ')]);
    parts.push(renderTable(['', 'TENANT', 'CHANGE', 'TARGET', 'DETAIL'], rows).trimEnd());
  }
  parts.push(how(p));
  if (check !== undefined) parts.push(checkWords(check));
  for (const n of p.notes) parts.push(`Note: ${n}.`);
  if (p.refused.length > 0) {
    parts.push(`Refused (never applied; --strict makes this exit 3):\n${p.refused.map((r) => `  ${r.id === undefined ? '' : `${r.id}  `}${r.where}: ${r.reason}`).join('\n')}`);
  }
  const versions = p.appliedVersion === undefined ? `route table ${p.desiredVersion}` : `route table ${p.appliedVersion} -> ${p.desiredVersion}`;
  parts.push(`${p.tenants.applied} tenant(s) applied, ${p.tenants.desired} wanted; ${versions}.`);
  return `${parts.join('\n\n')}\n`;
}
