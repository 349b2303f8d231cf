/**
 * Session windows per key (DESIGN.md B3): every event at t covers [t, t + gap); overlapping
 * intervals of the same key merge, so a session is [first event, last event + gap) and the next
 * one starts at an event `gap` or more after the last.
 *
 * Within one batch this kernel splits the selected rows of each key into sessions. Sessions of
 * different batches (or workers) of the same key merge later when they overlap
 * (`SessionStore`). Because a session is exactly a connected component of the union of the
 * events' intervals, merging partial sessions in any order gives the same sessions as seeing
 * all events at once — the result does not depend on batch boundaries.
 */

export interface SessionAssignment {
  /** number of sessions */
  count: number;
  /** per session: start (first event time), end (last event time + gap), key group id */
  start: Float64Array;
  end: Float64Array;
  keyGroup: Int32Array;
}

/**
 * Assign n positions to sessions. `keyGids[i]` is the key group (0..groups-1) of position i,
 * its row is `sel[i]` (or i). Writes the session id of each position to `sessionOf[i]`.
 * Scratch arrays are allocated per call; sizes are O(n + groups).
 */
export function assignSessions(
  ts: Float64Array,
  sel: Int32Array | null,
  n: number,
  keyGids: Int32Array,
  groups: number,
  gap: number,
  sessionOf: Int32Array,
): SessionAssignment {
  // 1. counting sort positions by key group (stable: positions keep arrival order per key)
  const startOf = new Int32Array(groups + 1);
  for (let i = 0; i < n; i++) startOf[keyGids[i]! + 1]!++;
  for (let g = 0; g < groups; g++) startOf[g + 1]! += startOf[g]!;
  const order = new Int32Array(n);
  const fill = startOf.slice(0, groups);
  for (let i = 0; i < n; i++) order[fill[keyGids[i]!]!++] = i;

  const start = new Float64Array(n);
  const end = new Float64Array(n);
  const keyGroup = new Int32Array(n);
  let count = 0;
  const timeAt = (i: number): number => ts[sel === null ? i : sel[i]!]!;

  for (let g = 0; g < groups; g++) {
    const from = startOf[g]!;
    const to = startOf[g + 1]!;
    // 2. events usually arrive in time order; sort the key's positions only when they do not
    let sorted = true;
    for (let p = from + 1; p < to; p++) {
      if (timeAt(order[p]!) < timeAt(order[p - 1]!)) { sorted = false; break; }
    }
    if (!sorted) order.subarray(from, to).sort((a, b) => timeAt(a) - timeAt(b) || a - b);
    // 3. one pass: a position starts a new session when it is gap or more after the last event
    let last = -Infinity;
    for (let p = from; p < to; p++) {
      const i = order[p]!;
      const t = timeAt(i);
      if (p === from || t >= last + gap) {
        if (p !== from) end[count - 1] = last + gap;
        start[count] = t;
        keyGroup[count] = g;
        count++;
        last = t;
      } else if (t > last) {
        last = t;
      }
      sessionOf[i] = count - 1;
    }
    if (to > from) end[count - 1] = last + gap;
  }
  return { count, start: start.subarray(0, count), end: end.subarray(0, count), keyGroup: keyGroup.subarray(0, count) };
}
