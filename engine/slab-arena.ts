/**
 * The slab arena: where received batches wait for a worker. Incoming bytes are copied ONCE
 * into a SharedArrayBuffer slab (workers then read them in place — no structured clone, no
 * second copy) and the slab is recycled when every batch on it has been processed.
 *
 *   slab 0 [###batch###|##b##|#####batch#####|          ]  ← allocation cursor moves right
 *   slab 1 [#########|##########|####|                   ]
 *   slab 2 [                  free                       ]
 *   ...      a ring: when the current slab cannot fit a batch, the cursor moves on to the next
 *            empty slab (every batch on it released); when there is none, the arena is full
 *            and ingest must push back.
 *
 * Total memory is bounded by slabCount × slabBytes. Batches start 8-byte aligned so Arrow
 * buffers inside them can be viewed as Float64Array / Int32Array without a copy.
 */

export interface SlabRef {
  readonly slab: number;
  readonly buffer: SharedArrayBuffer;
  readonly offset: number;
  readonly length: number;
}

export class SlabArena {
  readonly slabBytes: number;
  private readonly slabs: SharedArrayBuffer[];
  /** batches allocated on each slab and not released yet */
  private readonly live: Int32Array;
  private current = 0;
  private cursor = 0;
  private waiters: (() => void)[] = [];
  private usedBytes = 0;
  /** refs handed out and not released: a double release would corrupt a slab's count */
  private readonly outstanding = new WeakSet<SlabRef>();

  constructor(totalBytes: number, slabBytes: number) {
    if (slabBytes < 64 || totalBytes < slabBytes) throw new Error('slab arena: need at least one slab of at least 64 bytes');
    this.slabBytes = slabBytes;
    const count = Math.max(2, Math.floor(totalBytes / slabBytes));
    this.slabs = Array.from({ length: count }, () => prefault(new SharedArrayBuffer(slabBytes)));
    this.live = new Int32Array(count);
  }

  get capacityBytes(): number {
    return this.slabs.length * this.slabBytes;
  }

  /** Bytes of batches allocated and not released. */
  get bytesInUse(): number {
    return this.usedBytes;
  }

  /**
   * Copy `bytes` into a slab. Returns null when the arena is full (push back: wait for
   * `whenSpace()` or refuse the batch). Throws for a batch larger than a slab.
   */
  tryCopy(bytes: Uint8Array): SlabRef | null {
    const len = bytes.length;
    if (len > this.slabBytes) throw new Error(`a batch of ${len} bytes exceeds the slab size ${this.slabBytes}`);
    const need = (len + 7) & ~7;
    if (this.cursor + need > this.slabBytes) {
      // move on to the next empty slab in ring order (batches finish out of order, so it is
      // not always the adjacent one)
      let next = -1;
      for (let k = 1; k < this.slabs.length; k++) {
        const j = (this.current + k) % this.slabs.length;
        if (this.live[j] === 0) {
          next = j;
          break;
        }
      }
      if (next < 0) return null;
      this.current = next;
      this.cursor = 0;
    }
    const ref: SlabRef = { slab: this.current, buffer: this.slabs[this.current]!, offset: this.cursor, length: len };
    new Uint8Array(ref.buffer, ref.offset, len).set(bytes);
    this.cursor += need;
    this.live[this.current]!++;
    this.usedBytes += need;
    this.outstanding.add(ref);
    return ref;
  }

  /** The batch at `ref` has been processed: its bytes may be reused. */
  release(ref: SlabRef): void {
    if (!this.outstanding.delete(ref)) throw new Error('slab arena: release of a batch that is not live');
    this.live[ref.slab]!--;
    this.usedBytes -= (ref.length + 7) & ~7;
    if (this.live[ref.slab] === 0 && ref.slab === this.current) {
      // the current slab emptied: start it over instead of moving on
      this.cursor = 0;
    }
    if (this.waiters.length > 0) {
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    }
  }

  /** Resolves at the next release (then try again). */
  whenSpace(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

/**
 * Touch one byte of every page so the kernel maps the whole slab now. A fresh buffer is mapped
 * lazily: each first write to a page faults and zeroes it, and ingest's copy into the arena
 * took those faults on the main thread — ~200 ms of it in the first second at 6.4 M events/s,
 * while the first batches already waited for the workers' JIT.
 */
function prefault(buffer: SharedArrayBuffer): SharedArrayBuffer {
  const bytes = new Uint8Array(buffer);
  for (let i = 0; i < bytes.length; i += 4096) bytes[i] = 0;
  return buffer;
}
