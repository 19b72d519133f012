// The handlebars templates of haproxy.cfg and spoe.conf: read once at the edge (loadTemplates),
// compiled on a private Handlebars instance so that nothing is registered globally.

import { readdirSync, readFileSync } from 'node:fs';
import Handlebars from 'handlebars';
import { assetPath } from '../assets.js';

export type Template = (context: object) => string;

export interface ConfigTemplates {
  readonly haproxyConfig: Template;
  readonly spoeConfig: Template;
}

/** The template texts: the two files and the partials they include by name. */
export interface TemplateSources {
  readonly haproxyConfig: string;
  readonly spoeConfig: string;
  readonly partials: Readonly<Record<string, string>>;
}

/** Compiles the texts. Pure: no files, no global Handlebars state. */
export function compileTemplates(sources: TemplateSources): ConfigTemplates {
  const hbs = Handlebars.create();
  for (const [name, text] of Object.entries(sources.partials)) hbs.registerPartial(name, text);
  // noEscape: this is not HTML; values are validated before they get here.
  const compile = (text: string): Template => hbs.compile(text, { noEscape: true, strict: true });
  return { haproxyConfig: compile(sources.haproxyConfig), spoeConfig: compile(sources.spoeConfig) };
}

/**
 * Reads pgroute's shipped templates (haproxy/*.hbs) and compiles them; every file of
 * haproxy/partials/ is a partial included by its name (`{{> peers}}` is partials/peers.hbs).
 */
export function loadTemplates(): ConfigTemplates {
  const read = (...parts: string[]): string => readFileSync(assetPath('haproxy', ...parts), 'utf8');
  return compileTemplates({
    haproxyConfig: read('haproxy.cfg.hbs'),
    spoeConfig: read('spoe.conf.hbs'),
    partials: Object.fromEntries(
      readdirSync(assetPath('haproxy', 'partials'))
        .filter((f) => f.endsWith('.hbs'))
        .map((f) => [f.slice(0, -'.hbs'.length), read('partials', f)]),
    ),
  });
}
