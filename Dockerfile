# Sluice in a container: `docker build -t sluice . && docker run -p 8080:8080 -v sluice-data:/data sluice`
#
# Two stages: the first compiles the native modules (node-rdkafka's librdkafka, msgpackr-extract)
# and the TypeScript; the second carries only the runtime files. The image serves
# configs/sluice.yaml on 0.0.0.0:8080 with its data in the /data volume; mount another config and
# pass `--config` to change it, and set SLUICE_* variables (docs/config.md) to override keys.
#
# Not built in this repository's CI: the development machines have no Docker engine. Every step
# is the one `.ci/run` runs on a clean clone (npm ci with the local Node headers, then tsc).

FROM node:20-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# node-gyp builds against the image's own Node headers instead of downloading them
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json tsconfig.json ./
COPY engine ./engine
COPY native-free-kernels ./native-free-kernels
COPY server ./server
COPY bench ./bench
COPY test ./test
# `npm ci` runs `prepare` (tsc) once the dependencies are in
RUN npm ci && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY configs ./configs
ENV SLUICE_HOST=0.0.0.0 \
    SLUICE_DATA=/data \
    NODE_ENV=production
# a named volume starts as a copy of /data, owned by the unprivileged user the server runs as
RUN mkdir /data && chown node:node /data
VOLUME /data
EXPOSE 8080
USER node
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:8080/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/server/cli.js"]
CMD ["serve", "--config", "configs/sluice.yaml"]
