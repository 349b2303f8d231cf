/**
 * bench/chart.ts: the e2e suite's SVG — one polyline per series in each panel, points inside the
 * plot, names escaped, axes scaled to the data.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderChart, type Series } from '../../bench/chart.js';

const series: Series[] = [
  { name: 'arrow <off> & "1"', emphasis: false, throughput: [[0.5, 1e6], [1, 9.5e6], [1.5, 12e6]], rss: [[0.5, 150], [1.5, 600]] },
  { name: 'soak', emphasis: true, throughput: [[0.5, 2e6], [60, 10e6]], rss: [[0.5, 160], [60, 770]] },
];

test('renderChart: a polyline per series and panel, escaped names, every point inside the plot area', () => {
  const svg = renderChart(series, { title: 'e2e <test>' });
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  assert.equal((svg.match(/<polyline /g) ?? []).length, 4);
  assert.ok(svg.includes('arrow &lt;off&gt; &amp; &quot;1&quot;') && svg.includes('e2e &lt;test&gt;'));
  assert.ok(!svg.includes('<off>'));
  // the y axes reach past the largest value: 12 M events/s and 770 MiB
  assert.match(svg, />15 M</);
  assert.match(svg, />800 MiB</);
  for (const m of svg.matchAll(/points="([^"]+)"/g)) {
    for (const pt of m[1]!.split(' ')) {
      const [x, y] = pt.split(',').map(Number) as [number, number];
      assert.ok(x >= 80 && x <= 780 && y >= 50 && y <= 50 + 2 * 230 + 70, `point ${pt} outside the plots`);
    }
  }
});
