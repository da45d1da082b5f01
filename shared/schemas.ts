/**
 * Input validation for every `TollgateApi` method, shared by the engine's control API,
 * Electron IPC (electron/ipc-policy.ts) and the CLI, so a bad payload is refused the same
 * way whichever door it comes through.
 *
 * Pure: zod only, runs in the browser and in Node. Every object is strict (unknown keys are
 * refused), every string and array is bounded, money is a decimal string (never a JSON
 * number), and record keys cannot be `__proto__`-style names.
 */
import { z } from 'zod';
import { API_METHODS } from './api.ts';
import type { ApiArg, ApiMethod } from './api.ts';

// ---------------------------------------------------------------------------------------------
// Errors

export interface ValidationIssue {
  path: string;    // "limit", "workload.calls", "alerts.2"; "" for the argument itself
  message: string;
}

/** Thrown by `parseApiArg`; serializes to the `ApiError` shape (`code: "E_VALIDATION"`). */
export class ValidationError extends Error {
  readonly code = 'E_VALIDATION' as const;
  readonly issues: ValidationIssue[];

  constructor(issues: ValidationIssue[], method?: string) {
    const summary = issues
      .slice(0, 3)
      .map((i) => (i.path ? `${i.path}: ${i.message}` : i.message))
      .join('; ');
    const more = issues.length > 3 ? ` (+${issues.length - 3} more)` : '';
    super(`${method ? `invalid argument for ${method}: ` : 'invalid input: '}${summary}${more}`);
    this.name = 'ValidationError';
    this.issues = issues;
  }

  toJSON(): { code: 'E_VALIDATION'; message: string; issues: ValidationIssue[] } {
    return { code: this.code, message: this.message, issues: this.issues };
  }
}

// ---------------------------------------------------------------------------------------------
// Building blocks

/** Longest free-text document accepted (a workflow file, a request body to quote). */
export const MAX_DOCUMENT_CHARS = 5_000_000;
const MAX_ID = 200;
const MAX_NAME = 200;
const MAX_LIST_LIMIT = 10_000;
const MAX_COUNT = 1_000_000_000_000; // 1e12: generous for token counts, still a safe integer

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/** Decimal text: digits, optional fraction, no sign, no exponent, no leading zeros. */
function decimalPattern(maxDecimals: number): RegExp {
  return new RegExp(`^(?:0|[1-9]\\d{0,14})(?:\\.\\d{1,${maxDecimals}})?$`);
}
const USD_9 = decimalPattern(9);
const USD_12 = decimalPattern(12);
const isZeroDecimal = (s: string): boolean => /^0(?:\.0+)?$/.test(s);

/** A money limit: positive decimal USD string, at most 9 decimals (exact in nano-USD). */
export const usdLimitSchema = z
  .string()
  .max(32)
  .regex(USD_9, 'must be a positive decimal string with at most 9 decimals, e.g. "25" or "0.50"')
  .refine((s) => !isZeroDecimal(s), 'must be greater than zero');

/** A price: non-negative decimal USD string (free models exist), at most 12 decimals. */
export const usdPriceSchema = z
  .string()
  .max(32)
  .regex(USD_12, 'must be a non-negative decimal string with at most 12 decimals, e.g. "0.15"');

/** A positive decimal quantity (megapixels). */
const positiveDecimalSchema = z
  .string()
  .max(32)
  .regex(USD_9, 'must be a positive decimal string')
  .refine((s) => !isZeroDecimal(s), 'must be greater than zero');

export const idSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(MAX_ID, `must be at most ${MAX_ID} characters`)
  .refine((s) => !CONTROL_CHARS.test(s), 'must not contain control characters');

/** Names of providers, models, projects, keys, workflows: single-line text. */
const nameSchema = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(MAX_NAME, `must be at most ${MAX_NAME} characters`)
  .refine((s) => !CONTROL_CHARS.test(s), 'must not contain control characters');

const noteSchema = z.string().max(2_000).refine((s) => !s.includes('\u0000'), 'must not contain NUL');

const searchSchema = z.string().max(MAX_NAME);

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const recordKeySchema = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9_.:/@+-]+$/, 'must be letters, digits or _ . : / @ + -')
  .refine((k) => !FORBIDDEN_KEYS.has(k), 'is a reserved name');

function boundedRecord<V extends z.ZodType>(value: V, maxEntries: number) {
  // JSON.parse('{"__proto__": …}') yields an own "__proto__" key, which zod would silently drop:
  // refuse it explicitly instead.
  return z
    .custom<unknown>(
      (v) => !(v !== null && typeof v === 'object' && Object.prototype.hasOwnProperty.call(v, '__proto__')),
      'must not use the reserved key "__proto__"',
    )
    .pipe(z.record(recordKeySchema, value))
    .refine((r) => Object.keys(r).length <= maxEntries, `must have at most ${maxEntries} entries`);
}

const intInRange = (min: number, max: number) => z.number().int('must be an integer').min(min).max(max);
const listLimit = intInRange(1, MAX_LIST_LIMIT);
const count = intInRange(0, MAX_COUNT);
const positiveCount = intInRange(1, MAX_COUNT);

/** "2026-11-25" or an ISO datetime with or without an offset. */
const isoDateOrDateTime = z.union([z.iso.date(), z.iso.datetime({ offset: true, local: true })], {
  error: 'must be an ISO date (2026-11-25) or datetime (2026-11-25T10:00:00Z)',
});

/** Any JSON value, bounded in depth and serialized size (request bodies to quote). */
const boundedJson = z.unknown().superRefine((value, ctx) => {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be JSON-serializable' });
    return;
  }
  if (text === undefined) {
    ctx.addIssue({ code: 'custom', message: 'is required' });
  } else if (text.length > MAX_DOCUMENT_CHARS) {
    ctx.addIssue({ code: 'custom', message: `must be at most ${MAX_DOCUMENT_CHARS} characters of JSON` });
  } else if (jsonDepth(value, 0) > 64) {
    ctx.addIssue({ code: 'custom', message: 'is nested too deeply' });
  }
});

function jsonDepth(value: unknown, depth: number): number {
  if (depth > 64 || value === null || typeof value !== 'object') return depth;
  let max = depth;
  for (const v of Object.values(value as Record<string, unknown>)) {
    max = Math.max(max, jsonDepth(v, depth + 1));
    if (max > 64) break;
  }
  return max;
}

const timeZoneSchema = z
  .string()
  .min(1)
  .max(64)
  .refine((tz) => {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  }, 'must be an IANA time zone such as "Europe/Paris" or "UTC"');

/** `Record<string, never>` arguments: `{}` or nothing at all. */
const emptyArg = z
  .strictObject({})
  .optional()
  .transform((): Record<string, never> => ({}));

/** Optional-field objects may also be sent as `undefined` (a call with no argument). */
function optionalObject<T extends z.ZodRawShape>(shape: T) {
  return z
    .strictObject(shape)
    .optional()
    .transform((v) => v ?? ({} as z.output<z.ZodObject<T, z.core.$strict>>));
}

// ---------------------------------------------------------------------------------------------
// Domain enums

const capScope = z.enum(['global', 'provider', 'project', 'key', 'model', 'workflow']);
const capPeriod = z.enum(['day', 'week', 'month', 'total']);
const callStatus = z.enum(['ok', 'error', 'blocked', 'interrupted', 'aborted', 'pending']);
const groupBy = z.enum(['model', 'provider', 'project']);
const granularity = z.enum(['hour', 'day']);
const reportBy = z.enum(['model', 'provider', 'project', 'key', 'workflow', 'day', 'device']);

const alertsSchema = z
  .array(intInRange(1, 100).describe('alert threshold in percent'), { error: 'must be a list of percentages' })
  .max(10, 'must have at most 10 thresholds')
  .refine((a) => new Set(a).size === a.length, 'must not repeat a threshold');

// ---------------------------------------------------------------------------------------------
// Argument schemas

const capInput = z
  .strictObject({
    id: idSchema.optional(),
    scope: capScope,
    scopeValue: nameSchema.nullable().optional(),
    period: capPeriod,
    limit: usdLimitSchema,
    alerts: alertsSchema.optional(),
    hard: z.boolean().optional(),
    allDevices: z.boolean().optional(),
  })
  .superRefine((cap, ctx) => {
    const hasValue = cap.scopeValue !== undefined && cap.scopeValue !== null;
    if (cap.scope === 'global' && hasValue) {
      ctx.addIssue({ code: 'custom', path: ['scopeValue'], message: 'must be empty for a global cap' });
    }
    if (cap.scope !== 'global' && !hasValue) {
      ctx.addIssue({ code: 'custom', path: ['scopeValue'], message: `is required for a ${cap.scope} cap` });
    }
  });

const usageRecord = boundedRecord(
  z.union([z.number().finite().min(0).max(MAX_COUNT), z.string().max(64)]),
  64,
);

const quoteInput = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('usage'),
    model: nameSchema,
    usage: usageRecord,
    params: boundedRecord(z.union([z.string().max(200), z.number().finite(), z.boolean()]), 64).optional(),
  }),
  z.strictObject({
    kind: z.literal('request'),
    provider: nameSchema,
    body: boundedJson,
    path: z.string().max(500).optional(),
  }),
  z.strictObject({
    kind: z.literal('workflow'),
    text: z.string().min(1, 'must not be empty').max(MAX_DOCUMENT_CHARS, `must be at most ${MAX_DOCUMENT_CHARS} characters`),
    filename: nameSchema.optional(),
  }),
]);

const workload = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('chat'),
    calls: positiveCount,
    inputTokens: count,
    outputTokens: count,
    cachedInputTokens: count.optional(),
  }),
  z.strictObject({
    kind: z.literal('image'),
    count: positiveCount,
    size: z.string().max(32).optional(),
    quality: z.string().max(32).optional(),
  }),
  z.strictObject({
    kind: z.literal('video'),
    seconds: z.number().finite().positive().max(MAX_COUNT),
    resolution: z.string().max(32).optional(),
    audio: z.boolean().optional(),
    count: positiveCount.optional(),
  }),
  z.strictObject({
    kind: z.literal('upscale'),
    count: positiveCount,
    megapixels: positiveDecimalSchema,
    factor: z.number().finite().positive().max(16).optional(),
  }),
  z.strictObject({
    kind: z.literal('replay'),
    period: z.enum(['day', 'week', 'month']),
    from: isoDateOrDateTime.optional(),
    to: isoDateOrDateTime.optional(),
  }),
]);

const volumeTier = z.strictObject({
  upTo: intInRange(1, Number.MAX_SAFE_INTEGER).nullable(),
  price: usdPriceSchema,
});

const tierPlan = z
  .strictObject({
    id: idSchema.optional(),
    provider: nameSchema,
    model: nameSchema.nullable(),
    unit: z.enum(['image', 'request', 'second', 'megapixel', 'token']),
    mode: z.enum(['graduated', 'volume']),
    period: z.enum(['month', 'week', 'day']),
    tiers: z.array(volumeTier).min(1, 'must have at least one tier').max(50),
  })
  .superRefine((plan, ctx) => {
    let previous = 0;
    plan.tiers.forEach((tier, i) => {
      const last = i === plan.tiers.length - 1;
      if (tier.upTo === null && !last) {
        ctx.addIssue({ code: 'custom', path: ['tiers', i, 'upTo'], message: 'only the last tier may be unbounded' });
      }
      if (tier.upTo !== null) {
        if (tier.upTo <= previous) {
          ctx.addIssue({ code: 'custom', path: ['tiers', i, 'upTo'], message: 'tier bounds must increase' });
        }
        previous = tier.upTo;
      }
    });
  });

const lockRange = z
  .strictObject({
    provider: nameSchema,
    model: nameSchema.nullable().optional(),
    from: isoDateOrDateTime.nullable().optional(),
    to: isoDateOrDateTime.nullable().optional(),
  })
  .refine((l) => !l.from || !l.to || Date.parse(l.from) <= Date.parse(l.to), {
    message: '"from" must not be after "to"',
    path: ['to'],
  });

const report = z
  .strictObject({
    by: reportBy,
    period: z.enum(['today', 'week', 'month', 'all']).optional(),
    from: isoDateOrDateTime.optional(),
    to: isoDateOrDateTime.optional(),
  })
  .refine((r) => !r.from || !r.to || Date.parse(r.from) <= Date.parse(r.to), {
    message: '"from" must not be after "to"',
    path: ['to'],
  });

/** `"provider:model"` as the compare view sends it. */
const qualifiedModel = z
  .string()
  .max(2 * MAX_NAME + 1)
  .regex(/^[^:\s]+:\S.*$/, 'must be "provider:model"')
  .refine((s) => !CONTROL_CHARS.test(s), 'must not contain control characters');

const dateText = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date, YYYY-MM-DD')
  .refine((d) => new Date(d + 'T00:00:00Z').toISOString().slice(0, 10) === d, 'must be a calendar date');
const periodText = z.string().max(10).regex(/^\d{4}-(W\d{2}|\d{2}|\d{2}-\d{2})$/, 'must be a day (2026-11-30), an ISO week (2026-W48) or a month (2026-11)');
const percentText = z.string().max(12).regex(/^(?:0|[1-9]\d{0,3})(?:\.\d{1,4})?$/, 'must be a percentage like "15" or "12.5"');
const feeText = z.string().max(16).regex(/^(?:0|[1-9]\d{0,9})(?:\.\d{1,2})?$/, 'must be an amount in USD with at most 2 decimals, e.g. "5" or "7.50"');

export const apiArgSchemas: { [M in ApiMethod]: z.ZodType<ApiArg<M>> } = {
  overview: optionalObject({ groupBy: groupBy.optional(), granularity: granularity.optional() }),
  calls: optionalObject({
    limit: listLimit.optional(),
    beforeId: idSchema.optional(),
    provider: nameSchema.optional(),
    model: nameSchema.optional(),
    project: nameSchema.optional(),
    status: callStatus.optional(),
    workflow: nameSchema.optional(),
    modelContains: searchSchema.optional(),
    projectContains: searchSchema.optional(),
    from: isoDateOrDateTime.optional(),
    to: isoDateOrDateTime.optional(),
  }),
  call: z.strictObject({ id: idSchema }),
  runs: optionalObject({ limit: listLimit.optional() }),
  report,
  caps: emptyArg,
  setCap: capInput,
  removeCap: z.strictObject({ id: idSchema }),
  alerts: optionalObject({ limit: listLimit.optional() }),
  pause: emptyArg,
  resume: emptyArg,
  keys: emptyArg,
  usageBy: z.strictObject({ by: z.enum(['key', 'project']) }),
  addKey: z.strictObject({
    name: nameSchema,
    provider: nameSchema,
    project: nameSchema.nullable().optional(),
    // Pasted keys often carry a trailing newline: trim, then refuse anything key-unlike.
    secret: z
      .string()
      .trim()
      .min(1, 'must not be empty')
      .max(4_096, 'must be at most 4096 characters')
      .refine((s) => !/\s/.test(s) && !CONTROL_CHARS.test(s), 'must not contain spaces or control characters'),
  }),
  revokeKey: z.strictObject({ id: idSchema }),
  prices: optionalObject({ provider: nameSchema.optional(), search: searchSchema.optional(), limit: listLimit.optional() }),
  priceData: emptyArg,
  overrides: emptyArg,
  setOverride: z.strictObject({
    provider: nameSchema,
    model: nameSchema,
    prices: boundedRecord(usdPriceSchema, 64).refine((p) => Object.keys(p).length > 0, 'must set at least one price'),
    note: noteSchema.nullable().optional(),
  }),
  removeOverride: z.strictObject({ id: idSchema }),
  reprice: z.strictObject({ provider: nameSchema, model: nameSchema }),
  locks: emptyArg,
  addLock: lockRange,
  removeLock: z.strictObject({ id: idSchema }),
  tiers: emptyArg,
  setTiers: tierPlan,
  removeTiers: z.strictObject({ id: idSchema }),
  unpriced: emptyArg,
  quote: quoteInput,
  compare: z.strictObject({
    workload,
    models: z.array(qualifiedModel).min(1, 'must name at least one model').max(100, 'must name at most 100 models'),
  }),
  settings: emptyArg,
  updateSettings: optionalObject({
    timeZone: timeZoneSchema.optional(),
    weekStart: z.union([z.literal(1), z.literal(7)], { error: 'must be 1 (Monday) or 7 (Sunday)' }).optional(),
    storePrompts: z.boolean().optional(),
    failOpen: z.boolean().optional(),
  }),
  credits: emptyArg,
  addCredit: z.strictObject({
    provider: nameSchema,
    amount: usdLimitSchema,
    expires: dateText,
    effective: dateText.nullable().optional(),
    priority: z.number().int('must be a whole number').min(0, 'must be 0 to 100').max(100, 'must be 0 to 100').optional(),
    promo: z.boolean().optional(),
    note: noteSchema.nullable().optional(),
  }),
  removeCredit: z.strictObject({ id: idSchema }),
  creditMovements: optionalObject({
    provider: nameSchema.optional(),
    days: z.number().int('must be a whole number').min(1, 'must be 1 to 366').max(366, 'must be 1 to 366').optional(),
    limit: listLimit.optional(),
  }),
  statement: z.strictObject({
    project: nameSchema,
    period: periodText,
    markup: percentText.nullable().optional(),
    fee: feeText.nullable().optional(),
    format: z.enum(['json', 'csv', 'html'], { error: 'must be json, csv or html' }).optional(),
    graceHours: z.number().int('must be a whole number of hours').min(0, 'must be 0 to 2160 hours (90 days)').max(2160, 'must be 0 to 2160 hours (90 days)').optional(),
  }),
  statements: optionalObject({ project: nameSchema.optional() }),
  reconcile: z.strictObject({
    provider: z.enum(['openai', 'anthropic', 'openrouter'], { error: 'must be openai, anthropic or openrouter' }),
    csv: z.string().max(MAX_DOCUMENT_CHARS, 'is too large (at most 5,000,000 characters; split the export by month)'),
  }),
  syncStatus: optionalObject({ refresh: z.boolean().optional() }),
  syncJoin: z.strictObject({
    url: z.string().trim().min(1, 'must not be empty').max(2048).refine((s) => !CONTROL_CHARS.test(s), 'must not contain control characters'),
    code: z.string().trim().min(4, 'must be an enrolment code').max(64).refine((s) => /^[A-Za-z0-9-]+$/.test(s), 'must be an enrolment code (letters, digits, dashes)'),
    name: nameSchema.optional(),
    insecure: z.boolean().optional(),
  }),
  syncNow: emptyArg,
  syncLeave: emptyArg,
};

// ---------------------------------------------------------------------------------------------
// Entry points

const METHOD_SET: ReadonlySet<string> = new Set(API_METHODS);

export function isApiMethod(x: unknown): x is ApiMethod {
  return typeof x === 'string' && METHOD_SET.has(x);
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'symbol' ? p.toString() : String(p))).join('.');
}

/** Validate the argument of `m`; returns the parsed (trimmed, defaulted) value or throws `ValidationError`. */
export function parseApiArg<M extends ApiMethod>(m: M, raw: unknown): ApiArg<M> {
  if (!isApiMethod(m)) {
    const shown = typeof m === 'string' ? JSON.stringify((m as string).slice(0, 60)) : typeof m;
    throw new ValidationError([{ path: '', message: `unknown method ${shown}` }]);
  }
  const schema = apiArgSchemas[m] as z.ZodType<ApiArg<M>>;
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const issues = result.error.issues.slice(0, 20).map((issue) => ({ path: formatPath(issue.path), message: issue.message }));
  throw new ValidationError(issues, m);
}
