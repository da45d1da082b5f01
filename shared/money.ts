/**
 * Money is exact. Amounts are integer nano-USD (1e-9 USD) held in `bigint`; prices are
 * decimal strings. Nothing here ever passes a money value through a JavaScript float.
 *
 * Conversions from decimal text go through decimal.js (validation, exponent forms) and end
 * as bigint; arithmetic on amounts is bigint only. One rounding, half-even, per line item.
 */
import { Decimal } from 'decimal.js';

export type Nano = bigint;
export const NANO_PER_USD = 1_000_000_000n;

const PLAIN_DECIMAL = /^-?\d+(\.\d+)?$/;

/** An exact rational `num / den` with a positive denominator (used for unit prices). */
export interface Ratio {
  readonly num: bigint;
  readonly den: bigint;
}

/** Parse a decimal string (or a JSON number from third-party data) into an exact ratio. */
export function parseDecimal(value: string | number): Ratio {
  let text: string;
  if (typeof value === 'number') {
    // Third-party price data (genai-prices) ships JSON numbers. The shortest round-trip
    // representation of the number is the literal written in that data, so this is exact
    // with respect to the source; it never re-enters float arithmetic afterwards.
    if (!Number.isFinite(value)) throw new MoneyError(`not a finite number: ${value}`);
    text = new Decimal(value.toString()).toFixed();
  } else {
    text = value.trim();
    if (!PLAIN_DECIMAL.test(text)) {
      // accept exponent forms like "1e-7" but nothing that is not a number
      let d: Decimal;
      try {
        d = new Decimal(text);
      } catch {
        throw new MoneyError(`not a decimal number: "${value}"`);
      }
      if (!d.isFinite()) throw new MoneyError(`not a finite decimal: "${value}"`);
      text = d.toFixed();
    }
  }
  const negative = text.startsWith('-');
  if (negative) text = text.slice(1);
  const dot = text.indexOf('.');
  const intPart = dot < 0 ? text : text.slice(0, dot);
  const fracPart = dot < 0 ? '' : text.slice(dot + 1);
  const num = BigInt(intPart + fracPart) * (negative ? -1n : 1n);
  const den = 10n ** BigInt(fracPart.length);
  return { num, den };
}

export class MoneyError extends Error {
  readonly code = 'E_MONEY';
}

/** Integer division rounded half to even. `den` must be positive. */
export function divHalfEven(num: bigint, den: bigint): bigint {
  if (den <= 0n) throw new MoneyError('division by a non-positive denominator');
  const q = num / den; // truncates toward zero
  const r = num - q * den;
  if (r === 0n) return q;
  const twice = (r < 0n ? -r : r) * 2n;
  const away = num < 0n ? q - 1n : q + 1n;
  if (twice > den) return away;
  if (twice < den) return q;
  return q % 2n === 0n ? q : away;
}

/** A USD decimal string ("0.00045", "12", "-3.5") to nano-USD; more than 9 decimals is rounded half-even. */
export function usdToNano(usd: string | number): Nano {
  const { num, den } = parseDecimal(usd);
  return divHalfEven(num * NANO_PER_USD, den);
}

/** Strict variant for user input: refuses anything that is not exactly representable in nano-USD. */
export function usdToNanoExact(usd: string): Nano {
  const { num, den } = parseDecimal(usd);
  const scaled = num * NANO_PER_USD;
  if (scaled % den !== 0n) throw new MoneyError(`"${usd}" has more than 9 decimal places`);
  return scaled / den;
}

/** Nano-USD to the shortest exact decimal string: 450000n → "0.00045", 2000000000n → "2". */
export function nanoToUsd(nano: Nano): string {
  const negative = nano < 0n;
  const abs = negative ? -nano : nano;
  const whole = abs / NANO_PER_USD;
  const rem = abs - whole * NANO_PER_USD;
  const int = negative ? '-' + whole.toString() : whole.toString();
  if (rem === 0n) return int;
  // hot path (every line item, every quote): no regex, no padStart
  const digits = rem.toString();
  let end = digits.length;
  while (digits.charCodeAt(end - 1) === 48 /* '0' */) end--;
  return int + '.' + '000000000'.slice(digits.length) + digits.slice(0, end);
}

/** Exact decimal text of a ratio whose denominator divides a power of ten (prices per unit). */
export function ratioToDecimal(r: Ratio, maxDecimals = 30): string {
  let den = r.den;
  let twos = 0;
  let fives = 0;
  while (den % 2n === 0n) { den /= 2n; twos++; }
  while (den % 5n === 0n) { den /= 5n; fives++; }
  // A denominator with other prime factors never terminates: round half-even at maxDecimals.
  const digits = den !== 1n ? maxDecimals : Math.max(twos, fives);
  const scaled = den !== 1n ? divHalfEven(r.num * 10n ** BigInt(digits), r.den) : (r.num * 10n ** BigInt(digits)) / r.den;
  const negative = scaled < 0n;
  const s = (negative ? -scaled : scaled).toString().padStart(digits + 1, '0');
  const int = s.slice(0, s.length - digits);
  const frac = s.slice(s.length - digits).replace(/0+$/, '');
  return (negative ? '-' : '') + int + (frac ? '.' + frac : '');
}

/** Cost in nano-USD of `quantity` units at `price` USD per `per` units, rounded once, half-even. */
export function lineCost(quantity: Ratio, price: Ratio, per: bigint = 1n): Nano {
  return divHalfEven(quantity.num * price.num * NANO_PER_USD, quantity.den * price.den * per);
}

export function sumNano(values: Iterable<Nano>): Nano {
  let total = 0n;
  for (const v of values) total += v;
  return total;
}

export function integerRatio(n: number | bigint): Ratio {
  if (typeof n === 'number' && !Number.isSafeInteger(n)) throw new MoneyError(`not a whole number: ${n}`);
  return { num: BigInt(n), den: 1n };
}

/**
 * Display formatting per locale from the exact decimal string: never re-parsed as a float.
 * `minDecimals`/`maxDecimals` bound the fraction; extra digits are rounded half-even.
 */
/**
 * How many decimals an amount needs on screen: 2 from a dollar up; under a dollar at least three
 * significant digits ("$0.0149", never "$0.01"; "$0.00045"), up to the nano. The one rule for the
 * CLI and the UI.
 */
export function displayDecimals(nano: Nano): number {
  const abs = absNano(nano);
  if (abs === 0n || abs >= NANO_PER_USD) return 2;
  const leadingZeros = 9 - abs.toString().length; // zeros right after the decimal point
  return Math.min(9, Math.max(2, leadingZeros + 3));
}

export function formatUsd(usd: string | Nano, opts: { locale?: string; maxDecimals?: number; minDecimals?: number } = {}): string {
  const nano = typeof usd === 'bigint' ? usd : usdToNano(usd);
  const maxDecimals = opts.maxDecimals ?? displayDecimals(nano);
  const minDecimals = Math.min(opts.minDecimals ?? 2, maxDecimals);
  const rounded = divHalfEven(nano, 10n ** BigInt(9 - maxDecimals));
  const negative = rounded < 0n;
  const digits = (negative ? -rounded : rounded).toString().padStart(maxDecimals + 1, '0');
  const intDigits = digits.slice(0, digits.length - maxDecimals);
  let frac = digits.slice(digits.length - maxDecimals).replace(/0+$/, '');
  while (frac.length < minDecimals) frac += '0';
  const parts = new Intl.NumberFormat(opts.locale ?? 'en-US').formatToParts(1234.5);
  const group = parts.find((p) => p.type === 'group')?.value ?? ',';
  const decimal = parts.find((p) => p.type === 'decimal')?.value ?? '.';
  const grouped = intDigits.replace(/\B(?=(\d{3})+(?!\d))/g, group);
  return `${negative ? '-' : ''}$${grouped}${frac ? decimal + frac : ''}`;
}

function absNano(n: Nano): Nano {
  return n < 0n ? -n : n;
}
