# syntax=docker/dockerfile:1
# One image per service, from this one file:
#   docker build --build-arg SERVICE=trading --build-arg PORT=3001 -t ghcr.io/finance-core/trading .
# Node.js 24 LTS, pinned by the digest of the multi-arch image index (updated on purpose, not by a
# moving tag).
ARG NODE_IMAGE=node:24.11.1-bookworm-slim@sha256:48abc13a19400ca3985071e287bd405a1d99306770eb81d61202fb6b65cf0b57

# Compile the service (tools/delivery/src/build.ts, the same as `nx build <service>`).
FROM ${NODE_IMAGE} AS build
WORKDIR /workspace
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.base.json ./
COPY apps ./apps
COPY libs ./libs
COPY tools/delivery ./tools/delivery
ARG SERVICE
RUN test -n "${SERVICE}" && node -r @swc-node/register tools/delivery/src/build.ts "${SERVICE}"

# Only the production dependencies: the build's test checks that the output needs nothing else.
FROM ${NODE_IMAGE} AS dependencies
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
ARG SERVICE
ARG PORT
ENV NODE_ENV=production \
    MESH_MODE=true \
    HOST=0.0.0.0 \
    PORT=${PORT}
WORKDIR /app
# Owned by root and read-only for the service user: the root filesystem is read-only in the cluster.
COPY --from=dependencies /app/node_modules ./node_modules
COPY --from=build /workspace/dist/apps/${SERVICE} ./
COPY tools/delivery/healthcheck.cjs ./healthcheck.cjs
# The image's `node` user (uid 1000), which the Deployments and the Gatekeeper constraint require.
USER 1000:1000
EXPOSE ${PORT}
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 CMD ["node", "healthcheck.cjs"]
ENTRYPOINT ["node", "--enable-source-maps", "main.js"]
