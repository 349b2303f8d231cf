/**
 * Graceful stop on SIGTERM / SIGINT (DESIGN.md A6): the first signal runs `stop` — for an
 * embedded engine `engine.close()`, which refuses new batches, processes what was received,
 * commits a checkpoint and closes the DuckDB file — then exits with 0 (1 if stopping failed).
 * A second signal while stopping exits at once with 130: that is a kill, and with
 * `ack: accepted` the events accepted since the last checkpoint are lost (logged at restart).
 *
 *   const engine = await Sluice.open(config);
 *   stopOnSignals(() => engine.close());
 */

export interface StopOnSignalsOptions {
  /** default SIGTERM and SIGINT */
  readonly signals?: readonly NodeJS.Signals[];
  /** told which signal started the stop, before `stop` runs */
  readonly onSignal?: (signal: NodeJS.Signals) => void;
  /** told how the stop ended (null = cleanly), before the exit */
  readonly onStopped?: (err: unknown) => void;
  /** exit the process when the stop ends (default true) */
  readonly exit?: boolean;
}

/** Install the handlers; the returned function removes them. */
export function stopOnSignals(stop: () => Promise<void>, opts: StopOnSignalsOptions = {}): () => void {
  const signals = opts.signals ?? ['SIGTERM', 'SIGINT'];
  const exit = opts.exit ?? true;
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      // asked twice: stop waiting
      process.exit(130);
    }
    stopping = true;
    opts.onSignal?.(signal);
    stop().then(
      () => {
        opts.onStopped?.(null);
        if (exit) process.exit(0);
      },
      (err: unknown) => {
        opts.onStopped?.(err ?? new Error('stop failed'));
        if (exit) process.exit(1);
      },
    );
  };
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
  };
}
