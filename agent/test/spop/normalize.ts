// Test helper: canonical form of decoded values for deep comparison (IPv6 text has many spellings).
import type { Frame, TypedValue } from '../../src/spop/index.js';

export function canonicalIPv6(text: string): string {
  return new URL(`http://[${text}]/`).hostname;
}

export function normValue(v: TypedValue): unknown {
  if (v.type === 'ipv6') return { type: 'ipv6', value: canonicalIPv6(v.value) };
  if (v.type === 'binary') return { type: 'binary', value: Buffer.from(v.value).toString('hex') };
  return v;
}

export function normFrame(f: Frame): unknown {
  switch (f.type) {
    case 'notify':
      return { ...f, messages: f.messages.map((m) => ({ name: m.name, args: m.args.map((a) => ({ name: a.name, value: normValue(a.value) })) })) };
    case 'ack':
      return {
        ...f,
        flags: f.flags ?? 1,
        actions: f.actions.map((a) => (a.type === 'set-var' ? { ...a, value: normValue(a.value) } : a)),
      };
    default:
      return f;
  }
}
