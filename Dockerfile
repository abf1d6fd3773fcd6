# syntax=docker/dockerfile:1
# Multi-stage build: compile with dev dependencies, run with production ones only.

FROM node:22-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json codegen.yml ./
COPY schema ./schema
COPY src ./src
RUN npm run build

FROM node:22-slim AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:22-slim AS runtime
# AUTH_MODE has no default in production: the container refuses to start until it is set
# (jwt, or none on purpose). Metrics listen on all interfaces here, on their own port,
# for Prometheus; expose only the GraphQL port through the ingress.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=4000 \
    METRICS_HOST=0.0.0.0 \
    METRICS_PORT=9464
WORKDIR /app
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node schema ./schema
COPY --chown=node:node package.json ./
# The image's built-in unprivileged user.
USER node
EXPOSE 4000 9464
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||4000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form: node runs as PID 1 and receives SIGTERM itself (it installs handlers), so the
# gateway drains in-flight requests before exiting.
CMD ["node", "--max-semi-space-size=32", "dist/src/main.js"]
