/**
 * Prometheus metrics (DESIGN.md A8), one registry per server. Names and label sets are
 * constants here and nowhere else (docs/metrics.md lists them).
 *
 * Two kinds of source:
 * - counted by the server as it answers (ingest events / bytes per transport, rejected batches,
 *   connections, SQL queries) and observed through the engine's `observe` hooks (batch latency,
 *   commit duration);
 * - counters the engine keeps — many of them computed in its worker threads and summed on the
 *   main thread (events per pipeline, late events, windows emitted, worker failures) — which are
 *   read from `engine.snapshot()` when Prometheus scrapes.
 */

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Sluice } from '../engine/runtime.js';

export const METRIC = {
  ingestEvents: 'sluice_ingest_events_total',
  ingestBytes: 'sluice_ingest_bytes_total',
  batchesRejected: 'sluice_ingest_batches_rejected_total',
  pipelineEvents: 'sluice_pipeline_events_total',
  pipelineLate: 'sluice_pipeline_late_events_total',
  windowsEmitted: 'sluice_windows_emitted_total',
  watermarkLag: 'sluice_watermark_lag_seconds',
  batchLatency: 'sluice_batch_latency_seconds',
  flushDuration: 'sluice_flush_duration_seconds',
  poolQueueDepth: 'sluice_pool_queue_depth',
  kafkaLag: 'sluice_kafka_consumer_lag',
  workerFailures: 'sluice_worker_failures_total',
  outboxFallbacks: 'sluice_pool_outbox_fallbacks_total',
  arenaBytes: 'sluice_arena_bytes',
  arenaCapacity: 'sluice_arena_capacity_bytes',
  storageMemory: 'sluice_storage_memory_bytes',
  connections: 'sluice_ws_connections',
  subscribersDropped: 'sluice_subscribers_dropped_total',
  sqlQueries: 'sluice_sql_queries_total',
} as const;

export type Transport = 'ws' | 'http';

export class Metrics {
  readonly registry = new Registry();
  readonly ingestEvents: Counter<'stream' | 'transport'>;
  readonly ingestBytes: Counter<'stream' | 'transport'>;
  readonly batchesRejected: Counter<'stream' | 'code'>;
  readonly batchLatency: Histogram;
  readonly flushDuration: Histogram;
  readonly connections: Gauge<'route'>;
  readonly subscribersDropped: Counter<'pipeline'>;
  readonly sqlQueries: Counter<'outcome'>;
  private engine: Sluice | null = null;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'sluice_' });
    this.ingestEvents = new Counter({ name: METRIC.ingestEvents, help: 'Events acknowledged, by stream and transport (ws, http).', labelNames: ['stream', 'transport'], registers });
    this.ingestBytes = new Counter({ name: METRIC.ingestBytes, help: 'Bytes of acknowledged batches, by stream and transport.', labelNames: ['stream', 'transport'], registers });
    this.batchesRejected = new Counter({ name: METRIC.batchesRejected, help: 'Batches rejected whole (nack or HTTP error), by stream and error code.', labelNames: ['stream', 'code'], registers });
    this.batchLatency = new Histogram({
      name: METRIC.batchLatency, help: 'Time from a batch arriving to it being processed (decoded, validated, aggregated) and acknowledged.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers,
    });
    this.flushDuration = new Histogram({
      name: METRIC.flushDuration, help: 'Duration of a commit to DuckDB (closed windows, late rows, archive rows and the checkpoint in one transaction).',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers,
    });
    this.connections = new Gauge({ name: METRIC.connections, help: 'Open WebSocket connections, by route (ingest, subscribe).', labelNames: ['route'], registers });
    this.subscribersDropped = new Counter({ name: METRIC.subscribersDropped, help: 'Subscribers closed with 1013 for falling behind.', labelNames: ['pipeline'], registers });
    this.sqlQueries = new Counter({ name: METRIC.sqlQueries, help: 'Queries through /v1/sql and the results route, by outcome (ok or an error code).', labelNames: ['outcome'], registers });

    // read from the engine at scrape time
    const self = this;
    type Snapshot = ReturnType<Sluice['snapshot']>;
    const snapshot = (): Snapshot | null => self.engine?.snapshot() ?? null;
    /** a counter per pipeline, set from the engine's running totals */
    const perPipeline = (name: string, help: string, pick: (s: Snapshot) => Record<string, number>): void => {
      new Counter({
        name, help, labelNames: ['pipeline'], registers,
        collect() {
          const s = snapshot();
          if (s === null) return;
          this.reset();
          for (const [p, n] of Object.entries(pick(s))) this.inc({ pipeline: p }, n);
        },
      });
    };
    /** a gauge read from the snapshot; `pick` answering null leaves it without a new sample */
    const level = (name: string, help: string, pick: (s: Snapshot) => number | null): void => {
      new Gauge({
        name, help, registers,
        collect() {
          const s = snapshot();
          const v = s === null ? null : pick(s);
          if (v !== null) this.set(v);
        },
      });
    };
    /** an engine-wide counter, read from the engine's running total at scrape time */
    const total = (name: string, help: string, pick: (s: Snapshot) => number): void => {
      new Counter({
        name, help, registers,
        collect() {
          const s = snapshot();
          if (s === null) return;
          this.reset();
          this.inc(pick(s));
        },
      });
    };
    perPipeline(METRIC.pipelineEvents, 'Events that passed the pipeline\'s filter (on time or late).', (s) => s.pipelineEvents);
    perPipeline(METRIC.pipelineLate, 'Late events routed to <pipeline>__late.', (s) => s.lateEvents);
    perPipeline(METRIC.windowsEmitted, 'Result rows (window × group) committed.', (s) => s.windowsEmitted);
    new Gauge({
      name: METRIC.watermarkLag, help: 'Wall clock minus the stream\'s watermark (event time), in seconds; absent before the first event.', labelNames: ['stream'], registers,
      collect() {
        const s = snapshot();
        if (s === null) return;
        this.reset();
        const now = Date.now();
        for (const [stream, wm] of Object.entries(s.watermark)) if (Number.isFinite(wm)) this.set({ stream }, (now - wm) / 1000);
      },
    });
    level(METRIC.poolQueueDepth, 'Batches received and not yet processed: waiting for a worker, or in a task a worker holds.', (s) => s.piecesWaiting + s.tasksInFlight);
    total(METRIC.workerFailures, 'Worker threads that died (crash, out of memory) while processing a task; their batches were rejected.', (s) => s.workerFailures);
    total(METRIC.outboxFallbacks, 'Partials, late and archived row sets a worker could not write into its shared outbox (every block still held by the state worker, or larger than a block) and moved as an ArrayBuffer instead: each adds to the state worker\'s garbage collection.',
      (s) => s.outboxFallbacks);
    level(METRIC.arenaBytes, 'Bytes of received batches held in the shared-memory slab arena.', (s) => s.arenaBytesInUse);
    level(METRIC.arenaCapacity, 'Capacity of the slab arena (workers.queue); ingest pushes back when it is full.', (s) => s.arenaBytesCapacity);
    level(METRIC.storageMemory, 'DuckDB\'s own memory (its buffer pool: cached table blocks, rows not yet checkpointed into the file, query state), read after a commit at most once a second; absent before the first commit.',
      (s) => s.storageMemoryBytes);
    // Kafka mode (DESIGN.md A7) reports per partition; standalone has no samples.
    new Gauge({ name: METRIC.kafkaLag, help: 'Messages between the committed offset and the end of each assigned partition (Kafka mode).', labelNames: ['topic', 'partition'], registers });
  }

  attach(engine: Sluice): void {
    this.engine = engine;
  }

  async text(): Promise<string> {
    // prom-client 15 writes a NaN sample as `Nan` (its util.getValueAsString); the exposition
    // format's spelling is `NaN`, and OpenMetrics parsers take no other. The event-loop lag
    // gauges are NaN until the first lag sample, so a scrape right after start has them.
    return (await this.registry.metrics()).replace(/ Nan$/gm, ' NaN');
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
