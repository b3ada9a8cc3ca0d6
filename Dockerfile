# Warren's one image: the `warren` CLI on Node 20, so one image runs every role:
#   warren:latest api | worker --replicas 1 | topology apply | dlq list | status
# Build with `npm run image` (podman or docker); see the README's "Deploy" section.
ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: all dependencies, compile TypeScript to dist/ -------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY . .
RUN npm run build

# --- runtime: compiled JavaScript and production dependencies only -----------------------------
FROM ${NODE_IMAGE}
# tini as PID 1: Node ignores SIGTERM as PID 1 unless it installs a handler and never reaps
# orphans; tini forwards every signal to the CLI (which drains on SIGTERM) and reaps zombies.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb /var/log/apt /var/log/dpkg.log
WORKDIR /app
ENV NODE_ENV=production \
    DATA_DIR=/var/lib/warren \
    LOG_PRETTY=0
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY bin/warren.js ./bin/warren.js
COPY topology/*.yaml ./topology/
COPY deploy/healthcheck.js ./healthcheck.js
RUN mkdir -p /var/lib/warren && chown node:node /var/lib/warren
USER node
EXPOSE 3000 9464
# The API answers /healthz on PORT, a worker /metrics on WORKER_METRICS_PORT; a one-shot command
# (topology apply) has nothing to probe and counts as healthy.
HEALTHCHECK --interval=15s --timeout=10s --start-period=20s --retries=3 CMD ["node", "/app/healthcheck.js"]
# Last, so a new version or commit rebuilds no layer above.
ARG VERSION=0.0.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="warren" \
      org.opencontainers.image.description="A resilient worker framework on RabbitMQ: the warren CLI (api, worker, topology, dlq, status)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="docker.io/library/node:20-bookworm-slim"
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/bin/warren.js"]
CMD ["--help"]
