/**
 * An in-memory TollgateBridge with plausible, deterministic data (seeded PRNG). Used by the UI
 * with `#mock=1`, by test/e2e/ui-mock.test.ts (in the browser and behind a fake control API in
 * node), and usable by later e2e tests. No DOM, no node APIs: runs in both.
 *
 * Money is exact here too: nano-USD bigints, converted to decimal strings at the boundary.
 */
import type {
  CreditGrantInfo,
  Alert,
  Cap,
  CallRecord,
  CallStatus,
  CapInput,
  CapStatus,
  CompareRow,
  EngineEvent,
  LineItem,
  LocalKey,
  Overview,
  PriceOverride,
  PriceRow,
  QuoteItem,
  RateLock,
  ReportGroup,
  RunSummary,
  SeriesPoint,
  Settings,
  TollgateBridge,
  UnpricedModel,
  VolumeTierPlan,
  Workload,
} from '../../../shared/api.ts';
import { nanoToUsd, usdToNano } from '../format.ts';
import { divHalfEven, lineCost as exactLineCost, parseDecimal, type Ratio } from '../../../shared/money.ts';
import { ApiCallError } from './errors.ts';

export interface MockOptions {
  seed?: number;
  /** number of historical calls (default 2400; the calls view copes with 100,000+) */
  calls?: number;
  /** start with an empty ledger (teaching empty states) */
  empty?: boolean;
  /** emit a new call every N ms (0 = off; drive it with simulateCall()) */
  liveIntervalMs?: number;
  /** fixed "now" for reproducible data */
  now?: number;
}

export interface MockBridge extends TollgateBridge {
  /** append a new call now (as the proxy would) and emit the events */
  simulateCall(partial?: { model?: string; project?: string | null; costUsd?: string }): CallRecord;
  /** number of calls in the ledger */
  readonly size: number;
  stop(): void;
}

// ---------- deterministic randomness ----------
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pickWeighted<T>(rnd: () => number, entries: [T, number][]): T {
  const total = entries.reduce((s, [, w]) => s + w, 0);
  let r = rnd() * total;
  for (const [v, w] of entries) {
    r -= w;
    if (r < 0) return v;
  }
  return entries[entries.length - 1]![0];
}

function hex(rnd: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(rnd() * 16).toString(16);
  return s;
}

/** UUIDv7-shaped id: sorts by time, then by a per-ms counter. */
function uuid7(ts: number, seq: number, rnd: () => number): string {
  const t = ts.toString(16).padStart(12, '0');
  const s = (seq & 0xfff).toString(16).padStart(3, '0');
  return `${t.slice(0, 8)}-${t.slice(8, 12)}-7${s}-${(8 + Math.floor(rnd() * 4)).toString(16)}${hex(rnd, 3)}-${hex(rnd, 12)}`;
}

// ---------- exact money helpers (shared/money.ts) ----------
const DEC = /^(\d+)(?:\.(\d+))?$/;
/** A plain non-negative decimal from user input, as an exact ratio. */
function ratio(q: string): Ratio {
  if (!DEC.test(q)) throw new ApiCallError({ code: 'E_VALIDATION', message: `not a decimal: ${q}` });
  return parseDecimal(q);
}
function lineCost(quantity: string, unitPrice: string, per: number): bigint {
  return exactLineCost(ratio(quantity), parseDecimal(unitPrice), BigInt(per));
}
const usd = nanoToUsd;

// ---------- catalog ----------
interface MockPrice {
  key: string;
  label: string;
  unitPrice: string;
  per: number;
  unit: string;
}
interface MockModel {
  provider: string;
  model: string;
  name: string;
  kind: PriceRow['kind'];
  prices: MockPrice[];
}

const tok = (input: string, output: string, cache?: string): MockPrice[] => [
  { key: 'input_mtok', label: 'Input', unitPrice: input, per: 1_000_000, unit: 'token' },
  ...(cache ? [{ key: 'cache_read_mtok', label: 'Cache reads', unitPrice: cache, per: 1_000_000, unit: 'token' }] : []),
  { key: 'output_mtok', label: 'Output', unitPrice: output, per: 1_000_000, unit: 'token' },
];

const CATALOG: MockModel[] = [
  { provider: 'openai', model: 'gpt-4o-mini', name: 'GPT-4o mini', kind: 'token', prices: tok('0.15', '0.6', '0.075') },
  { provider: 'openai', model: 'gpt-4.1', name: 'GPT-4.1', kind: 'token', prices: tok('2', '8', '0.5') },
  { provider: 'openai', model: 'gpt-4.1-mini', name: 'GPT-4.1 mini', kind: 'token', prices: tok('0.4', '1.6', '0.1') },
  { provider: 'openai', model: 'o4-mini', name: 'o4-mini', kind: 'token', prices: tok('1.1', '4.4', '0.275') },
  {
    provider: 'openai', model: 'gpt-image-1', name: 'GPT Image 1', kind: 'image',
    prices: [
      { key: 'image_low', label: 'Image 1024x1024 low', unitPrice: '0.011', per: 1, unit: 'image' },
      { key: 'image_medium', label: 'Image 1024x1024 medium', unitPrice: '0.042', per: 1, unit: 'image' },
      { key: 'image_high', label: 'Image 1024x1024 high', unitPrice: '0.167', per: 1, unit: 'image' },
    ],
  },
  { provider: 'anthropic', model: 'claude-sonnet-4-5', name: 'Claude Sonnet 4.5', kind: 'token', prices: tok('3', '15', '0.3') },
  { provider: 'anthropic', model: 'claude-haiku-4-5', name: 'Claude Haiku 4.5', kind: 'token', prices: tok('1', '5', '0.1') },
  { provider: 'anthropic', model: 'claude-opus-4-1', name: 'Claude Opus 4.1', kind: 'token', prices: tok('15', '75', '1.5') },
  { provider: 'gemini', model: 'gemini-2.5-flash', name: 'Gemini 2.5 Flash', kind: 'token', prices: tok('0.3', '2.5', '0.075') },
  { provider: 'gemini', model: 'gemini-2.5-pro', name: 'Gemini 2.5 Pro', kind: 'token', prices: tok('1.25', '10', '0.31') },
  { provider: 'gemini', model: 'imagen-4', name: 'Imagen 4', kind: 'image', prices: [{ key: 'image', label: 'Image', unitPrice: '0.04', per: 1, unit: 'image' }] },
  {
    provider: 'gemini', model: 'veo-3', name: 'Veo 3', kind: 'video',
    prices: [
      { key: 'second_audio', label: 'Video with audio', unitPrice: '0.75', per: 1, unit: 'second' },
      { key: 'second', label: 'Video', unitPrice: '0.5', per: 1, unit: 'second' },
    ],
  },
  { provider: 'openrouter', model: 'deepseek/deepseek-chat-v3', name: 'DeepSeek V3', kind: 'token', prices: tok('0.27', '1.1') },
  { provider: 'openrouter', model: 'meta-llama/llama-3.3-70b-instruct', name: 'Llama 3.3 70B', kind: 'token', prices: tok('0.13', '0.4') },
  { provider: 'fal', model: 'fal-ai/flux-pro/v1.1', name: 'FLUX1.1 [pro]', kind: 'image', prices: [{ key: 'image', label: 'Image', unitPrice: '0.04', per: 1, unit: 'image' }] },
  { provider: 'fal', model: 'fal-ai/kling-video/v2.1/pro', name: 'Kling 2.1 Pro', kind: 'video', prices: [{ key: 'second', label: 'Video', unitPrice: '0.095', per: 1, unit: 'second' }] },
  { provider: 'fal', model: 'fal-ai/clarity-upscaler', name: 'Clarity Upscaler', kind: 'upscale', prices: [{ key: 'megapixel', label: 'Output megapixels', unitPrice: '0.03', per: 1, unit: 'megapixel' }] },
  { provider: 'replicate', model: 'black-forest-labs/flux-schnell', name: 'FLUX.1 [schnell]', kind: 'image', prices: [{ key: 'image', label: 'Image', unitPrice: '0.003', per: 1, unit: 'image' }] },
  { provider: 'replicate', model: 'nightmareai/real-esrgan', name: 'Real-ESRGAN', kind: 'upscale', prices: [{ key: 'megapixel', label: 'Output megapixels', unitPrice: '0.0023', per: 1, unit: 'megapixel' }] },
];

const UNPRICED_MODEL = { provider: 'openrouter', model: 'acme/support-finetune-v2' };

function catalogSource(m: MockModel): PriceRow['source'] {
  const media = m.kind !== 'token';
  return media
    ? { kind: 'catalog', catalog: 'tollgate-media@2026-11-25.1', asOf: '2026-11-25', url: `https://${m.provider === 'fal' ? 'fal.ai/models' : m.provider === 'replicate' ? 'replicate.com' : m.provider === 'gemini' ? 'ai.google.dev/pricing' : 'openai.com/api/pricing'}/` }
    : { kind: 'catalog', catalog: 'genai-prices@0.1.8', asOf: '2026-11-20', url: 'https://github.com/pydantic/genai-prices' };
}

function findModel(id: string): MockModel | undefined {
  const i = id.indexOf(':');
  if (i > 0) {
    const p = id.slice(0, i);
    const m = id.slice(i + 1);
    return CATALOG.find((c) => c.provider === p && c.model === m);
  }
  return CATALOG.find((c) => c.model === id);
}

function priceOf(m: MockModel, key: string): MockPrice {
  return m.prices.find((p) => p.key === key) ?? m.prices[0]!;
}

// ---------- pricing a call ----------
function tokenItems(m: MockModel, input: number, output: number, cached: number, source: string): LineItem[] {
  const items: LineItem[] = [];
  const add = (label: string, qty: number, key: string) => {
    if (qty <= 0) return;
    const p = priceOf(m, key);
    items.push({ label, quantity: String(qty), unit: 'token', per: p.per, unitPrice: p.unitPrice, cost: usd(lineCost(String(qty), p.unitPrice, p.per)), source });
  };
  add('Input tokens', input - cached, 'input_mtok');
  if (cached > 0 && m.prices.some((p) => p.key === 'cache_read_mtok')) add('Cache reads', cached, 'cache_read_mtok');
  add('Output tokens', output, 'output_mtok');
  return items;
}

function mediaItem(m: MockModel, key: string, qty: string, label: string | undefined, source: string): LineItem {
  const p = priceOf(m, key);
  return { label: label ?? p.label, quantity: qty, unit: p.unit, per: p.per, unitPrice: p.unitPrice, cost: usd(lineCost(qty, p.unitPrice, p.per)), source };
}

const sumItems = (items: LineItem[]): bigint => items.reduce((s, i) => s + usdToNano(i.cost), 0n);

// ---------- time helpers (local time of the runtime) ----------
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
function startOfDay(ts: number): number {
  const d = new Date(ts);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}
function addDays(ts: number, n: number): number {
  const d = new Date(ts);
  d.setDate(d.getDate() + n);
  return d.getTime();
}
function startOfWeek(ts: number, weekStart: 1 | 7): number {
  const d = new Date(startOfDay(ts));
  const dow = d.getDay(); // 0 = Sunday
  const back = weekStart === 1 ? (dow + 6) % 7 : dow;
  return addDays(d.getTime(), -back);
}
function startOfMonth(ts: number): number {
  const d = new Date(ts);
  return new Date(d.getFullYear(), d.getMonth(), 1).getTime();
}
function addMonths(ts: number, n: number): number {
  const d = new Date(ts);
  return new Date(d.getFullYear(), d.getMonth() + n, 1).getTime();
}
function periodKey(period: Cap['period'], start: number): string {
  const d = new Date(start);
  const y = d.getFullYear();
  const mo = String(d.getMonth() + 1).padStart(2, '0');
  if (period === 'month') return `${y}-${mo}`;
  if (period === 'day') return `${y}-${mo}-${String(d.getDate()).padStart(2, '0')}`;
  if (period === 'week') return `${y}-W${String(Math.ceil(((start - new Date(y, 0, 1).getTime()) / DAY + 1) / 7)).padStart(2, '0')}`;
  return 'total';
}

// ---------- the mock ----------
export function createMockBridge(options: MockOptions = {}): MockBridge {
  const rnd = mulberry32(options.seed ?? 42);
  const now0 = options.now ?? Date.now();
  const clock = () => (options.now !== undefined ? Math.max(options.now, Date.now()) : Date.now());
  let seq = 0;

  const settings: Settings = {
    dataDir: '~/Library/Application Support/Tollgate',
    port: 4747,
    timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone,
    weekStart: 1,
    currencyDisplay: 'USD',
    storePrompts: false,
    failOpen: false,
    proxyUrl: 'http://127.0.0.1:4747',
    version: '0.1.0 (mock)',
  };

  const keys: LocalKey[] = [
    { id: 'key_01', name: 'acme-backend', provider: 'openai', project: 'acme', prefix: 'tgk_7Hq2', fingerprint: 'sha256:3f9a…c21e', createdAt: now0 - 38 * DAY, revokedAt: null },
    { id: 'key_02', name: 'claude-code laptop', provider: 'anthropic', project: null, prefix: 'tgk_Lm9x', fingerprint: 'sha256:a07d…9b4f', createdAt: now0 - 21 * DAY, revokedAt: null },
    { id: 'key_03', name: 'thumbnail pipeline', provider: 'fal', project: 'side-project', prefix: 'tgk_Q2zt', fingerprint: 'sha256:e1c4…5d80', createdAt: now0 - 12 * DAY, revokedAt: null },
    { id: 'key_04', name: 'old gemini key', provider: 'gemini', project: 'internal-tools', prefix: 'tgk_b8Rv', fingerprint: 'sha256:77de…0a13', createdAt: now0 - 60 * DAY, revokedAt: now0 - 9 * DAY },
  ];

  const modelWeights: [string, number][] = [
    ['openai:gpt-4o-mini', 30], ['anthropic:claude-sonnet-4-5', 18], ['gemini:gemini-2.5-flash', 14], ['openai:gpt-4.1', 8],
    ['anthropic:claude-haiku-4-5', 8], ['openrouter:deepseek/deepseek-chat-v3', 5], ['gemini:gemini-2.5-pro', 4],
    ['anthropic:claude-opus-4-1', 1.2], ['openai:gpt-image-1', 3], ['fal:fal-ai/flux-pro/v1.1', 3],
    ['fal:fal-ai/kling-video/v2.1/pro', 0.6], ['fal:fal-ai/clarity-upscaler', 1], ['unpriced', 0.8],
  ];
  const projectWeights: [string | null, number][] = [['acme', 40], ['internal-tools', 25], ['side-project', 15], [null, 20]];
  const endpointOf: Record<string, string> = { openai: 'chat.completions', anthropic: 'messages', gemini: 'generateContent', openrouter: 'chat.completions', fal: 'fal', replicate: 'predictions' };

  function makeCall(ts: number, r: () => number, fixed: { model?: string; project?: string | null; workflow?: string; run?: string; node?: string; status?: CallStatus } = {}): CallRecord {
    const modelId = fixed.model ?? pickWeighted(r, modelWeights);
    const project = fixed.project !== undefined ? fixed.project : pickWeighted(r, projectWeights);
    const m = modelId === 'unpriced' ? undefined : findModel(modelId);
    const provider = m?.provider ?? UNPRICED_MODEL.provider;
    const model = m?.model ?? UNPRICED_MODEL.model;
    const key = keys.find((k) => k.provider === provider && k.revokedAt === null);
    let status: CallStatus = fixed.status ?? pickWeighted<CallStatus>(r, [['ok', 94], ['error', 3], ['blocked', 1.5], ['interrupted', 1.5]]);
    const source = m ? catalogSource(m).catalog : '';
    let usage: Record<string, number | string> = {};
    let items: LineItem[] = [];
    let estimated = false;
    let durationMs: number | null = 400 + Math.floor(r() * 9000);
    let ttfbMs: number | null = 150 + Math.floor(r() * 900);
    if (!m) {
      const input = 800 + Math.floor(r() * 4000);
      const output = 100 + Math.floor(r() * 700);
      usage = { input_tokens: input, output_tokens: output };
    } else if (m.kind === 'token') {
      const input = Math.floor(400 + r() * r() * 24000);
      const output = Math.floor(60 + r() * r() * 2400);
      const cached = r() < 0.35 ? Math.floor(input * (0.4 + r() * 0.5)) : 0;
      usage = { input_tokens: input, output_tokens: output, ...(cached ? { cache_read_tokens: cached } : {}) };
      items = tokenItems(m, input, status === 'interrupted' ? Math.floor(output / 3) : output, cached, source);
      if (status === 'interrupted') estimated = true;
    } else if (m.kind === 'image') {
      const n = 1 + Math.floor(r() * r() * 4);
      const key = m.prices.length > 1 ? pickWeighted(r, [['image_low', 2], ['image_medium', 5], ['image_high', 2]]) : 'image';
      usage = { images: n, size: '1024x1024', ...(key.startsWith('image_') ? { quality: key.slice(6) } : {}) };
      items = [mediaItem(m, key, String(n), undefined, source)];
      ttfbMs = null;
      if (status === 'interrupted') status = 'ok';
    } else if (m.kind === 'video') {
      const secs = pickWeighted(r, [['5', 3], ['10', 1]]);
      usage = { seconds: secs, resolution: '1080p' };
      items = [mediaItem(m, m.prices[0]!.key, secs, undefined, source)];
      durationMs = 40_000 + Math.floor(r() * 80_000);
      ttfbMs = null;
      if (status === 'interrupted') status = 'ok';
    } else {
      const mp = ['4.2', '8.4', '16.8'][Math.floor(r() * 3)]!;
      usage = { images: 1, output_megapixels: mp };
      items = [mediaItem(m, 'megapixel', mp, `Output ${mp} MP`, source)];
      ttfbMs = null;
      if (status === 'interrupted') status = 'ok';
    }
    let cost = sumItems(items);
    let error: string | null = null;
    let blockedBy: string | null = null;
    let httpStatus: number | null = 200;
    if (status === 'error') {
      httpStatus = r() < 0.6 ? 429 : 500;
      error = httpStatus === 429 ? 'Rate limit reached for requests (429)' : 'Upstream returned 500: internal server error';
      items = [];
      cost = 0n;
      durationMs = 200 + Math.floor(r() * 800);
      ttfbMs = null;
    } else if (status === 'blocked') {
      blockedBy = project === 'acme' ? 'cap:project:acme month' : 'cap:global month';
      error = `Blocked by ${blockedBy}: spending cap reached`;
      httpStatus = 402;
      items = [];
      cost = 0n;
      durationMs = 2;
      ttfbMs = null;
    } else if (status === 'interrupted') {
      error = 'Client disconnected mid-stream; output tokens estimated from the streamed text';
      httpStatus = 200;
    }
    const call: CallRecord = {
      id: uuid7(ts, seq++, r),
      ts,
      provider,
      model,
      endpoint: endpointOf[provider] ?? 'request',
      project,
      workflow: fixed.workflow ?? null,
      run: fixed.run ?? null,
      node: fixed.node ?? null,
      keyFingerprint: key?.fingerprint ?? null,
      keyName: key?.name ?? null,
      status,
      httpStatus,
      stream: m?.kind === 'token' ? r() < 0.6 : false,
      durationMs,
      ttfbMs,
      usage,
      items,
      cost: usd(cost),
      reserved: '0',
      estimated,
      unpriced: !m && status === 'ok',
      unpricedReason: !m && status === 'ok' ? `No price for ${provider}:${model} in genai-prices@0.1.8 or your overrides` : null,
      priceSource: m && items.length ? source : null,
      error,
      blockedBy,
    };
    return call;
  }

  // ---------- history ----------
  const count = options.empty ? 0 : options.calls ?? 2400;
  const SPAN = 45 * DAY;
  const tsList: number[] = [];
  for (let i = 0; i < count; i++) tsList.push(now0 - Math.floor(SPAN * Math.pow(rnd(), 1.35)) - 1000);
  let calls: CallRecord[] = tsList.map((ts) => makeCall(ts, rnd));

  // workflow runs: prompt → image ×4 → upscale
  const runQuotes = new Map<string, { total: bigint; nodes: Map<string, bigint> }>();
  if (!options.empty) {
    const runCount = Math.min(24, Math.max(2, Math.floor(count / 100)));
    for (let k = 0; k < runCount; k++) {
      const started = now0 - Math.floor(rnd() * 30 * DAY) - 5 * 60_000;
      const run = `run_${hex(rnd, 8)}`;
      const workflow = k % 3 === 2 ? 'product-video' : 'thumbnail-pipeline';
      const plan: [string, string, number][] = workflow === 'thumbnail-pipeline'
        ? [['prompt', 'anthropic:claude-haiku-4-5', 1], ['image', 'fal:fal-ai/flux-pro/v1.1', 4], ['upscale', 'fal:fal-ai/clarity-upscaler', 1]]
        : [['script', 'openai:gpt-4.1', 1], ['video', 'fal:fal-ai/kling-video/v2.1/pro', 2]];
      let t = started;
      const nodes = new Map<string, bigint>();
      let total = 0n;
      for (const [node, model, repeat] of plan) {
        let nodeCost = 0n;
        for (let j = 0; j < repeat; j++) {
          const c = makeCall(t, rnd, { model, project: 'side-project', workflow, run, node, status: 'ok' });
          calls.push(c);
          nodeCost += usdToNano(c.cost);
          t += 2000 + Math.floor(rnd() * 20000);
        }
        // the quote was within ±25 % of what happened
        const q = (nodeCost * BigInt(80 + Math.floor(rnd() * 45))) / 100n;
        nodes.set(node, q);
        total += q;
      }
      runQuotes.set(run, { total, nodes });
    }
  }
  calls.sort((a, b) => b.ts - a.ts || (a.id < b.id ? 1 : -1));
  let indexById = new Map<string, number>();
  const reindex = () => {
    indexById = new Map(calls.map((c, i) => [c.id, i]));
  };
  reindex();

  // ---------- caps, sized against the generated history so the bars are interesting ----------
  const spendWhere = (from: number, to: number, pred: (c: CallRecord) => boolean = () => true): bigint => {
    let s = 0n;
    for (const c of calls) {
      if (c.ts < from) break; // calls are sorted newest first
      if (c.ts < to && pred(c)) s += usdToNano(c.cost);
    }
    return s;
  };
  const roundUp = (nano: bigint, step: bigint) => (nano <= 0n ? step : ((nano + step - 1n) / step) * step);
  const roundDown = (nano: bigint, step: bigint) => (nano < step ? step : (nano / step) * step);
  const DOLLAR = 1_000_000_000n;
  const ms = startOfMonth(now0);
  const caps: Cap[] = [
    { id: 'cap_global', scope: 'global', scopeValue: null, period: 'month', limit: usd(roundUp((spendWhere(ms, Infinity) * 16n) / 10n, 10n * DOLLAR)), alerts: [50, 80, 100], hard: true, createdAt: now0 - 40 * DAY },
    { id: 'cap_acme', scope: 'project', scopeValue: 'acme', period: 'month', limit: usd(roundUp((spendWhere(ms, Infinity, (c) => c.project === 'acme') * 115n) / 100n, DOLLAR)), alerts: [50, 80, 100], hard: true, createdAt: now0 - 35 * DAY },
    { id: 'cap_openai_day', scope: 'provider', scopeValue: 'openai', period: 'day', limit: '5', alerts: [80, 100], hard: false, createdAt: now0 - 20 * DAY },
    { id: 'cap_sonnet_week', scope: 'model', scopeValue: 'claude-sonnet-4-5', period: 'week', limit: usd(roundDown(spendWhere(startOfWeek(now0, 1), Infinity, (c) => c.model === 'claude-sonnet-4-5'), DOLLAR / 4n)), alerts: [80, 100], hard: true, createdAt: now0 - 10 * DAY },
  ];
  if (options.empty) caps.splice(0, caps.length);
  let paused = false;

  const capLabel = (c: Cap) => `${c.scope}${c.scopeValue ? ':' + c.scopeValue : ''} ${c.period}`;
  const capMatches = (cap: Cap, c: CallRecord) =>
    cap.scope === 'global' ||
    (cap.scope === 'project' && c.project === cap.scopeValue) ||
    (cap.scope === 'provider' && c.provider === cap.scopeValue) ||
    (cap.scope === 'model' && (c.model === cap.scopeValue || `${c.provider}:${c.model}` === cap.scopeValue)) ||
    (cap.scope === 'workflow' && c.workflow === cap.scopeValue) ||
    (cap.scope === 'key' && (c.keyName === cap.scopeValue || c.keyFingerprint === cap.scopeValue));
  const capWindow = (cap: Cap, now: number): [number, number | null] => {
    switch (cap.period) {
      case 'day': return [startOfDay(now), addDays(startOfDay(now), 1)];
      case 'week': { const s = startOfWeek(now, settings.weekStart); return [s, addDays(s, 7)]; }
      case 'month': return [startOfMonth(now), addMonths(now, 1)];
      default: return [0, null];
    }
  };
  function capStatus(cap: Cap): CapStatus {
    const now = clock();
    const [from, resetsAt] = capWindow(cap, now);
    const spent = spendWhere(from, Infinity, (c) => capMatches(cap, c));
    const reserved = calls.filter((c) => c.status === 'pending' && capMatches(cap, c)).reduce((s, c) => s + usdToNano(c.reserved), 0n);
    const limit = usdToNano(cap.limit);
    const tenths = limit > 0n ? Number((spent * 1000n) / limit) : 0;
    return { cap, spent: usd(spent), reserved: usd(reserved), percent: tenths / 10, periodStart: from, resetsAt, blocked: cap.hard && spent + reserved >= limit };
  }
  const capStatuses = () => caps.map(capStatus);

  // alert history: thresholds crossed so far
  const alerts: Alert[] = [];
  const fired = new Set<string>();
  function checkAlerts(emitTo?: (e: EngineEvent) => void): void {
    for (const st of capStatuses()) {
      for (const th of [...st.cap.alerts].sort((a, b) => a - b)) {
        if (st.percent < th) continue;
        const pk = periodKey(st.cap.period, st.periodStart);
        const key = `${st.cap.id}|${th}|${pk}`;
        if (fired.has(key)) continue;
        fired.add(key);
        const alert: Alert = {
          id: `alert_${hex(rnd, 10)}`, capId: st.cap.id, capLabel: capLabel(st.cap), threshold: th, periodKey: pk,
          spent: emitTo ? st.spent : usd((usdToNano(st.cap.limit) * BigInt(th)) / 100n), limit: st.cap.limit, ts: emitTo ? clock() : Math.min(clock(), st.periodStart + Math.floor((clock() - st.periodStart) * (th / 100))),
          kind: th >= 100 && st.cap.hard ? 'blocked' : 'threshold',
        };
        alerts.unshift(alert);
        emitTo?.({ type: 'alert', alert });
      }
    }
    alerts.sort((a, b) => b.ts - a.ts);
  }
  checkAlerts();
  // an older alert from last month
  if (!options.empty) {
    const lm = addMonths(now0, -1);
    const lmStart = startOfMonth(lm);
    const lmLimit = caps[0]!.limit;
    const lmSpent = spendWhere(lmStart, ms);
    for (const th of [50, 80]) {
      if (lmSpent * 100n >= usdToNano(lmLimit) * BigInt(th)) {
        alerts.push({ id: `alert_prev_${th}`, capId: 'cap_global', capLabel: 'global month', threshold: th, periodKey: periodKey('month', lmStart), spent: usd((usdToNano(lmLimit) * BigInt(th)) / 100n), limit: lmLimit, ts: addDays(lmStart, th === 50 ? 14 : 23), kind: 'threshold' });
      }
    }
    alerts.sort((a, b) => b.ts - a.ts);
  }

  const overrides: PriceOverride[] = options.empty ? [] : [
    { id: 'ovr_01', provider: 'openrouter', model: 'meta-llama/llama-3.3-70b-instruct', prices: { input_mtok: '0.12', output_mtok: '0.3' }, note: 'negotiated rate via OpenRouter BYOK', createdAt: now0 - 15 * DAY },
  ];
  const locks: RateLock[] = options.empty ? [] : [
    { id: 'lock_01', provider: 'anthropic', model: 'claude-sonnet-4-5', catalog: 'genai-prices@0.1.8', prices: { 'claude-sonnet-4-5': { input_mtok: '3', output_mtok: '15', cache_read_mtok: '0.3' } }, from: now0 - 30 * DAY, to: addMonths(now0, 3), createdAt: now0 - 30 * DAY },
  ];
  const tiers: VolumeTierPlan[] = options.empty ? [] : [
    { id: 'tier_01', provider: 'fal', model: 'fal-ai/flux-pro/v1.1', unit: 'image', mode: 'graduated', period: 'month', tiers: [{ upTo: 1000, price: '0.04' }, { upTo: 10000, price: '0.035' }, { upTo: null, price: '0.03' }], createdAt: now0 - 25 * DAY },
  ];

  // ---------- events ----------
  const listeners = new Set<(e: EngineEvent) => void>();
  const emit = (e: EngineEvent) => {
    for (const l of [...listeners]) l(e);
  };

  function simulateCall(partial: { model?: string; project?: string | null; costUsd?: string } = {}): CallRecord {
    const ts = Math.max(clock(), (calls[0]?.ts ?? 0) + 1);
    let call = makeCall(ts, rnd, { ...(partial.model ? { model: partial.model } : {}), ...(partial.project !== undefined ? { project: partial.project } : {}), status: 'ok' });
    if (partial.costUsd) call = { ...call, cost: partial.costUsd, items: [{ label: 'Test charge', quantity: '1', unit: 'request', per: 1, unitPrice: partial.costUsd, cost: partial.costUsd, source: 'mock' }] };
    const blocker = paused ? 'paused' : caps.map(capStatus).find((st) => st.blocked && capMatches(st.cap, call));
    if (blocker) {
      const by = blocker === 'paused' ? 'pause' : `cap:${capLabel(blocker.cap)}`;
      call = { ...call, status: 'blocked', httpStatus: 402, items: [], cost: '0', error: blocker === 'paused' ? 'Tollgate is paused: all calls are blocked' : `Blocked by ${by}: spending cap reached`, blockedBy: by, durationMs: 1, ttfbMs: null };
    }
    calls.unshift(call);
    reindex();
    emit({ type: 'call', call });
    checkAlerts(emit);
    emit({ type: 'caps', caps: capStatuses() });
    return call;
  }

  let timer: ReturnType<typeof setInterval> | null = null;
  if (options.liveIntervalMs && options.liveIntervalMs > 0) timer = setInterval(() => simulateCall(), options.liveIntervalMs);

  // ---------- queries ----------
  const groupKey = (c: CallRecord, by: 'model' | 'provider' | 'project' | 'key' | 'workflow' | 'day'): string => {
    switch (by) {
      case 'model': return c.model ?? '(unknown)';
      case 'provider': return c.provider;
      case 'project': return c.project ?? '(no project)';
      case 'key': return c.keyName ?? '(direct)';
      case 'workflow': return c.workflow ?? '(none)';
      case 'day': { const d = new Date(c.ts); return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`; }
    }
  };
  function group(from: number, to: number, by: Parameters<typeof groupKey>[1]): ReportGroup[] {
    const m = new Map<string, { calls: number; cost: bigint }>();
    for (const c of calls) {
      if (c.ts < from) break;
      if (c.ts >= to) continue;
      const k = groupKey(c, by);
      const g = m.get(k) ?? { calls: 0, cost: 0n };
      g.calls++;
      g.cost += usdToNano(c.cost);
      m.set(k, g);
    }
    return [...m.entries()].map(([key, g]) => ({ key, calls: g.calls, cost: g.cost })).sort((a, b) => (b.cost > a.cost ? 1 : b.cost < a.cost ? -1 : b.calls - a.calls)).map((g) => ({ key: g.key, calls: g.calls, cost: usd(g.cost) }));
  }
  function period(from: number, to: number, prevFrom: number): { current: string; previous: string; calls: number } {
    let cur = 0n;
    let prev = 0n;
    let n = 0;
    for (const c of calls) {
      if (c.ts < prevFrom) break;
      if (c.ts >= from && c.ts < to) {
        cur += usdToNano(c.cost);
        n++;
      } else if (c.ts < from) prev += usdToNano(c.cost);
    }
    return { current: usd(cur), previous: usd(prev), calls: n };
  }

  const overview: MockBridge['overview'] = async ({ groupBy = 'model', granularity = 'day' }) => {
    const now = clock();
    const day = startOfDay(now);
    const week = startOfWeek(now, settings.weekStart);
    const month = startOfMonth(now);
    const last24 = spendWhere(now - DAY, Infinity);
    const burn = last24 / 24n;
    const monthEnd = addMonths(now, 1);
    const monthSpent = spendWhere(month, Infinity);
    const projected = monthSpent + (burn * BigInt(Math.floor((monthEnd - now) / 60_000))) / 60n;
    const buckets: number[] = [];
    if (granularity === 'hour') {
      const h = Math.floor(now / HOUR) * HOUR;
      for (let i = 47; i >= 0; i--) buckets.push(h - i * HOUR);
    } else {
      for (let i = 29; i >= 0; i--) buckets.push(addDays(day, -i));
    }
    const points: SeriesPoint[] = buckets.map((bucket) => ({ bucket, values: {} }));
    const acc = points.map(() => new Map<string, bigint>());
    const first = buckets[0]!;
    for (const c of calls) {
      if (c.ts < first) break;
      let idx = buckets.length - 1;
      while (idx > 0 && buckets[idx]! > c.ts) idx--;
      const k = groupKey(c, groupBy);
      const m = acc[idx]!;
      m.set(k, (m.get(k) ?? 0n) + usdToNano(c.cost));
    }
    acc.forEach((m, i) => {
      for (const [k, v] of m) if (v > 0n) points[i]!.values[k] = usd(v);
    });
    const result: Overview = {
      today: period(day, Infinity, addDays(day, -1)),
      week: period(week, Infinity, addDays(week, -7)),
      month: period(month, Infinity, addMonths(month, -1)),
      burnRatePerHour: usd(burn),
      projectedMonth: usd(projected),
      caps: capStatuses(),
      series: { granularity, groupBy, points },
      topModels: group(month, Infinity, 'model').slice(0, 6),
      topProjects: group(month, Infinity, 'project').slice(0, 6),
      alerts: alerts.slice(0, 5),
      unpricedCalls: calls.filter((c) => c.unpriced).length,
      paused,
      totalCalls: calls.length,
    };
    return clone(result);
  };

  const notFound = (what: string, id: string) => new ApiCallError({ code: 'E_NOT_FOUND', message: `${what} ${id} not found` });
  const validation = (path: string, message: string) => new ApiCallError({ code: 'E_VALIDATION', message: `${path}: ${message}`, issues: [{ path, message }] });

  function validateCap(input: CapInput): void {
    if (!/^\d+(\.\d{1,9})?$/.test(input.limit) || usdToNano(input.limit) <= 0n) throw validation('limit', 'must be a positive decimal USD amount');
    if (input.scope !== 'global' && !input.scopeValue) throw validation('scopeValue', `a ${input.scope} cap needs a value`);
    for (const a of input.alerts ?? []) if (!Number.isInteger(a) || a < 1 || a > 100) throw validation('alerts', 'thresholds are whole percents from 1 to 100');
  }

  function price(m: MockModel): PriceRow {
    const ovr = overrides.find((o) => o.provider === m.provider && o.model === m.model);
    if (ovr) {
      return {
        provider: m.provider, model: m.model, name: m.name, kind: m.kind,
        prices: m.prices.map((p) => ({ label: p.label, unitPrice: ovr.prices[p.key] ?? p.unitPrice, per: p.per, unit: p.unit })),
        source: { kind: 'override', catalog: catalogSource(m).catalog, detail: ovr.id, asOf: new Date(ovr.createdAt).toISOString().slice(0, 10) },
      };
    }
    const lock = locks.find((l) => l.provider === m.provider && (l.model === null || l.model === m.model));
    return {
      provider: m.provider, model: m.model, name: m.name, kind: m.kind,
      prices: m.prices.map(({ label, unitPrice, per, unit }) => ({ label, unitPrice, per, unit })),
      source: lock ? { ...catalogSource(m), kind: 'lock', detail: lock.id } : catalogSource(m),
    };
  }

  // ---------- quote / compare ----------
  function quoteTokens(m: MockModel, input: number, expectedOut: number, maxOut: number, node: string | null, repeat: number, notes: string[]): QuoteItem {
    const src = catalogSource(m).catalog;
    const r = BigInt(repeat);
    const min = sumItems(tokenItems(m, input, 1, 0, src)) * r;
    const items = tokenItems(m, input, expectedOut, 0, src);
    const max = sumItems(tokenItems(m, input, maxOut, 0, src)) * r;
    return { node, model: m.model, provider: m.provider, repeat, min: usd(min), expected: usd(sumItems(items) * r), max: usd(max), items, unpriced: null, notes };
  }
  function quoteMedia(m: MockModel, qty: string, node: string | null, repeat: number, key?: string): QuoteItem {
    const items = [mediaItem(m, key ?? m.prices[0]!.key, qty, undefined, catalogSource(m).catalog)];
    const cost = usd(sumItems(items) * BigInt(repeat));
    return { node, model: m.model, provider: m.provider, repeat, min: cost, expected: cost, max: cost, items, unpriced: null, notes: [] };
  }
  function unpricedItem(provider: string, model: string, node: string | null, repeat: number): QuoteItem {
    return { node, model, provider, repeat, min: '0', expected: '0', max: '0', items: [], unpriced: `No price for ${provider}:${model}`, notes: [] };
  }
  function estimateTokens(value: unknown): number {
    const text = typeof value === 'string' ? value : JSON.stringify(value ?? '');
    return Math.max(1, Math.ceil(text.length / 4));
  }

  const mockGrants: CreditGrantInfo[] = [];
  const api: MockBridge = {
    get size() {
      return calls.length;
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = null;
    },
    simulateCall,
    subscribe(listener) {
      listeners.add(listener);
      queueMicrotask(() => listener({ type: 'hello', version: settings.version }));
      return () => listeners.delete(listener);
    },
    overview,
    async calls(q) {
      const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
      let start = 0;
      if (q.beforeId) {
        const i = indexById.get(q.beforeId);
        if (i === undefined) throw notFound('call', q.beforeId);
        start = i + 1;
      }
      const out: CallRecord[] = [];
      for (let i = start; i < calls.length && out.length < limit; i++) {
        const c = calls[i]!;
        if (q.provider && c.provider !== q.provider) continue;
        if (q.model && c.model !== q.model && `${c.provider}:${c.model}` !== q.model) continue;
        if (q.project && (c.project ?? '') !== q.project) continue;
        if (q.status && c.status !== q.status) continue;
        if (q.workflow && c.workflow !== q.workflow) continue;
        out.push(c);
      }
      return clone(out);
    },
    async call({ id }) {
      const i = indexById.get(id);
      return i === undefined ? null : clone(calls[i]!);
    },
    async runs({ limit = 50 }) {
      const byRun = new Map<string, CallRecord[]>();
      for (const c of calls) if (c.run) byRun.set(c.run, [...(byRun.get(c.run) ?? []), c]);
      const out: RunSummary[] = [];
      for (const [run, cs] of byRun) {
        const q = runQuotes.get(run);
        const nodes = new Map<string, { calls: number; cost: bigint }>();
        for (const c of cs) {
          const n = nodes.get(c.node ?? '?') ?? { calls: 0, cost: 0n };
          n.calls++;
          n.cost += usdToNano(c.cost);
          nodes.set(c.node ?? '?', n);
        }
        const started = Math.min(...cs.map((c) => c.ts));
        out.push({
          workflow: cs[0]!.workflow, run, started, calls: cs.length,
          cost: usd(cs.reduce((s, c) => s + usdToNano(c.cost), 0n)),
          quoted: q ? usd(q.total) : null,
          nodes: [...nodes.entries()].sort((a, b) => a[0].localeCompare(b[0])).map(([node, n]) => ({ node, calls: n.calls, cost: usd(n.cost), quoted: q?.nodes.has(node) ? usd(q.nodes.get(node)!) : null })),
        });
      }
      return clone(out.sort((a, b) => b.started - a.started).slice(0, limit));
    },
    async report(q) {
      const now = clock();
      const from = q.from ? Date.parse(q.from) : q.period === 'today' ? startOfDay(now) : q.period === 'week' ? startOfWeek(now, settings.weekStart) : q.period === 'all' ? 0 : startOfMonth(now);
      const to = q.to ? Date.parse(q.to) : now + 1;
      const groups = group(from, to, q.by);
      const inRange = calls.filter((c) => c.ts >= from && c.ts < to);
      return { total: usd(groups.reduce((s, g) => s + usdToNano(g.cost), 0n)), calls: inRange.length, unpriced_calls: inRange.filter((c) => c.unpriced).length, from, to, groups };
    },
    async caps() {
      return clone(capStatuses());
    },
    async setCap(input) {
      validateCap(input);
      const existing = input.id ? caps.find((c) => c.id === input.id) : undefined;
      if (input.id && !existing) throw notFound('cap', input.id);
      const cap: Cap = {
        id: existing?.id ?? `cap_${hex(rnd, 8)}`,
        scope: input.scope,
        scopeValue: input.scope === 'global' ? null : input.scopeValue ?? null,
        period: input.period,
        limit: input.limit,
        alerts: input.alerts ?? [50, 80, 100],
        hard: input.hard ?? true,
        createdAt: existing?.createdAt ?? clock(),
      };
      if (existing) caps.splice(caps.indexOf(existing), 1, cap);
      else caps.push(cap);
      emit({ type: 'caps', caps: capStatuses() });
      return clone(cap);
    },
    async removeCap({ id }) {
      const i = caps.findIndex((c) => c.id === id);
      if (i >= 0) caps.splice(i, 1);
      emit({ type: 'caps', caps: capStatuses() });
      return { removed: i >= 0 };
    },
    async alerts({ limit = 100 }) {
      return clone(alerts.slice(0, limit));
    },
    async pause() {
      paused = true;
      emit({ type: 'paused', paused });
      return { paused };
    },
    async resume() {
      paused = false;
      emit({ type: 'paused', paused });
      return { paused };
    },
    async keys() {
      return clone(keys);
    },
    async addKey({ name, provider, project, secret }) {
      if (!name.trim()) throw validation('name', 'required');
      if (!provider.trim()) throw validation('provider', 'required');
      if (secret.trim().length < 8) throw validation('secret', 'paste the real provider key (at least 8 characters)');
      let token = 'tgk_';
      for (let i = 0; i < 40; i++) token += 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789'[Math.floor(rnd() * 57)];
      const key: LocalKey = { id: `key_${hex(rnd, 8)}`, name: name.trim(), provider, project: project?.trim() || null, prefix: token.slice(0, 8), fingerprint: `sha256:${hex(rnd, 4)}…${hex(rnd, 4)}`, createdAt: clock(), revokedAt: null };
      keys.unshift(key);
      return clone({ key, token });
    },
    async revokeKey({ id }) {
      const k = keys.find((x) => x.id === id);
      if (!k) throw notFound('key', id);
      if (k.revokedAt !== null) return { revoked: false };
      k.revokedAt = clock();
      return { revoked: true };
    },
    async prices({ provider, search, limit = 500 }) {
      const s = search?.trim().toLowerCase();
      return clone(
        CATALOG.filter((m) => (!provider || m.provider === provider) && (!s || `${m.provider}:${m.model} ${m.name}`.toLowerCase().includes(s)))
          .slice(0, limit)
          .map(price),
      );
    },
    async overrides() {
      return clone(overrides);
    },
    async setOverride({ provider, model, prices, note }) {
      if (!provider) throw validation('provider', 'required');
      if (!model) throw validation('model', 'required');
      if (Object.keys(prices).length === 0) throw validation('prices', 'give at least one price, e.g. input_mtok=0.15');
      for (const [k, v] of Object.entries(prices)) if (!/^\d+(\.\d+)?$/.test(v)) throw validation(`prices.${k}`, 'must be a decimal USD amount');
      const existing = overrides.find((o) => o.provider === provider && o.model === model);
      const o: PriceOverride = { id: existing?.id ?? `ovr_${hex(rnd, 6)}`, provider, model, prices, note: note ?? null, createdAt: clock() };
      if (existing) overrides.splice(overrides.indexOf(existing), 1, o);
      else overrides.push(o);
      return clone(o);
    },
    async removeOverride({ id }) {
      const i = overrides.findIndex((o) => o.id === id);
      if (i >= 0) overrides.splice(i, 1);
      return { removed: i >= 0 };
    },
    async locks() {
      return clone(locks);
    },
    async addLock({ provider, model, from, to }) {
      const models = CATALOG.filter((m) => m.provider === provider && (!model || m.model === model));
      if (models.length === 0) throw validation(model ? 'model' : 'provider', `no catalog prices for ${provider}${model ? ':' + model : ''}`);
      const lock: RateLock = {
        id: `lock_${hex(rnd, 6)}`, provider, model: model ?? null, catalog: catalogSource(models[0]!).catalog,
        prices: Object.fromEntries(models.map((m) => [m.model, Object.fromEntries(m.prices.map((p) => [p.key, p.unitPrice]))])),
        from: from ? Date.parse(from) : clock(), to: to ? Date.parse(to) : null, createdAt: clock(),
      };
      locks.push(lock);
      return clone(lock);
    },
    async removeLock({ id }) {
      const i = locks.findIndex((l) => l.id === id);
      if (i >= 0) locks.splice(i, 1);
      return { removed: i >= 0 };
    },
    async tiers() {
      return clone(tiers);
    },
    async setTiers(input) {
      if (input.tiers.length === 0) throw validation('tiers', 'at least one tier');
      for (const [i, t] of input.tiers.entries()) if (!/^\d+(\.\d+)?$/.test(t.price)) throw validation(`tiers.${i}.price`, 'must be a decimal USD amount');
      const existing = input.id ? tiers.find((t) => t.id === input.id) : undefined;
      const full: VolumeTierPlan = {
        id: existing?.id ?? `tier_${hex(rnd, 6)}`, provider: input.provider, model: input.model ?? null, unit: input.unit,
        mode: input.mode, period: input.period, tiers: input.tiers, createdAt: existing?.createdAt ?? clock(),
      };
      if (existing) tiers.splice(tiers.indexOf(existing), 1, full);
      else tiers.push(full);
      return clone(full);
    },
    async removeTiers({ id }) {
      const i = tiers.findIndex((t) => t.id === id);
      if (i >= 0) tiers.splice(i, 1);
      return { removed: i >= 0 };
    },
    async unpriced() {
      const m = new Map<string, UnpricedModel>();
      for (const c of calls) {
        if (!c.unpriced) continue;
        const k = `${c.provider}:${c.model}`;
        const u = m.get(k) ?? { provider: c.provider, model: c.model ?? '(unknown)', calls: 0, lastSeen: c.ts, reason: c.unpricedReason ?? 'no price' };
        u.calls++;
        u.lastSeen = Math.max(u.lastSeen, c.ts);
        m.set(k, u);
      }
      return clone([...m.values()].filter((u) => !overrides.some((o) => o.provider === u.provider && o.model === u.model)));
    },
    async quote(input) {
      let items: QuoteItem[] = [];
      if (input.kind === 'usage') {
        const m = findModel(input.model);
        if (!m) items = [unpricedItem('', input.model, null, 1)];
        else if (m.kind === 'token') {
          const i = Number(input.usage.input_tokens ?? 0);
          const o = Number(input.usage.output_tokens ?? 0);
          items = [quoteTokens(m, i, o, o, null, 1, [])];
        } else items = [quoteMedia(m, String(input.usage.images ?? input.usage.seconds ?? input.usage.megapixels ?? 1), null, 1)];
      } else if (input.kind === 'request') {
        const body = input.body as Record<string, unknown> | null;
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw validation('body', 'expected a JSON object (the request body you would send)');
        const model = typeof body.model === 'string' ? body.model : null;
        if (!model) throw validation('body.model', 'the request body has no "model"');
        const m = CATALOG.find((c) => c.provider === input.provider && c.model === model) ?? findModel(model);
        if (!m) items = [unpricedItem(input.provider, model, null, 1)];
        else if (m.kind === 'token') {
          const promptish = body.messages ?? body.input ?? body.contents ?? body.prompt ?? body.system ?? '';
          const inputTokens = estimateTokens(promptish) + (body.system ? estimateTokens(body.system) : 0);
          const gen = body.generationConfig as { maxOutputTokens?: unknown } | undefined;
          const maxRaw = body.max_tokens ?? body.max_completion_tokens ?? body.max_output_tokens ?? gen?.maxOutputTokens;
          const maxOut = typeof maxRaw === 'number' && maxRaw > 0 ? Math.floor(maxRaw) : 8192;
          const notes = [`input tokens approximated from ${JSON.stringify(promptish).length} characters (o200k_base estimate)`];
          if (typeof maxRaw !== 'number') notes.push('no max_tokens in the body: the maximum assumes the model default of 8,192 output tokens');
          items = [quoteTokens(m, inputTokens, Math.min(maxOut, 600), maxOut, null, 1, notes)];
        } else {
          const n = typeof body.n === 'number' ? body.n : typeof body.num_images === 'number' ? body.num_images : 1;
          const quality = typeof body.quality === 'string' ? `image_${body.quality}` : undefined;
          items = [quoteMedia(m, String(n), null, 1, quality && m.prices.some((p) => p.key === quality) ? quality : undefined)];
        }
      } else {
        type Node = { id: string; model: string; repeat: number; inputTokens?: number; outputTokens?: number; count?: number; seconds?: number; megapixels?: string };
        let nodes: Node[] = [];
        const text = input.text.trim();
        if (!text) throw validation('text', 'paste a workflow (JSON or YAML)');
        if (text.startsWith('{') || text.startsWith('[')) {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch (err) {
            throw validation('text', `invalid JSON: ${(err as Error).message}`);
          }
          const raw = Array.isArray(parsed) ? parsed : (parsed as { nodes?: unknown }).nodes ?? parsed;
          const list = Array.isArray(raw) ? raw : Object.entries(raw as Record<string, unknown>).map(([id, v]) => ({ id, ...(v as object) }));
          nodes = list.map((n, i) => {
            const o = n as Record<string, unknown>;
            return { id: String(o.id ?? `node${i + 1}`), model: String(o.model ?? ''), repeat: Number(o.repeat ?? 1) || 1, ...(typeof o.inputTokens === 'number' ? { inputTokens: o.inputTokens } : {}), ...(typeof o.outputTokens === 'number' ? { outputTokens: o.outputTokens } : {}), ...(typeof o.count === 'number' ? { count: o.count } : {}), ...(typeof o.seconds === 'number' ? { seconds: o.seconds } : {}), ...(o.megapixels !== undefined ? { megapixels: String(o.megapixels) } : {}) };
          });
        } else {
          // tiny YAML subset for the mock: "- id: x" blocks with "key: value" lines
          let cur: Record<string, string> | null = null;
          const blocks: Record<string, string>[] = [];
          for (const line of text.split(/\r?\n/)) {
            const mm = /^\s*(-\s+)?([A-Za-z_]+)\s*:\s*(.*?)\s*$/.exec(line);
            if (!mm) continue;
            if (mm[1]) {
              cur = {};
              blocks.push(cur);
            }
            if (cur) cur[mm[2]!] = mm[3]!.replace(/^["']|["']$/g, '');
          }
          nodes = blocks.filter((b) => b.model).map((b, i) => ({ id: b.id ?? `node${i + 1}`, model: b.model!, repeat: Number(b.repeat ?? 1) || 1, ...(b.inputTokens ? { inputTokens: Number(b.inputTokens) } : {}), ...(b.outputTokens ? { outputTokens: Number(b.outputTokens) } : {}), ...(b.count ? { count: Number(b.count) } : {}), ...(b.seconds ? { seconds: Number(b.seconds) } : {}), ...(b.megapixels ? { megapixels: b.megapixels } : {}) }));
        }
        if (nodes.length === 0) throw validation('nodes', 'the workflow has no nodes with a "model"');
        items = nodes.map((n) => {
          const m = findModel(n.model);
          if (!m) {
            const [p, ...rest] = n.model.split(':');
            return unpricedItem(rest.length ? p! : '', rest.length ? rest.join(':') : n.model, n.id, n.repeat);
          }
          if (m.kind === 'token') return quoteTokens(m, n.inputTokens ?? 1000, n.outputTokens ?? 500, (n.outputTokens ?? 500) * 4, n.id, n.repeat, n.inputTokens ? [] : ['no inputTokens given: assumed 1,000']);
          if (m.kind === 'upscale') return quoteMedia(m, n.megapixels ?? '4.2', n.id, n.repeat);
          if (m.kind === 'video') return quoteMedia(m, String(n.seconds ?? 5), n.id, n.repeat);
          return quoteMedia(m, String(n.count ?? 1), n.id, n.repeat);
        });
      }
      const sum = (k: 'min' | 'expected' | 'max') => usd(items.reduce((s, i) => s + usdToNano(i[k]), 0n));
      return clone({ min: sum('min'), expected: sum('expected'), max: sum('max'), items, unpriced: items.filter((i) => i.unpriced).length });
    },
    async compare({ workload, models }) {
      const rows: CompareRow[] = [];
      let description = '';
      let replay = { calls: 0, input: 0, output: 0, cached: 0 };
      if (workload.kind === 'replay') {
        const now = clock();
        const from = workload.period === 'day' ? now - DAY : workload.period === 'week' ? now - 7 * DAY : now - 30 * DAY;
        for (const c of calls) {
          if (c.ts < from) break;
          if (typeof c.usage.input_tokens !== 'number' || c.status !== 'ok') continue;
          replay.calls++;
          replay.input += c.usage.input_tokens;
          replay.output += Number(c.usage.output_tokens ?? 0);
          replay.cached += Number(c.usage.cache_read_tokens ?? 0);
        }
      }
      const fmt = (n: number) => new Intl.NumberFormat('en-US').format(n);
      description = describe(workload, replay, fmt);
      for (const id of models) {
        const m = findModel(id);
        const name = m?.name ?? id;
        const row: CompareRow = { model: m ? `${m.provider}:${m.model}` : id, name, cost: null, cheapest: false, reason: null, items: [], perUnit: null };
        if (!m) {
          row.reason = `No price for ${id}`;
          rows.push(row);
          continue;
        }
        const src = catalogSource(m).catalog;
        const need = workload.kind === 'chat' || workload.kind === 'replay' ? 'token' : workload.kind;
        if (m.kind !== need) {
          row.reason = `${m.name} is ${m.kind === 'token' ? 'a text' : m.kind === 'upscale' ? 'an upscale' : `a${m.kind === 'image' ? 'n' : ''} ${m.kind}`} model: it cannot run a ${need === 'token' ? 'chat' : need} workload`;
          rows.push(row);
          continue;
        }
        let units = 1n;
        if (workload.kind === 'chat' || workload.kind === 'replay') {
          const w = workload.kind === 'chat' ? { calls: workload.calls, input: workload.calls * workload.inputTokens, output: workload.calls * workload.outputTokens, cached: workload.calls * (workload.cachedInputTokens ?? 0) } : replay;
          row.items = tokenItems(m, w.input, w.output, w.cached, src);
          units = BigInt(Math.max(1, w.calls));
        } else if (workload.kind === 'image') {
          const key = m.prices.length > 1 ? `image_${workload.quality ?? 'medium'}` : 'image';
          row.items = [mediaItem(m, m.prices.some((p) => p.key === key) ? key : m.prices[0]!.key, String(workload.count), undefined, src)];
          units = BigInt(Math.max(1, workload.count));
        } else if (workload.kind === 'video') {
          const key = m.prices.some((p) => p.key === 'second_audio') && workload.audio ? 'second_audio' : m.prices.find((p) => p.key === 'second') ? 'second' : m.prices[0]!.key;
          const secs = workload.seconds * (workload.count ?? 1);
          row.items = [mediaItem(m, key, String(secs), undefined, src)];
          units = BigInt(Math.max(1, secs));
        } else if (workload.kind === 'upscale') {
          const q = ratio(workload.megapixels);
          const total = usd((q.num * BigInt(workload.count) * 1_000_000_000n) / q.den);
          row.items = [mediaItem(m, 'megapixel', total, `Output megapixels (${workload.count} × ${workload.megapixels} MP)`, src)];
          units = BigInt(Math.max(1, workload.count));
        }
        const cost = sumItems(row.items);
        row.cost = usd(cost);
        row.perUnit = usd(divHalfEven(cost, units));
        rows.push(row);
      }
      let best: CompareRow | null = null;
      for (const r of rows) if (r.cost !== null && (!best || usdToNano(r.cost) < usdToNano(best.cost!))) best = r;
      if (best) best.cheapest = true;
      rows.sort((a, b) => (a.cost === null ? 1 : b.cost === null ? -1 : usdToNano(a.cost) < usdToNano(b.cost) ? -1 : usdToNano(a.cost) > usdToNano(b.cost) ? 1 : 0));
      return clone({ workload, description, rows });
    },
    async settings() {
      return clone(settings);
    },
    async updateSettings(patch) {
      if (patch.weekStart !== undefined && patch.weekStart !== 1 && patch.weekStart !== 7) throw validation('weekStart', 'must be 1 (Monday) or 7 (Sunday)');
      if (patch.timeZone !== undefined) {
        try {
          new Intl.DateTimeFormat('en-US', { timeZone: patch.timeZone });
        } catch {
          throw validation('timeZone', `unknown time zone "${patch.timeZone}"`);
        }
      }
      Object.assign(settings, patch);
      return clone(settings);
    },
    // Credits, statements and reconciliation: the demo keeps grants in memory and has no statements.
    async credits() {
      const providers = [...new Set(mockGrants.map((g) => g.provider))].sort().map((provider) => {
        const grants = mockGrants.filter((g) => g.provider === provider);
        const balance = nanoToUsd(grants.reduce((n, g) => n + usdToNano(g.amount), 0n));
        return { provider, balance, uncovered: '0', burn7d: '0', burnPerDay: '0', runwayDays: null, runsOutAt: null, expiringUnused: [], summary: `No ${provider} spend in the last 7 days.`, grants: clone(grants) };
      });
      return { asOf: Date.now(), providers };
    },
    async addCredit(arg) {
      const g = { id: `cr_demo${mockGrants.length + 1}`, provider: arg.provider, amount: arg.amount, effective: arg.effective ?? new Date().toISOString().slice(0, 10), expires: arg.expires,
        priority: arg.priority ?? 50, promo: arg.promo ?? false, note: arg.note ?? null, createdAt: Date.now(), state: 'active' as const, drawn: '0', remaining: arg.amount, expiredUnused: '0' };
      mockGrants.push(g);
      return clone(g);
    },
    async removeCredit(arg) {
      const i = mockGrants.findIndex((g) => g.id === arg.id);
      if (i >= 0) mockGrants.splice(i, 1);
      return { removed: i >= 0 };
    },
    async creditMovements() {
      return [];
    },
    async statement() {
      throw new ApiCallError({ code: 'E_NOT_FOUND', message: 'statements need the real engine (npx tollgate serve)' });
    },
    async statements() {
      return [];
    },
    async reconcile() {
      throw new ApiCallError({ code: 'E_NOT_FOUND', message: 'reconciliation needs the real engine (npx tollgate serve)' });
    },
  };
  return api;
}

function describe(w: Workload, replay: { calls: number; input: number; output: number }, fmt: (n: number) => string): string {
  switch (w.kind) {
    case 'chat': return `${fmt(w.calls)} chat calls of ${fmt(w.inputTokens)} in / ${fmt(w.outputTokens)} out tokens`;
    case 'image': return `${fmt(w.count)} images${w.size ? ` at ${w.size}` : ''}${w.quality ? `, ${w.quality} quality` : ''}`;
    case 'video': return `${fmt(w.count ?? 1)} × ${fmt(w.seconds)} s of video${w.resolution ? ` at ${w.resolution}` : ''}${w.audio ? ' with audio' : ''}`;
    case 'upscale': return `${fmt(w.count)} upscales to ${w.megapixels} MP`;
    case 'replay': return `Your last ${w.period === 'day' ? '24 hours' : w.period === 'week' ? '7 days' : '30 days'}: ${fmt(replay.calls)} chat calls, ${fmt(replay.input)} in / ${fmt(replay.output)} out tokens`;
  }
}

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}
