/**
 * A pool worker's outbox: where it writes the partials, late rows and archived rows it hands to
 * the state worker. They are written into SharedArrayBuffer blocks the worker reuses, not into a
 * fresh ArrayBuffer per result.
 *
 * Why: an ArrayBuffer moved into the state worker counts as that isolate's external memory, and
 * V8 starts a full GC whenever external memory has grown enough. At 7.4 M events/s the state
 * worker received ~150 MiB/s of partials that way and ran 184 mark-compacts in 28 s
 * (1.27 s of pauses, plus concurrent marking on the helper threads). Shared memory is not counted
 * per isolate. With this outbox: 4 mark-compacts in the same run (docs/benchmarks.md,
 * optimisation log).
 *
 *   block (SharedArrayBuffer, BLOCK_BYTES)
 *   [ i32 live | pad | parcel | parcel | ... |        free        ]
 *                                             ↑ the worker's bump cursor
 *
 * `live` counts the block's parcels that the state worker has not released yet. The worker adds
 * one per parcel (Atomics.add) before the parcel leaves; the state worker subtracts one when it
 * is done with the bytes (releaseParcel): a partial once merged, late and archived rows once
 * their commit landed. When the current block has no room, the worker starts over a block whose
 * `live` is 0 (the current one too), or makes a new block while it has fewer than `maxBlocks`.
 * When every block is still in use, or a parcel is larger than a block, the parcel is a plain
 * ArrayBuffer, moved as before (`fallbacks` counts them; sluice_pool_outbox_fallbacks_total).
 *
 * Memory: at most maxBlocks × blockBytes per worker (64 × 4 MiB), made only when needed and then
 * kept for reuse. The state worker holds parcels until they are merged or committed, including
 * the messages queued for it: up to 256 MiB in all (runtime.ts STATE_BACKLOG), which the blocks
 * of one worker can hold. With 32 blocks, archive on at full rate (the state worker the
 * bottleneck, its queue full) moved 1058 of ~1540 parcels as plain buffers; with 64, 66.
 *
 * Parcels are Uint8Array views; they start 8-byte aligned, so a reader can lay Float64Array
 * views over them.
 */

/** bytes of one shared block */
export const OUTBOX_BLOCK_BYTES = 4 << 20;
/** blocks per worker at most */
export const OUTBOX_MAX_BLOCKS = 64;
/** the block's header: i32 live count, padded to 8 */
const HEADER = 8;

interface Block {
  readonly buffer: SharedArrayBuffer;
  readonly live: Int32Array;
}

export class Outbox {
  readonly blockBytes: number;
  readonly maxBlocks: number;
  private readonly blocks: Block[] = [];
  private current: Block | null = null;
  private cursor = 0;
  /** parcels written to a plain ArrayBuffer because no block had room */
  fallbacks = 0;

  constructor(blockBytes = OUTBOX_BLOCK_BYTES, maxBlocks = OUTBOX_MAX_BLOCKS) {
    if (blockBytes < 64 || blockBytes % 8 !== 0) throw new Error('outbox: blocks need at least 64 bytes, a multiple of 8');
    this.blockBytes = blockBytes;
    this.maxBlocks = maxBlocks;
  }

  /** bytes of shared blocks made so far */
  get sharedBytes(): number {
    return this.blocks.length * this.blockBytes;
  }

  /** `size` bytes for the state worker: a slice of a shared block, or a plain ArrayBuffer. */
  alloc(size: number): Uint8Array {
    const need = (size + 7) & ~7;
    if (need > this.blockBytes - HEADER) return this.fallback(size);
    if (this.current === null || this.cursor + need > this.blockBytes) {
      // any block with no live parcel, the current one included, can start over
      const next = this.blocks.find((b) => Atomics.load(b.live, 0) === 0) ?? this.grow();
      if (next === null) return this.fallback(size);
      this.current = next;
      this.cursor = HEADER;
    }
    const at = this.cursor;
    this.cursor += need;
    Atomics.add(this.current.live, 0, 1);
    return new Uint8Array(this.current.buffer, at, size);
  }

  private grow(): Block | null {
    if (this.blocks.length >= this.maxBlocks) return null;
    const buffer = new SharedArrayBuffer(this.blockBytes);
    const block = { buffer, live: new Int32Array(buffer, 0, 1) };
    this.blocks.push(block);
    return block;
  }

  private fallback(size: number): Uint8Array {
    this.fallbacks++;
    return new Uint8Array(size);
  }
}

/**
 * The state worker is done with a parcel's bytes: its block may be written again. A parcel
 * outside any block (a plain ArrayBuffer) needs nothing. Call once per parcel.
 */
export function releaseParcel(bytes: Uint8Array): void {
  if (bytes.buffer instanceof SharedArrayBuffer) Atomics.sub(new Int32Array(bytes.buffer, 0, 1), 0, 1);
}

/** The parcels' buffers that must be moved (transferred) with a message: the plain ones. */
export function transferablesOf(parcels: readonly Uint8Array[]): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const p of parcels) if (!(p.buffer instanceof SharedArrayBuffer)) out.push(p.buffer as ArrayBuffer);
  return out;
}
