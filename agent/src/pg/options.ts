// Reads the settings inside the `options` startup parameter (what libpq sends for PGOPTIONS or
// `options=...`), the way the PostgreSQL backend itself reads them:
//
// 1. pg_split_opts (src/backend/utils/init/postinit.c) splits the string into words: ASCII
//    whitespace separates words; a backslash makes the next character literal (so `\ ` is a
//    space inside a word and `\\` a backslash); a lone trailing backslash vanishes.
// 2. process_postgres_switches (src/backend/tcop/postgres.c) reads the words getopt-style.
//    `-c name=value`, `-cname=value` and `--name=value` set a run-time parameter; the text after
//    `-c`/`--` goes through ParseLongOption (src/backend/utils/misc/guc.c): split at the first
//    `=`, and every `-` in the name becomes `_`. No `=` is an error ("-c x requires a value").
// 3. Parameter names are case-insensitive (guc_name_compare folds ASCII A-Z), so names here are
//    lower-cased the same way. A setting given twice is applied twice: the last one wins.
//
// Malformations come back as values (StartupOptionProblem), never as exceptions.

/** pgroute's own setting inside `options`: `-c pgroute.tenant=<id>`. */
export const TENANT_OPTION = 'pgroute.tenant';

const BACKSLASH = '\\';
const SET_SWITCH = '-c';
const LONG_SWITCH_PREFIX = '--';
const SWITCH_PREFIX = '-';
const NAME_VALUE_SEPARATOR = '=';

export type StartupOptionProblemKind =
  /** `-c` is the last word: nothing follows it. */
  | 'missing-argument'
  /** `-c name` or `--name` without `=value`. PostgreSQL refuses the connection. */
  | 'missing-value'
  /** `-c =value`: no name before the `=`. PostgreSQL refuses the connection. */
  | 'empty-name'
  /** A switch other than -c/--, e.g. `-B 64` or `-e`: not a run-time setting, not interpreted here. */
  | 'unsupported-switch'
  /** A word that is not a switch. PostgreSQL refuses the connection. */
  | 'unexpected-argument'
  /** The same setting twice; PostgreSQL applies the last, and so do these settings. */
  | 'duplicate-setting';

export interface StartupOptionProblem {
  readonly kind: StartupOptionProblemKind;
  /** The offending word as it stood after splitting (escapes resolved). */
  readonly argument: string;
  /** A sentence a client user can act on. */
  readonly message: string;
}

export interface StartupOptions {
  /** Setting name (lower-case, `-` turned into `_`) -> value, in first-seen order; the last value wins. */
  readonly settings: Map<string, string>;
  /** Every malformation found, in order. Empty when the string is well formed. */
  readonly problems: readonly StartupOptionProblem[];
}

/** C-locale isspace: space, \t, \n, \v, \f, \r. */
function isSpace(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\v' || ch === '\f' || ch === '\r';
}

/** Splits `options` into words exactly like PostgreSQL's pg_split_opts. */
export function splitStartupOptions(options: string): string[] {
  const words: string[] = [];
  const chars = Array.from(options);
  let i = 0;
  while (i < chars.length) {
    while (i < chars.length && isSpace(chars[i] ?? '')) i++;
    if (i >= chars.length) break;
    let word = '';
    let escaped = false;
    for (; i < chars.length; i++) {
      const ch = chars[i] ?? '';
      if (isSpace(ch) && !escaped) break;
      if (!escaped && ch === BACKSLASH) {
        escaped = true;
      } else {
        escaped = false;
        word += ch;
      }
    }
    words.push(word);
  }
  return words;
}

/** ASCII-only lower-casing, as PostgreSQL's guc_name_compare does. */
function foldAsciiCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** ParseLongOption: split at the first '=', turn '-' into '_' in the name. */
function parseLongOption(text: string): { name: string; value: string | undefined } {
  const eq = text.indexOf(NAME_VALUE_SEPARATOR);
  const rawName = eq === -1 ? text : text.slice(0, eq);
  const value = eq === -1 ? undefined : text.slice(eq + 1);
  return { name: rawName.replaceAll('-', '_'), value };
}

/** The settings in `options` together with every malformation found. */
export function analyzeStartupOptions(options: string): StartupOptions {
  const settings = new Map<string, string>();
  const problems: StartupOptionProblem[] = [];
  const problem = (kind: StartupOptionProblemKind, argument: string, message: string): void => {
    problems.push({ kind, argument, message });
  };

  const words = splitStartupOptions(options);
  let endOfSwitches = false;
  for (let i = 0; i < words.length; i++) {
    const word = words[i] ?? '';

    let setting: string;
    let spelled: string;
    if (endOfSwitches || !word.startsWith(SWITCH_PREFIX) || word === SWITCH_PREFIX) {
      problem(
        'unexpected-argument',
        word,
        `options: unexpected word ${JSON.stringify(word)}; write settings as -c name=value`,
      );
      continue;
    } else if (word === LONG_SWITCH_PREFIX) {
      // getopt: a bare "--" ends the switches; any word after it is an argument.
      endOfSwitches = true;
      continue;
    } else if (word === SET_SWITCH) {
      const next = words[i + 1];
      if (next === undefined) {
        problem('missing-argument', word, 'options: -c at the end needs a name=value after it');
        continue;
      }
      i++;
      setting = next;
      spelled = `-c ${next}`;
    } else if (word.startsWith(SET_SWITCH)) {
      setting = word.slice(SET_SWITCH.length);
      spelled = word;
    } else if (word.startsWith(LONG_SWITCH_PREFIX)) {
      setting = word.slice(LONG_SWITCH_PREFIX.length);
      spelled = word;
    } else {
      problem(
        'unsupported-switch',
        word,
        `options: switch ${JSON.stringify(word)} is not a setting; only -c name=value and --name=value are read`,
      );
      continue;
    }

    const { name, value } = parseLongOption(setting);
    if (value === undefined) {
      problem('missing-value', spelled, `options: ${spelled} requires a value; write ${spelled}=<value>`);
      continue;
    }
    if (name === '') {
      problem('empty-name', spelled, `options: ${spelled} has no setting name before the =`);
      continue;
    }
    const key = foldAsciiCase(name);
    if (settings.has(key)) {
      problem('duplicate-setting', spelled, `options: ${key} is set more than once; the last value is used`);
    }
    settings.set(key, value);
  }
  return { settings, problems };
}

/** The `-c name=value` / `--name=value` settings inside `options`; malformed words are skipped. */
export function parseStartupOptions(options: string): Map<string, string> {
  return analyzeStartupOptions(options).settings;
}
