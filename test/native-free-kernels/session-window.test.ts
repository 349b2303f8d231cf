import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assignSessions, type SessionAssignment } from '../../native-free-kernels/session-window.js';
import { mulberry32, type Rng } from '../helpers/random.js';

/**
 * Reference: per key, sort the times and cut wherever an event is `gap` or more after the
 * previous one (t ≥ last + gap, the same half-open interval rule as [t, t + gap)). A session is
 * [first, last + gap).
 */
interface RefSession {
  key: number;
  start: number;
  end: number;
  /** positions in the session */
  members: number[];
}

function refSessions(times: readonly number[], keys: Int32Array, gap: number): RefSession[] {
  const byKey = new Map<number, number[]>();
  times.forEach((_, i) => {
    const k = keys[i]!;
    const list = byKey.get(k) ?? [];
    list.push(i);
    byKey.set(k, list);
  });
  const out: RefSession[] = [];
  for (const [key, list] of byKey) {
    const sorted = [...list].sort((a, b) => times[a]! - times[b]! || a - b);
    let cur: RefSession | null = null;
    let last = 0;
    for (const i of sorted) {
      const t = times[i]!;
      if (cur === null || t >= last + gap) {
        if (cur !== null) cur.end = last + gap;
        cur = { key, start: t, end: NaN, members: [] };
        out.push(cur);
      }
      cur.members.push(i);
      last = t;
    }
    if (cur !== null) cur.end = last + gap;
  }
  return out;
}

/** Compare the kernel's sessions and memberships with the reference (order of sessions free). */
function check(times: readonly number[], sel: Int32Array | null, keys: Int32Array, groups: number, gap: number): SessionAssignment {
  const n = keys.length;
  const ts = new Float64Array(sel === null ? n : Math.max(0, ...sel) + 1);
  // positions → rows through sel: scatter the times into row slots
  for (let i = 0; i < n; i++) ts[sel === null ? i : sel[i]!] = times[i]!;
  const sessionOf = new Int32Array(n).fill(-1);
  const s = assignSessions(ts, sel, n, keys, groups, gap, sessionOf);
  const ref = refSessions(times, keys, gap);
  assert.equal(s.count, ref.length, 'session count');
  assert.equal(s.start.length, s.count);
  assert.equal(s.end.length, s.count);
  assert.equal(s.keyGroup.length, s.count);
  const describe = (key: number, start: number, end: number): string => `${key}:${start}:${end}`;
  const got = [...Array(s.count).keys()].map((j) => describe(s.keyGroup[j]!, s.start[j]!, s.end[j]!)).sort();
  const want = ref.map((r) => describe(r.key, r.start, r.end)).sort();
  assert.deepEqual(got, want);
  // membership: the members of each reference session all map to one kernel session with the same bounds
  for (const r of ref) {
    const j = sessionOf[r.members[0]!]!;
    assert.ok(j >= 0 && j < s.count);
    assert.equal(describe(s.keyGroup[j]!, s.start[j]!, s.end[j]!), describe(r.key, r.start, r.end));
    for (const i of r.members) assert.equal(sessionOf[i], j, `position ${i} t=${times[i]}`);
  }
  return s;
}

function randomCase(rng: Rng, n: number, groups: number, gap: number, spread: number, sorted: boolean): { times: number[]; keys: Int32Array } {
  const times: number[] = [];
  const keys = new Int32Array(n);
  let t = Math.floor((rng() - 0.5) * 1e12);
  for (let i = 0; i < n; i++) {
    keys[i] = Math.floor(rng() * groups);
    const r = rng();
    if (sorted) {
      t += r < 0.1 ? gap : r < 0.2 ? 0 : Math.floor(rng() * spread);
      times.push(t);
    } else {
      // unordered, with exact-gap steps and duplicates
      const base = r < 0.1 && i > 0 ? times[Math.floor(rng() * i)]! + (rng() < 0.5 ? gap : -gap) : r < 0.2 && i > 0 ? times[Math.floor(rng() * i)]! : t + rng() * spread * n;
      times.push(base);
    }
  }
  return { times, keys };
}

test('sessions equal the sorted-array reference: in-order and unordered input, many keys', () => {
  const rng = mulberry32(31);
  for (const gap of [1, 10, 30_000]) {
    for (const sorted of [true, false]) {
      for (const groups of [1, 7, 500]) {
        const { times, keys } = randomCase(rng, 3000, groups, gap, gap * 2, sorted);
        check(times, null, keys, groups, gap);
      }
    }
  }
});

test('an event exactly gap after the last starts a new session; one just under gap extends it', () => {
  let s = check([0, 10], null, Int32Array.from([0, 0]), 1, 10);
  assert.equal(s.count, 2);
  s = check([0, 9.5], null, Int32Array.from([0, 0]), 1, 10);
  assert.equal(s.count, 1);
  assert.equal(s.end[0], 19.5);
  // chained: each step below gap → one session however long
  s = check([0, 9, 18, 27, 36], null, new Int32Array(5), 1, 10);
  assert.equal(s.count, 1);
  assert.deepEqual([s.start[0], s.end[0]], [0, 46]);
  // negative times and out of order: -10 is exactly gap before 0
  s = check([0, -10, -25], null, new Int32Array(3), 1, 10);
  assert.equal(s.count, 3);
});

test('duplicates and unordered times of one key', () => {
  let s = check([5, 5, 5], null, new Int32Array(3), 1, 100);
  assert.equal(s.count, 1);
  assert.deepEqual([s.start[0], s.end[0]], [5, 105]);
  s = check([50, 0, 100, 25, 75, 300, 200], null, new Int32Array(7), 1, 100);
  // 0..100 chain (steps of 25), 200 is exactly 100 after 100 → new, 300 → new
  assert.equal(s.count, 3);
});

test('keys are separate: the same times under different keys are different sessions', () => {
  const s = check([0, 1, 2, 0, 1, 2], null, Int32Array.from([0, 1, 2, 2, 1, 0]), 3, 10);
  assert.equal(s.count, 3);
  // a key group with no position produces no session
  const t = check([0, 1], null, Int32Array.from([3, 3]), 5, 10);
  assert.equal(t.count, 1);
  assert.equal(t.keyGroup[0], 3);
});

test('a selection vector maps positions to rows', () => {
  const rng = mulberry32(32);
  const { times, keys } = randomCase(rng, 2000, 20, 1000, 1500, false);
  // rows are spread out: position i reads row 3i + 1
  const sel = Int32Array.from([...Array(2000).keys()].map((i) => 3 * i + 1));
  check(times, sel, keys, 20, 1000);
  // a reversed selection (positions not in row order)
  const rev = Int32Array.from([...Array(2000).keys()].map((i) => 2 * (2000 - 1 - i)));
  check(times, rev, keys, 20, 1000);
});

test('fractional times and a fractional gap', () => {
  const rng = mulberry32(33);
  const times: number[] = [];
  const keys = new Int32Array(1000);
  for (let i = 0; i < 1000; i++) {
    times.push(Math.floor(rng() * 400) * 0.25 + (rng() < 0.3 ? 0.1 : 0));
    keys[i] = i % 3;
  }
  check(times, null, keys, 3, 2.5);
});

test('no positions: no sessions', () => {
  const s = assignSessions(new Float64Array(0), null, 0, new Int32Array(0), 0, 10, new Int32Array(0));
  assert.equal(s.count, 0);
  const t = assignSessions(new Float64Array(0), null, 0, new Int32Array(0), 4, 10, new Int32Array(0));
  assert.equal(t.count, 0);
});
