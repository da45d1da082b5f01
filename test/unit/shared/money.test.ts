import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Decimal } from 'decimal.js';
import {
  divHalfEven, formatUsd, integerRatio, lineCost, MoneyError, nanoToUsd, parseDecimal, ratioToDecimal, sumNano, usdToNano,
  usdToNanoExact, type Ratio,
} from '../../../shared/money.ts';

// A private Decimal constructor so the reference arithmetic never depends on global config.
const D40 = Decimal.clone({ precision: 40, rounding: Decimal.ROUND_HALF_EVEN });

describe('money: half-even rounding', () => {
  test('divHalfEven rounds ties to even, everything else to nearest', () => {
    assert.equal(divHalfEven(5n, 10n), 0n); // 0.5 → 0
    assert.equal(divHalfEven(15n, 10n), 2n); // 1.5 → 2
    assert.equal(divHalfEven(25n, 10n), 2n); // 2.5 → 2
    assert.equal(divHalfEven(35n, 10n), 4n); // 3.5 → 4
    assert.equal(divHalfEven(-25n, 10n), -2n); // -2.5 → -2
    assert.equal(divHalfEven(-35n, 10n), -4n); // -3.5 → -4
    assert.equal(divHalfEven(-15n, 10n), -2n); // -1.5 → -2
    assert.equal(divHalfEven(25_000_001n, 10_000_000n), 3n); // 2.5000001 → 3
    assert.equal(divHalfEven(-25_000_001n, 10_000_000n), -3n);
    assert.equal(divHalfEven(24_999_999n, 10_000_000n), 2n); // 2.4999999 → 2
    assert.equal(divHalfEven(7n, 1n), 7n);
    assert.equal(divHalfEven(0n, 3n), 0n);
    assert.throws(() => divHalfEven(1n, 0n), MoneyError);
    assert.throws(() => divHalfEven(1n, -2n), MoneyError);
  });

  test('usdToNano applies the same rule at the tenth decimal', () => {
    assert.equal(usdToNano('0.0000000005'), 0n); // 0.5 nano → 0
    assert.equal(usdToNano('0.0000000015'), 2n); // 1.5 nano → 2
    assert.equal(usdToNano('0.0000000025'), 2n); // 2.5 nano → 2
    assert.equal(usdToNano('-0.0000000025'), -2n); // -2.5 nano → -2
    assert.equal(usdToNano('0.0000000025000001'), 3n); // 2.5000001 nano → 3
  });
});

describe('money: conversions', () => {
  test('usdToNano examples', () => {
    assert.equal(usdToNano('0.00045'), 450_000n);
    assert.equal(usdToNano('12'), 12_000_000_000n);
    assert.equal(usdToNano('-3.5'), -3_500_000_000n);
    assert.equal(usdToNano(' 1.000000001 '), 1_000_000_001n);
    assert.equal(usdToNano('1e-7'), 100n);
    assert.equal(usdToNano('2.5E+2'), 250_000_000_000n);
    assert.equal(usdToNano(0.15), 150_000_000n); // genai-prices ships JSON numbers
    assert.equal(usdToNano(1.1), 1_100_000_000n); // not 1.100000000000000088817841970012523…
    assert.equal(usdToNano('0'), 0n);
    assert.throws(() => usdToNano('abc'), MoneyError);
    assert.throws(() => usdToNano('Infinity'), MoneyError);
    assert.throws(() => usdToNano(Number.NaN), MoneyError);
  });

  test('usdToNanoExact refuses sub-nano amounts instead of rounding them', () => {
    assert.equal(usdToNanoExact('0.000000001'), 1n);
    assert.equal(usdToNanoExact('-7.25'), -7_250_000_000n);
    assert.throws(() => usdToNanoExact('0.0000000001'), /more than 9 decimal places/);
  });

  test('nanoToUsd examples: shortest exact decimal', () => {
    assert.equal(nanoToUsd(450_000n), '0.00045');
    assert.equal(nanoToUsd(2_000_000_000n), '2');
    assert.equal(nanoToUsd(0n), '0');
    assert.equal(nanoToUsd(1n), '0.000000001');
    assert.equal(nanoToUsd(-1n), '-0.000000001');
    assert.equal(nanoToUsd(-3_500_000_000n), '-3.5');
    assert.equal(nanoToUsd(107_000_000_000n), '107');
    assert.equal(nanoToUsd(50_005_000_000n), '50.005');
    assert.equal(nanoToUsd(123_456_789_012_345_678_901n), '123456789012.345678901');
  });

  test('parseDecimal and ratioToDecimal are exact', () => {
    assert.deepEqual(parseDecimal('0.075'), { num: 75n, den: 1000n });
    assert.deepEqual(parseDecimal('-12'), { num: -12n, den: 1n });
    assert.deepEqual(parseDecimal(0.3), { num: 3n, den: 10n });
    assert.equal(ratioToDecimal({ num: 3n, den: 8n }), '0.375');
    assert.equal(ratioToDecimal({ num: 1_048_576n, den: 1_000_000n }), '1.048576');
    assert.equal(ratioToDecimal({ num: -1n, den: 4n }), '-0.25');
    assert.equal(ratioToDecimal({ num: 1n, den: 3n }, 6), '0.333333');
    assert.equal(ratioToDecimal({ num: 2n, den: 3n }, 6), '0.666667');
  });

  test('formatUsd', () => {
    assert.equal(formatUsd('1234.5'), '$1,234.50');
    assert.equal(formatUsd('0.00045'), '$0.00045'); // under a dollar: three significant digits
    assert.equal(formatUsd('0.0000004'), '$0.0000004'); // down to the nano
    assert.equal(formatUsd('0.0149'), '$0.0149'); // never "$0.01"
    assert.equal(formatUsd('0.012345'), '$0.0123');
    assert.equal(formatUsd('0.849'), '$0.849');
    assert.equal(formatUsd('0'), '$0.00');
    assert.equal(formatUsd('107'), '$107.00');
    assert.equal(formatUsd('50.005'), '$50.00'); // half-even at the cent: 5000.5 cents → 5000
    assert.equal(formatUsd('50.015'), '$50.02'); // 5001.5 cents → 5002
    assert.equal(formatUsd('-2.5', { maxDecimals: 0 }), '-$2');
    assert.equal(formatUsd('1234567.891', { maxDecimals: 3 }), '$1,234,567.891');
    assert.equal(formatUsd(1_500_000_000n, { minDecimals: 0 }), '$1.5');
    assert.equal(formatUsd('1234.5', { locale: 'de-DE' }), '$1.234,50');
    assert.equal(formatUsd(-12_340_000_000n), '-$12.34');
  });

  test('small helpers', () => {
    assert.equal(sumNano([1n, 2n, -3n, 10n]), 10n);
    assert.deepEqual(integerRatio(42), { num: 42n, den: 1n });
    assert.throws(() => integerRatio(1.5), MoneyError);
    // 1,000 tokens at $0.15 per 1M tokens = $0.00015
    assert.equal(lineCost(integerRatio(1000), parseDecimal('0.15'), 1_000_000n), 150_000n);
    // 1 token at $0.0000000005 → 0.5 nano → 0 (half-even); 3 tokens → 1.5 nano → 2
    assert.equal(lineCost(integerRatio(1), parseDecimal('0.0000000005')), 0n);
    assert.equal(lineCost(integerRatio(3), parseDecimal('0.0000000005')), 2n);
  });
});

// ---- properties ----------------------------------------------------------------------------

const nanoArb = fc.bigInt({ min: -(10n ** 24n), max: 10n ** 24n });
/** A price like genai-prices/overrides carry: up to 12 decimals, up to 5 integer digits. */
const priceArb = fc.record({ int: fc.bigInt({ min: 0n, max: 99_999n }), frac: fc.bigInt({ min: 0n, max: 10n ** 12n - 1n }), scale: fc.integer({ min: 0, max: 12 }) })
  .map(({ int, frac, scale }) => {
    const f = scale === 0 ? '' : (frac % 10n ** BigInt(scale)).toString().padStart(scale, '0');
    return f ? `${int}.${f}` : int.toString();
  });
/** Quantities: whole counts or exact decimals (megapixels, seconds). */
const quantityArb = fc.oneof(
  fc.integer({ min: 0, max: 50_000_000 }).map(String),
  fc.tuple(fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 999_999 })).map(([i, f]) => `${i}.${f.toString().padStart(6, '0')}`),
);
const perArb = fc.constantFrom(1n, 1000n, 1_000_000n, 3600n);

describe('money: properties', () => {
  test('usdToNano(nanoToUsd(x)) === x for any bigint', () => {
    fc.assert(fc.property(nanoArb, (x) => {
      assert.equal(usdToNano(nanoToUsd(x)), x);
      assert.equal(usdToNanoExact(nanoToUsd(x)), x);
    }), { numRuns: 2000 });
  });

  test('a sum of line items is exact: the decimal strings parsed back add to the bigint sum', () => {
    fc.assert(fc.property(fc.array(nanoArb, { minLength: 1, maxLength: 60 }), (lines) => {
      const strings = lines.map(nanoToUsd);
      const bigSum = sumNano(lines);
      // parse each decimal string back to nano and add
      assert.equal(sumNano(strings.map(usdToNanoExact)), bigSum);
      // the same sum done in 40-digit decimal arithmetic (no float anywhere) agrees
      const dec = strings.reduce((a, s) => a.plus(new D40(s)), new D40(0));
      assert.equal(dec.toFixed(), nanoToUsd(bigSum));
    }), { numRuns: 1000 });
  });

  test('a JSON round trip of decimal strings preserves the value', () => {
    fc.assert(fc.property(fc.array(nanoArb, { maxLength: 20 }), (xs) => {
      const wire = JSON.stringify({ items: xs.map((x) => ({ cost: nanoToUsd(x) })) });
      const back = (JSON.parse(wire) as { items: { cost: string }[] }).items.map((i) => usdToNanoExact(i.cost));
      assert.deepEqual(back, xs);
    }), { numRuns: 500 });
  });

  test('lineCost equals a 40-digit decimal.js reference rounded half-even (no float on the path)', () => {
    fc.assert(fc.property(quantityArb, priceArb, perArb, (q, p, per) => {
      const quantity: Ratio = parseDecimal(q);
      const price: Ratio = parseDecimal(p);
      const got = lineCost(quantity, price, per);
      const ref = new D40(q).times(new D40(p)).times(1_000_000_000).dividedBy(per.toString()).toDecimalPlaces(0, Decimal.ROUND_HALF_EVEN);
      assert.equal(got.toString(), ref.toFixed(0));
    }), { numRuns: 3000 });
  });

  test('lineCost at exact half-nano ties goes to even (a float would not)', () => {
    // 1 unit at 0.0000000125 = 12.5 nano → 12; 3 units at 0.0000000005 = 1.5 nano → 2
    assert.equal(lineCost(parseDecimal('1'), parseDecimal('0.0000000125')), 12n);
    assert.equal(lineCost(parseDecimal('3'), parseDecimal('0.0000000005')), 2n);
    // 0.1 + 0.2 style: 3 × $0.1 = exactly $0.3
    assert.equal(lineCost(parseDecimal('3'), parseDecimal('0.1')), 300_000_000n);
  });
});
