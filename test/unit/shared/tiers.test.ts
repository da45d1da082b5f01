import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { tierIncrement, tierSegments, tierTotal, TierError, type Tier, type TierMode } from '../../../shared/tiers.ts';
import { priceWithTiers, priceCall, toLineItems } from '../../../shared/pricing.ts';
import { bundledCatalog } from '../../../shared/catalog.ts';
import { nanoToUsd } from '../../../shared/money.ts';
import type { VolumeTierPlan } from '../../../shared/api.ts';

// The worked example: 1–1,000 @ $0.010, 1,001–10,000 @ $0.008, 10,001+ @ $0.005
const EXAMPLE: Tier[] = [
  { upTo: 1000, price: '0.010' },
  { upTo: 10000, price: '0.008' },
  { upTo: null, price: '0.005' },
];
const usd = (mode: TierMode, tiers: readonly Tier[], units: number) => nanoToUsd(tierTotal(mode, tiers, units));
type Plan = Pick<VolumeTierPlan, 'id' | 'mode' | 'unit' | 'tiers'>;
const plan = (mode: TierMode, tiers: Tier[] = EXAMPLE): Plan => ({ id: `plan-${mode}`, mode, unit: 'image', tiers });

describe('tiers: the worked example', () => {
  test('15,000 units: $107.00 graduated, $75.00 volume', () => {
    // graduated: 1,000 × 0.010 + 9,000 × 0.008 + 5,000 × 0.005 = 10 + 72 + 25 = 107
    assert.equal(usd('graduated', EXAMPLE, 15000), '107');
    // volume: 15,000 × 0.005 = 75
    assert.equal(usd('volume', EXAMPLE, 15000), '75');
    assert.deepEqual(tierSegments('graduated', EXAMPLE, 15000).map((s) => [s.from, s.to, s.units, s.price, nanoToUsd(s.cost)]), [
      [1, 1000, 1000, '0.010', '10'],
      [1001, 10000, 9000, '0.008', '72'],
      [10001, 15000, 5000, '0.005', '25'],
    ]);
  });

  test('the volume cliff: 10,000 = $80.00, 10,001 = $50.005', () => {
    assert.equal(usd('volume', EXAMPLE, 10000), '80'); // 10,000 × 0.008
    assert.equal(usd('volume', EXAMPLE, 10001), '50.005'); // 10,001 × 0.005
    assert.equal(usd('graduated', EXAMPLE, 10000), '82'); // 10 + 72
    assert.equal(usd('graduated', EXAMPLE, 10001), '82.005');
    assert.equal(usd('volume', EXAMPLE, 1000), '10');
    assert.equal(usd('volume', EXAMPLE, 1001), '8.008');
    assert.equal(usd('volume', EXAMPLE, 0), '0');
    assert.deepEqual(tierSegments('volume', EXAMPLE, 0), []);
    assert.equal(nanoToUsd(tierIncrement('volume', EXAMPLE, 10000, 1)), '-29.995'); // 50.005 − 80
  });

  test('units past a bounded last tier are priced at the last tier', () => {
    const bounded: Tier[] = [{ upTo: 10, price: '1' }, { upTo: 20, price: '0.5' }];
    assert.equal(usd('graduated', bounded, 25), '17.5'); // 10 + 5 + 5 × 0.5
    assert.equal(usd('volume', bounded, 25), '12.5'); // 25 × 0.5
  });

  test('priceWithTiers itemizes the volume cliff with a negative re-price line', () => {
    const p = priceWithTiers(plan('volume'), 10000, 1, { id: 'fal-ai/flux-2-pro' });
    assert.equal(p.unpriced, null);
    assert.equal(p.priceSource, 'tier plan-volume (volume)');
    assert.deepEqual(toLineItems(p.items).map((l) => [l.label, l.quantity, l.unitPrice, l.cost]), [
      ['images at the volume price', '1', '0.005', '0.005'],
      ['Re-price of 10,000 earlier images this period', '10000', '0.005', '-30'],
    ]);
    assert.equal(nanoToUsd(p.cost), '-29.995');
  });

  test('priceWithTiers itemizes a graduated call that spans tiers', () => {
    const p = priceWithTiers(plan('graduated'), 900, 200, { id: 'x' });
    assert.deepEqual(toLineItems(p.items).map((l) => [l.label, l.quantity, l.cost]), [
      ['images 901–1,000 of the period', '100', '1'],
      ['images 1,001–1,100 of the period', '100', '0.8'],
    ]);
    assert.equal(nanoToUsd(p.cost), '1.8');
  });

  test('a tier plan in the price context prices a media call through the plan', () => {
    const resolved = bundledCatalog().resolve('fal', 'fal-ai/recraft/v4/text-to-image');
    const p = priceCall({ images: 3 }, resolved, { tier: { plan: plan('graduated'), before: 999 } });
    // image 1,000 @ 0.010 + images 1,001–1,002 @ 0.008 = 0.026
    assert.equal(nanoToUsd(p.cost), '0.026');
    assert.equal(p.priceSource, 'tier plan-graduated (graduated)');
  });
});

describe('tiers: per-call increments add up to the period total', () => {
  const callsArb = fc.array(fc.integer({ min: 0, max: 4000 }), { minLength: 1, maxLength: 40 });
  const modeArb = fc.constantFrom<TierMode>('graduated', 'volume');

  test('the worked example, random call sizes, both modes', () => {
    fc.assert(fc.property(modeArb, callsArb, (mode, calls) => {
      let before = 0;
      let sum = 0n;
      let sawCredit = false;
      for (const n of calls) {
        const p = priceWithTiers(plan(mode), before, n, { id: 'm' });
        const itemSum = p.items.reduce((a, l) => a + l.cost, 0n);
        assert.equal(p.cost, itemSum); // the call's cost is exactly its lines
        assert.equal(p.cost, tierIncrement(mode, EXAMPLE, before, n));
        if (p.items.some((l) => l.cost < 0n)) sawCredit = true;
        sum += p.cost;
        before += n;
      }
      assert.equal(sum, tierTotal(mode, EXAMPLE, before));
      if (mode === 'graduated') assert.equal(sawCredit, false);
    }), { numRuns: 400 });
  });

  // Random plans with prices up to 12 decimals (what the API accepts): per-call rounding must
  // not drift from the period total. This caught a graduated-mode bug (each call's lines were
  // rounded independently, so 5 calls of 1 unit at $0.0000000015 cost 10 nano instead of 8).
  const tierPlanArb = fc.array(fc.tuple(fc.integer({ min: 1, max: 500 }), fc.bigInt({ min: 0n, max: 10n ** 12n }), fc.integer({ min: 0, max: 12 })), { minLength: 1, maxLength: 5 })
    .chain((rows) => fc.boolean().map((unbounded) => {
      let bound = 0;
      return rows.map(([step, p, scale], i): Tier => {
        bound += step;
        const s = p.toString().padStart(scale + 1, '0');
        const price = scale ? `${s.slice(0, s.length - scale)}.${s.slice(s.length - scale)}` : s;
        return { upTo: unbounded && i === rows.length - 1 ? null : bound, price };
      });
    }));

  test('random plans (prices to 12 decimals), random call sizes, both modes', () => {
    fc.assert(fc.property(modeArb, tierPlanArb, fc.array(fc.integer({ min: 0, max: 700 }), { minLength: 1, maxLength: 30 }), (mode, tiers, calls) => {
      let before = 0;
      let sum = 0n;
      for (const n of calls) {
        const p = priceWithTiers(plan(mode, tiers), before, n, { id: 'm' });
        assert.equal(p.cost, p.items.reduce((a, l) => a + l.cost, 0n));
        sum += p.cost;
        before += n;
      }
      assert.equal(sum, tierTotal(mode, tiers, before));
    }), { numRuns: 500 });
  });

  test('regression: a zero-unit first call in volume mode costs 0 (it used to throw)', () => {
    for (const mode of ['volume', 'graduated'] as const) {
      const p = priceWithTiers(plan(mode), 0, 0, { id: 'm' });
      assert.equal(p.cost, 0n);
      assert.equal(p.unpriced, null);
    }
  });

  test('regression: sub-nano graduated prices, one unit per call', () => {
    const tiers: Tier[] = [{ upTo: 3, price: '0.0000000015' }, { upTo: null, price: '0.0000000007' }];
    let before = 0;
    let sum = 0n;
    for (let i = 0; i < 5; i++) sum += priceWithTiers(plan('graduated', tiers), before++, 1, { id: 'm' }).cost;
    // period total: 3 × 1.5 = 4.5 → 4 nano; 2 × 0.7 = 1.4 → 1 nano; 5 nano
    assert.equal(tierTotal('graduated', tiers, 5), 5n);
    assert.equal(sum, 5n);
  });
});

describe('tiers: invalid plans are rejected', () => {
  test('empty, unbounded-not-last, non-increasing, negative price, bad units', () => {
    assert.throws(() => tierTotal('graduated', [], 1), TierError);
    assert.throws(() => tierTotal('volume', [{ upTo: null, price: '1' }, { upTo: 10, price: '1' }], 1), /only the last tier may be unbounded/);
    assert.throws(() => tierTotal('graduated', [{ upTo: 10, price: '1' }, { upTo: 10, price: '0.5' }], 1), /tier bounds must increase/);
    assert.throws(() => tierTotal('graduated', [{ upTo: 10, price: '1' }, { upTo: 5, price: '0.5' }], 1), TierError);
    assert.throws(() => tierTotal('graduated', [{ upTo: 0, price: '1' }], 1), TierError);
    assert.throws(() => tierTotal('graduated', [{ upTo: 1.5, price: '1' }], 1), TierError);
    assert.throws(() => tierTotal('volume', [{ upTo: null, price: '-0.01' }], 1), /cannot be negative/);
    assert.throws(() => tierTotal('volume', [{ upTo: null, price: 'cheap' }], 1), /not a decimal number/);
    assert.throws(() => tierTotal('volume', EXAMPLE, -1), TierError);
    assert.throws(() => tierTotal('volume', EXAMPLE, 1.5), TierError);
    assert.throws(() => priceWithTiers(plan('graduated', []), 0, 1, { id: 'm' }), TierError);
  });
});
