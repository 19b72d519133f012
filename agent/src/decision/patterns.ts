// The one compiler of routing patterns (routing.user.pattern, routing.sni), used both by the
// generator when it checks a tenants file and by the agent when it decides: one set of flags, so a
// pattern means the same in both. `u`: code points, not UTF-16 halves (`.` matches "😀"), \p{...},
// and strict syntax; server names also `i` (DNS names are case-insensitive).

export type RoutingPatternKind = 'user' | 'sni';

const FLAGS: Readonly<Record<RoutingPatternKind, string>> = { user: 'u', sni: 'iu' };

/** Compiles a routing pattern; throws a SyntaxError when it is not a valid expression under those flags. */
export function compileRoutingPattern(kind: RoutingPatternKind, source: string): RegExp {
  return new RegExp(source, FLAGS[kind]);
}
