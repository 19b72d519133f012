// Entrypoint of the pgroute container in compose/docker-compose.yml. Docker's socket belongs to a
// group whose number differs from host to host; rather than asking for it (DOCKER_GID), the
// container starts as root, joins the group that owns the socket, drops to PGROUTE_RUN_AS
// (uid:gid, default 99:99: HAProxy's user, so both share the sockets of the state volume) and only
// then loads pgroute. Started as any other user, it runs pgroute as that user.
import { statSync } from 'node:fs';

if (process.getuid?.() === 0) {
  const spec = process.env.PGROUTE_RUN_AS ?? '99:99';
  const m = /^(\d+):(\d+)$/.exec(spec);
  if (m === null) {
    console.error(`pgroute: PGROUTE_RUN_AS must be uid:gid such as 99:99, got ${JSON.stringify(spec)}`);
    process.exit(2);
  }
  const socket = process.env.DOCKER_SOCKET ?? '/var/run/docker.sock';
  const groups = [];
  try {
    groups.push(statSync(socket).gid);
  } catch {
    // no socket mounted: pgroute will say so when it needs it
  }
  process.setgroups(groups);
  process.setgid(Number(m[2]));
  process.setuid(Number(m[1]));
}
await import('/opt/pgroute/dist/cli/pgroute.js');
