// Prints the build arguments HAPROXY_BASE=... and NODE_BASE=... of the local stand-ins for
// haproxy:2.6 and node:20-bookworm-slim (made from this host's HAProxy and Node by
// test/support/images.ts, the way the compose test gets them), for machines that reach no
// registry. Used by scripts/build-images.sh --local-bases; run with `npx vite-node`.
import { ensureBaseImages } from '../test/support/images.js';

const bases = await ensureBaseImages();
process.stdout.write(`HAPROXY_BASE=${bases.HAPROXY_BASE}\nNODE_BASE=${bases.NODE_BASE}\n`);
