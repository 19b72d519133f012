# pgroute's own image: the `pgroute` command (generator + SPOE agent) on Node 20, with an HAProxy
# binary for `haproxy -c` validation of every rendered configuration. It drives an HAProxy running
# in another container (haproxy/Dockerfile) through a shared state volume; see
# compose/docker-compose.yml.
#
#   docker build -t pgroute .                                   (HAProxy 3.2, the current LTS)
#   docker build --build-arg HAPROXY_VERSION=3.0 -t pgroute .   (or 2.6: the haproxy:<version> image)
#   docker build --build-arg NODE_BASE=<image> --build-arg HAPROXY_BASE=<image> -t pgroute .
#   (PGROUTE_VERSION=$(node -p "require('./package.json').version") for the version label)
#
# Stages: `haproxy` collects the HAProxy binary of the HAProxy image with every library it needs,
# glibc and its loader included (haproxy:3.2 is built on a newer Debian than the Node image; run
# through its own loader, it needs nothing of the Node image's glibc) -- no package manager or
# network needed; `deps` installs the production
# dependencies with `npm ci --omit=dev`; `build` compiles the TypeScript (dev dependencies too);
# the final image has neither TypeScript nor dev dependencies.
#
# NPM_CAFILE (build argument): a CA bundle inside the Node image for npm, when the registry is
# reached through a TLS-intercepting proxy (empty: npm's defaults).
ARG NODE_BASE=node:20-bookworm-slim
ARG HAPROXY_VERSION=3.2
ARG HAPROXY_BASE=haproxy:${HAPROXY_VERSION}

FROM ${HAPROXY_BASE} AS haproxy
USER root
RUN set -eu; \
    bin=$(command -v haproxy); \
    mkdir -p /out/lib /out/sbin; \
    cp "$bin" /out/sbin/haproxy; \
    ld=; for l in /lib64/ld-linux-x86-64.so.2 /lib/ld-linux-aarch64.so.1 /lib/ld-linux-armhf.so.3; do if [ -e "$l" ]; then ld=$l; break; fi; done; \
    [ -n "$ld" ] || { echo "no dynamic loader found" >&2; exit 1; }; \
    "$ld" --list "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' > /tmp/libs; \
    while read -r lib; do cp -L "$lib" /out/lib/; done < /tmp/libs; \
    cp -L "$ld" /out/lib/ld.so; \
    /out/lib/ld.so --library-path /out/lib /out/sbin/haproxy -v | head -n 1

FROM ${NODE_BASE} AS deps
ARG NPM_CAFILE=
WORKDIR /opt/pgroute
COPY package.json package-lock.json ./
RUN if [ -n "$NPM_CAFILE" ]; then export npm_config_cafile="$NPM_CAFILE"; fi; \
    npm ci --omit=dev --no-audit --no-fund --loglevel=error || { \
      echo "pgroute: npm ci refused package-lock.json (out of sync with package.json?); installing the locked versions with npm install --omit=dev" >&2; \
      npm install --omit=dev --no-audit --no-fund --loglevel=error; }; \
    npm cache clean --force --loglevel=error

FROM ${NODE_BASE} AS build
ARG NPM_CAFILE=
WORKDIR /src
COPY package.json package-lock.json ./
RUN if [ -n "$NPM_CAFILE" ]; then export npm_config_cafile="$NPM_CAFILE"; fi; \
    npm ci --no-audit --no-fund --loglevel=error || { \
      echo "pgroute: npm ci refused package-lock.json (out of sync with package.json?); installing the locked versions with npm install" >&2; \
      npm install --no-audit --no-fund --loglevel=error; }
COPY tsconfig.json tsconfig.build.json ./
COPY agent/src agent/src
COPY generator/src generator/src
COPY cli cli
RUN npx tsc -p tsconfig.build.json

FROM ${NODE_BASE}
# pgroute runs as `node`, renumbered to the uid/gid of the official HAProxy image's `haproxy` user
# (99:99): the admin and master sockets HAProxy creates in the shared state dir are mode 600.
ARG PGROUTE_UID=99
ARG PGROUTE_GID=99
USER root
RUN set -eu; \
    if [ "$(id -u node)" != "$PGROUTE_UID" ] || [ "$(id -g node)" != "$PGROUTE_GID" ]; then \
      old_uid=$(id -u node); old_gid=$(id -g node); \
      sed -i -e "s/^node:x:${old_uid}:${old_gid}:/node:x:${PGROUTE_UID}:${PGROUTE_GID}:/" /etc/passwd; \
      sed -i -e "s/^node:x:${old_gid}:/node:x:${PGROUTE_GID}:/" /etc/group; \
      chown -R node:node /home/node; \
    fi; \
    [ "$(id -u node):$(id -g node)" = "${PGROUTE_UID}:${PGROUTE_GID}" ]; \
    mkdir -p /var/lib/pgroute; chown node:node /var/lib/pgroute; chmod 0750 /var/lib/pgroute
COPY --from=haproxy /out/ /opt/haproxy/
RUN set -eu; \
    printf '#!/bin/sh\n# HAProxy from the HAProxy image, with its own loader and libraries (for haproxy -c).\nexec /opt/haproxy/lib/ld.so --library-path /opt/haproxy/lib /opt/haproxy/sbin/haproxy "$@"\n' > /usr/local/bin/haproxy; \
    chmod 0755 /usr/local/bin/haproxy; \
    haproxy -v | head -n 1
WORKDIR /opt/pgroute
COPY package.json package-lock.json ./
COPY --from=deps /opt/pgroute/node_modules node_modules
COPY --from=build /src/dist dist
# Templates and the Lua action; lua-load renders /opt/pgroute/haproxy/pgroute.lua, the path the
# HAProxy image copies it to.
COPY haproxy/haproxy.cfg.hbs haproxy/spoe.conf.hbs haproxy/pgroute.lua haproxy/
COPY haproxy/partials haproxy/partials
# compose/docker-compose.yml starts the container as root through this launcher, which joins the
# Docker socket's group (whatever its number) and drops to node (99:99) before pgroute runs.
COPY compose/run-as.mjs run-as.mjs
ENV NODE_ENV=production \
    PGROUTE_STATE_DIR=/var/lib/pgroute \
    PGROUTE_HAPROXY=/usr/local/bin/haproxy
ARG PGROUTE_VERSION=dev
ARG NODE_BASE
LABEL org.opencontainers.image.title="pgroute" \
      org.opencontainers.image.description="One public PostgreSQL port for many tenants: the generator and SPOE agent that drive HAProxy" \
      org.opencontainers.image.version="${PGROUTE_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${NODE_BASE}"
# The agent: SPOP (HAProxy asks here) and /healthz + /metrics.
EXPOSE 6710 6711
# Healthy when the agent answers /healthz (`pgroute watch|up|agent`; a one-shot `generate` ends first).
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PGROUTE_AGENT_HTTP_PORT || 6711) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
USER node
ENTRYPOINT ["node", "/opt/pgroute/dist/cli/pgroute.js"]
CMD ["--help"]
