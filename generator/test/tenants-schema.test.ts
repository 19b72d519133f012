// The published JSON Schema of the tenants file (schema/tenants.schema.json, for editors through
// yaml-language-server) is generated from the schema the file source validates with
// (generator/src/tenants-schema.ts): regenerated here and compared, and read by a standard JSON
// Schema validator (ajv) that accepts the README's example and refuses what pgroute refuses.
// After changing the schema: PGROUTE_WRITE_SCHEMA=1 npx vitest run --project unit generator/test/tenants-schema.test.ts

import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { parseTenantsFile } from '../src/sources/file.js';
import { tenantsJsonSchema, TENANT_KEYS, TOP_KEYS } from '../src/tenants-schema.js';
import { FALLBACK, ORIGIN } from './support.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const PUBLISHED = join(ROOT, 'schema', 'tenants.schema.json');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const generated = `${JSON.stringify(tenantsJsonSchema(), null, 2)}\n`;
if (process.env.PGROUTE_WRITE_SCHEMA === '1') writeFileSync(PUBLISHED, generated);

/** The README's example tenants file (the yaml block under "## Tenants file"). */
function readmeExample(): string {
  const section = README.slice(README.indexOf('## Tenants file'));
  const m = /```yaml\n([\s\S]*?)```/.exec(section);
  if (m === null) throw new Error('no yaml block under "## Tenants file" in README.md');
  return m[1] as string;
}

const validate = new Ajv2020({ strict: false, allErrors: true }).compile(JSON.parse(readFileSync(PUBLISHED, 'utf8')) as object);
const valid = (text: string): boolean => validate(yaml.load(text) ?? {}) === true;

describe('schema/tenants.schema.json', () => {
  it('is what the code generates (regenerate with PGROUTE_WRITE_SCHEMA=1 when the schema changes)', () => {
    expect(readFileSync(PUBLISHED, 'utf8')).toBe(generated);
  });

  it('names every section and tenant field the code knows, and no other', () => {
    const schema = JSON.parse(generated) as { properties: Record<string, { items?: { properties: Record<string, unknown> } }>; additionalProperties: boolean };
    expect(Object.keys(schema.properties)).toEqual([...TOP_KEYS]);
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties.tenants?.items?.properties ?? {})).toEqual([...TENANT_KEYS]);
  });

  it("a JSON Schema validator accepts the README's example, which pgroute also accepts", () => {
    const example = readmeExample();
    expect(valid(example), JSON.stringify(validate.errors)).toBe(true);
    const f = parseTenantsFile(example, ORIGIN, FALLBACK, () => undefined);
    expect(f.snapshot.refused).toEqual([]);
    expect(f.snapshot.tenants.map((t) => t.id)).toEqual(['acme', 'globex']);
  });

  it.each([
    ['an unknown top-level field', 'tenant: []\n'],
    ['an unknown tenant field', 'tenants:\n  - { id: acme, host: db, port: 5432, hots: x }\n'],
    ['a bad tenant id', 'tenants:\n  - { id: Acme, host: db, port: 5432 }\n'],
    ['a port out of range', 'tenants:\n  - { id: acme, host: db, port: 70000 }\n'],
    ['a port as a string', 'tenants:\n  - { id: acme, host: db, port: "5432" }\n'],
    ['an unknown check kind', 'tenants:\n  - { id: acme, host: db, port: 5432, check: http }\n'],
    ['a bad target name', 'tenants:\n  - { id: acme, host: db, port: 5432, targets: { Pool: { host: db, port: 6432 } } }\n'],
    ['maxconn 0', 'tenants:\n  - { id: acme, host: db, port: 5432, maxconn: 0 }\n'],
    ['an empty listeners list', 'listeners: []\n'],
    ['an unknown routing key source', 'routing: { keys: [host] }\n'],
    ['tls.verify maybe', 'tenants:\n  - { id: acme, host: db, port: 5432, tls: { verify: maybe } }\n'],
  ])('editors flag what pgroute refuses: %s', (_name, text) => {
    expect(valid(text)).toBe(false);
    let refusedByPgroute: boolean;
    try {
      refusedByPgroute = parseTenantsFile(text, ORIGIN, FALLBACK, () => undefined).snapshot.refused.length > 0;
    } catch {
      refusedByPgroute = true; // a file-level ConfigError
    }
    expect(refusedByPgroute).toBe(true);
  });

  it('the README tells editors where it is', () => {
    expect(README).toContain('# yaml-language-server: $schema=');
    expect(README).toContain('schema/tenants.schema.json');
  });
});
