/** The UI's one money formatter and its usage / price wording (renderer/src/format.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatUsageSummary, formatUsd, formatUsdTick, priceLabel } from '../../../renderer/src/format.ts';

test('amounts under $1 keep three significant digits, so nearby amounts never read the same', () => {
  assert.equal(formatUsd('0.0149', 'en-US'), '$0.0149');
  assert.equal(formatUsd('0.015', 'en-US'), '$0.015');
  assert.notEqual(formatUsd('0.0127', 'en-US'), formatUsd('0.015', 'en-US')); // was "$0.01 of $0.01"
  assert.equal(formatUsd('0.012725', 'en-US'), '$0.0127');
  assert.equal(formatUsd('0.00045', 'en-US'), '$0.00045');
  assert.equal(formatUsd('0.000000001', 'en-US'), '$0.000000001');
  assert.equal(formatUsd('0.5', 'en-US'), '$0.50');
  assert.equal(formatUsd('4.2', 'en-US'), '$4.20');
  assert.equal(formatUsd('1234.5', 'en-US'), '$1,234.50');
  assert.equal(formatUsd('0', 'en-US'), '$0.00');
});

test('chart ticks use the same rule (two ticks never read the same)', () => {
  const ticks = [0, 0.0004, 0.0008, 0.0012, 0.0016].map((v) => formatUsdTick(v, 'en-US'));
  assert.deepEqual(ticks, ['$0.00', '$0.0004', '$0.0008', '$0.0012', '$0.0016']);
  assert.equal(new Set([0.01, 0.0125, 0.015, 0.0175].map((v) => formatUsdTick(v, 'en-US'))).size, 4);
  assert.equal(formatUsdTick(150, 'en-US'), '$150');
  // the reconciliation chart's axis goes below zero: sub-cent differences stay apart there too
  assert.deepEqual([-0.0008, -0.0004, 0].map((v) => formatUsdTick(v, 'en-US')), ['−$0.0008', '−$0.0004', '$0.00']);
  assert.equal(formatUsdTick(-150, 'en-US'), '−$150');
});

test('usage reads in words from the engine\'s canonical fields', () => {
  assert.equal(formatUsageSummary({ inputTokens: 600, cacheReadTokens: 400, outputTokens: 500 }, 'en-US'), '1,000 in (400 cached) / 500 out');
  assert.equal(formatUsageSummary({ inputTokens: 1000, outputTokens: 400, reasoningTokens: 100 }, 'en-US'), '1,000 in / 500 out');
  assert.equal(formatUsageSummary({ images: 2, megapixelsPerImage: '1.048576' }, 'en-US'), '2 images × 1.048576 MP');
  assert.equal(formatUsageSummary({}, 'en-US'), '—');
});

test('catalog price keys in plain words', () => {
  assert.equal(priceLabel('input_mtok'), 'Input');
  assert.equal(priceLabel('cache_read_mtok'), 'Cache reads');
  assert.equal(priceLabel('some_new_thing_mtok'), 'Some new thing');
});
