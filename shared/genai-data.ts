/**
 * The genai-prices data format (what @pydantic/genai-prices publishes as its data file: an array of
 * Provider objects, see node_modules/@pydantic/genai-prices/dist/index.d.ts), validated with zod so
 * a user's `tollgate prices update --from FILE` is refused with a clear reason before anything
 * changes. Pure: the engine reads the file and passes the parsed JSON in.
 *
 * Unknown keys are kept (a newer file may carry fields this build does not use); what the pricer
 * reads is checked: ids, match logic, prices (finite, non-negative; tiers with whole-number starts)
 * and price constraints (start_date / time_of_date, with the legacy untyped form normalised the way
 * the library does; a time_of_date window may also name its `weekdays` and `except_dates`, which
 * Tollgate's supplement uses for DeepSeek's weekday-only peak hours).
 */
import { z } from 'zod';
import type { MatchLogic, Provider } from '@pydantic/genai-prices';

const price = z.number({ error: 'must be a number' }).finite().nonnegative('must not be negative');
const tiered = z.looseObject({
  base: price,
  tiers: z.array(z.looseObject({ start: z.number().int('must be a whole number').nonnegative(), price })).max(64),
});
const modelPrice = z.record(z.string(), z.union([price, tiered], { error: 'must be a price (a non-negative number) or {base, tiers}' }).optional());

const matchLogic: z.ZodType<MatchLogic> = z.lazy(() =>
  z.union([
    z.strictObject({ equals: z.string() }),
    z.strictObject({ starts_with: z.string() }),
    z.strictObject({ ends_with: z.string() }),
    z.strictObject({ contains: z.string() }),
    z.strictObject({
      regex: z.string().refine((r) => {
        try {
          new RegExp(r);
          return true;
        } catch {
          return false;
        }
      }, 'must be a valid regular expression'),
    }),
    z.strictObject({ or: z.array(matchLogic).min(1) }),
    z.strictObject({ and: z.array(matchLogic).min(1) }),
  ], { error: 'must be match logic ({equals}, {starts_with}, {ends_with}, {contains}, {regex}, {or}, {and})' }),
);

const date = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date YYYY-MM-DD').refine((d) => !Number.isNaN(Date.parse(d + 'T00:00:00Z')), 'must be a real date');
const time = z.string().regex(/^\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:\d{2})?$/, 'must be a time HH:MM[:SS][Z]');
const constraint = z.union([
  z.strictObject({ type: z.literal('start_date'), start_date: date }),
  z.strictObject({
    type: z.literal('time_of_date'), start_time: time, end_time: time,
    // Tollgate's extension (the supplement's DeepSeek peak hours): the window applies only on these
    // ISO weekdays (1 = Monday … 7 = Sunday) of the UTC date, and not on the listed UTC dates
    weekdays: z.array(z.number().int().min(1).max(7)).min(1).max(7).optional(),
    except_dates: z.array(date).max(1000).optional(),
  }),
  z.strictObject({ start_date: date }).transform((c) => ({ type: 'start_date' as const, start_date: c.start_date })),
  z.strictObject({ start_time: time, end_time: time }).transform((c) => ({ type: 'time_of_date' as const, start_time: c.start_time, end_time: c.end_time })),
], { error: 'must be a start_date or a time_of_date constraint' });

const modelInfo = z.looseObject({
  id: z.string().min(1, 'must not be empty'),
  name: z.string().optional(),
  match: matchLogic,
  context_window: z.number().int().positive().optional(),
  prices: z.union([
    z.array(z.looseObject({ constraint: constraint.optional(), prices: modelPrice })).min(1, 'must list at least one price set'),
    modelPrice,
  ]),
});

const provider = z.looseObject({
  id: z.string().min(1, 'must not be empty'),
  name: z.string(),
  api_pattern: z.string(),
  pricing_urls: z.array(z.string()).optional(),
  fallback_model_providers: z.array(z.string()).optional(),
  models: z.array(modelInfo),
});

export const genaiDataSchema = z.array(provider, { error: 'must be an array of providers (the genai-prices data format)' }).min(1, 'must list at least one provider');

export class GenaiDataError extends Error {
  constructor(message: string, readonly issues: { path: string; message: string }[]) {
    super(message);
  }
}

function formatPath(path: PropertyKey[], data: unknown): string {
  // name the provider and model by id where possible: "[3] (openai).models[12] (gpt-5)"
  let out = '';
  let node: unknown = data;
  for (const p of path) {
    if (typeof p === 'number') {
      out += `[${p}]`;
      node = Array.isArray(node) ? node[p] : undefined;
      const id = node && typeof node === 'object' && typeof (node as { id?: unknown }).id === 'string' ? (node as { id: string }).id : null;
      if (id) out += ` (${id})`;
    } else {
      out += out ? `.${String(p)}` : String(p);
      node = node && typeof node === 'object' ? (node as Record<PropertyKey, unknown>)[p] : undefined;
    }
  }
  return out || '(top level)';
}

/** Validate genai-prices data (parsed JSON); throws GenaiDataError naming what is wrong and where. */
export function parseGenaiData(json: unknown): Provider[] {
  const r = genaiDataSchema.safeParse(json);
  if (r.success) {
    const ids = new Set<string>();
    for (const p of r.data) {
      if (ids.has(p.id)) throw new GenaiDataError(`provider "${p.id}" is listed twice`, [{ path: p.id, message: 'listed twice' }]);
      ids.add(p.id);
    }
    return r.data as unknown as Provider[];
  }
  const issues = r.error.issues.slice(0, 10).map((i) => ({ path: formatPath(i.path, json), message: i.message }));
  const more = r.error.issues.length > 3 ? ` (+${r.error.issues.length - 3} more)` : '';
  throw new GenaiDataError(issues.slice(0, 3).map((i) => `${i.path}: ${i.message}`).join('; ') + more, issues);
}

/** A short summary of a data set: provider and model counts, and the newest price start date in it. */
export function summarizeGenaiData(providers: readonly Provider[]): { providers: number; models: number; newestPriceDate: string | null } {
  let models = 0;
  let newest: string | null = null;
  for (const p of providers) {
    models += p.models.length;
    for (const m of p.models) {
      if (!Array.isArray(m.prices)) continue;
      for (const cp of m.prices) {
        const d = cp.constraint && cp.constraint.type === 'start_date' ? cp.constraint.start_date : null;
        if (d && (!newest || d > newest)) newest = d;
      }
    }
  }
  return { providers: providers.length, models, newestPriceDate: newest };
}
