import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { Decimal } from 'decimal.js';
import { fileURLToPath } from 'node:url';
import { bundledCatalog, Catalog } from '../../../shared/catalog.ts';
import { priceCall, priceTokens, toLineItems, type MediaParams, type PricedCall } from '../../../shared/pricing.ts';
import { quoteUsage, sumQuote } from '../../../shared/quote.ts';
import { nanoToUsd } from '../../../shared/money.ts';
import type { PriceOverride, RateLock } from '../../../shared/api.ts';
import type { MediaCatalogFile } from '../../../shared/media-schema.ts';
import type { Usage } from '../../../shared/usage.ts';

const catalog = bundledCatalog();
const mediaFile = (): MediaCatalogFile =>
  JSON.parse(readFileSync(fileURLToPath(new URL('../../../shared/catalog/media.json', import.meta.url)), 'utf8')) as MediaCatalogFile;

function call(ref: string, usage: Usage, params: MediaParams = {}, cat: Catalog = catalog): PricedCall {
  const i = ref.indexOf(':');
  return priceCall(usage, cat.resolve(ref.slice(0, i), ref.slice(i + 1)), { params }, ref);
}
const cost = (p: PricedCall) => {
  assert.equal(p.unpriced, null, `unexpectedly unpriced: ${p.unpriced}`);
  return nanoToUsd(p.cost);
};
const lines = (p: PricedCall) => toLineItems(p.items).map((l) => `${l.label}: ${l.quantity} × ${l.unitPrice} = ${l.cost}`);

describe('pricing: token models', () => {
  test('`tollgate quote --model openai:gpt-4o-mini --input-tokens 1000 --output-tokens 500` → 0.00045', () => {
    const q = quoteUsage(catalog, 'openai:gpt-4o-mini', { inputTokens: 1000, outputTokens: 500 });
    // 1000 × $0.15/M = 0.00015; 500 × $0.60/M = 0.0003; total 0.00045
    assert.equal(q.min, '0.00045');
    assert.equal(q.expected, '0.00045');
    assert.equal(q.max, '0.00045');
    assert.equal(q.unpriced, null);
    assert.deepEqual(q.items.map((l) => [l.label, l.quantity, l.per, l.unitPrice, l.cost, l.source]), [
      ['Input tokens', '1000', 1000000, '0.15', '0.00015', 'genai-prices@0.1.8'],
      ['Output tokens', '500', 1000000, '0.6', '0.0003', 'genai-prices@0.1.8'],
    ]);
  });

  test('an unknown model is unpriced with a reason, never $0 silently', () => {
    const q = quoteUsage(catalog, 'openai:gpt-nonexistent-9', { inputTokens: 1000, outputTokens: 500 });
    assert.match(q.unpriced ?? '', /unknown model: openai:gpt-nonexistent-9 is not in the price catalog/);
    assert.deepEqual(q.items, []);
    // a workflow total skips it rather than adding 0 as if it were priced
    assert.deepEqual(sumQuote([q]), { min: 0n, expected: 0n, max: 0n });

    const p = call('acme:model-x', { inputTokens: 10 });
    assert.notEqual(p.unpriced, null);
    assert.equal(p.kind, null);
    assert.equal(p.priceSource, null);
    assert.deepEqual(p.items, []);
  });

  test('a known model without a price for a usage category is unpriced, not partially priced', () => {
    // gpt-4o-mini has no 1-hour cache-write price
    const p = call('openai:gpt-4o-mini', { inputTokens: 10, cacheWrite1hTokens: 5 });
    assert.match(p.unpriced ?? '', /openai:gpt-4o-mini has no price for cache writes \(1 h\) \(cache_write_1h_mtok\)/);
    assert.equal(p.cost, 0n);
    const empty = priceTokens({}, catalog.resolve('openai', 'gpt-4o-mini').token!);
    assert.equal(empty.unpriced, 'the call reported no usage');
  });

  test('a media model given token usage, and a token model given media usage', () => {
    assert.match(call('openai:gpt-4o-mini', { images: 1 }).unpriced ?? '', /no media price for openai:gpt-4o-mini/);
    // gpt-image-1 is both: token usage goes to the token price (input $5/M, image output $40/M)
    // 100 × 5 / 1e6 = 0.0005; 4160 × 40 / 1e6 = 0.1664
    assert.equal(cost(call('openai:gpt-image-1', { inputTokens: 100, outputImageTokens: 4160 })), '0.1669');
  });
});

describe('pricing: property', () => {
  test('claude-sonnet-4-5: random usage priced line by line = 40-digit decimal reference, tier chosen on total input', () => {
    const D = Decimal.clone({ precision: 40 });
    const model = catalog.resolve('anthropic', 'claude-sonnet-4-5');
    // published rates ($/M tokens): ≤200k input / >200k input
    const rates = {
      inputTokens: ['3', '6'], cacheReadTokens: ['0.3', '0.6'], cacheWrite5mTokens: ['3.75', '7.5'], cacheWrite1hTokens: ['6', '12'], outputTokens: ['15', '22.5'],
    } as const;
    const n = fc.integer({ min: 0, max: 150_000 });
    fc.assert(fc.property(fc.record({ inputTokens: n, cacheReadTokens: n, cacheWrite5mTokens: n, cacheWrite1hTokens: n, outputTokens: n }), (u) => {
      const p = priceCall(u, model);
      const totalIn = u.inputTokens + u.cacheReadTokens + u.cacheWrite5mTokens + u.cacheWrite1hTokens;
      const tier = totalIn > 200_000 ? 1 : 0;
      let ref = 0n;
      for (const [field, r] of Object.entries(rates) as [keyof typeof rates, readonly [string, string]][]) {
        ref += BigInt(new D(u[field]).times(r[tier]).times(1000).toDecimalPlaces(0, Decimal.ROUND_HALF_EVEN).toFixed(0)); // × 1e9 / 1e6
      }
      if (totalIn + u.outputTokens === 0) return assert.equal(p.unpriced, 'the call reported no usage');
      assert.equal(p.unpriced, null);
      assert.equal(p.cost, ref);
      assert.equal(p.cost, p.items.reduce((a, l) => a + l.cost, 0n));
    }), { numRuns: 1000 });
  });
});

describe('pricing: media', () => {
  test('fal FLUX.2 [pro]: $0.03 first MP + $0.015 per extra MP, 1 MP = 1024×1024, rounded up', () => {
    assert.equal(cost(call('fal:fal-ai/flux-2-pro', { images: 1 }, { size: '1024x1024' })), '0.03'); // exactly 1 MP
    assert.equal(cost(call('fal:fal-ai/flux-2-pro', { images: 1 }, { size: '1000x1000' })), '0.03'); // 0.95 MP → 1
    // 1024×1025 = 1.00098 MP → 2 MP: 0.03 + 0.015
    assert.equal(cost(call('fal:fal-ai/flux-2-pro', { images: 1 }, { size: '1024x1025' })), '0.045');
    // 1920×1080 = 2,073,600 px = 1.98 MP → 2 MP
    assert.equal(cost(call('fal:fal-ai/flux-2-pro', { images: 1 }, { width: 1920, height: 1080 })), '0.045');
    // 2048×2048 = 4 MP: 0.03 + 3 × 0.015 = 0.075; four of them = 0.30
    const four = call('fal:fal-ai/flux-2-pro', { images: 4 }, { size: '2048x2048' });
    assert.equal(cost(four), '0.3');
    assert.deepEqual(lines(four), ['First megapixel: 4 × 0.03 = 0.12', 'Additional megapixels: 12 × 0.015 = 0.18']);
    assert.equal(four.priceSource, 'tollgate-media@2026-12-01.3:fal/flux-2-pro');
    assert.match(call('fal:fal-ai/flux-2-pro', { images: 1 }).unpriced ?? '', /priced per megapixel but the image size is unknown/);
  });

  test('gpt-image-1 by quality and size', () => {
    const img = (size: string, quality: string, n = 1) => call('openai:gpt-image-1', { images: n }, { size, quality });
    assert.equal(cost(img('1024x1024', 'low')), '0.011');
    assert.equal(cost(img('1536x1024', 'medium')), '0.063');
    assert.equal(cost(img('1024x1536', 'high')), '0.25');
    assert.equal(cost(img('1024x1024', 'high', 3)), '0.501'); // 3 × 0.167
    assert.deepEqual(lines(img('1024x1024', 'high', 3)), ['Images: 3 × 0.167 = 0.501']);
    const bad = img('512x512', 'high');
    assert.match(bad.unpriced ?? '', /openai:gpt-image-1 has no price for 512x512, high \(priced: per image, 1024x1024, low;/);
  });

  test('Veo 3.1 per second, with and without audio', () => {
    // Gemini API (always with audio): $0.40/s at 720p/1080p, $0.60/s at 4k
    assert.equal(cost(call('gemini:veo-3.1-generate-preview', { videoSeconds: 8 }, { resolution: '1080p' })), '3.2');
    assert.equal(cost(call('google:veo-3.1-generate-preview', { videoSeconds: 8 }, { resolution: '4k' })), '4.8');
    // fal: $0.20/s without audio, $0.40/s with audio (1080p); at 4k $0.40/s without, $0.60/s with
    assert.equal(cost(call('fal:fal-ai/veo3.1', { videoSeconds: 8 }, { audio: true })), '3.2');
    assert.equal(cost(call('fal:fal-ai/veo3.1', { videoSeconds: 8 }, { audio: false })), '1.6');
    assert.equal(cost(call('fal:fal-ai/veo3.1', { videoSeconds: 8 }, { resolution: '4k', audio: false })), '3.2');
    assert.equal(cost(call('fal:fal-ai/veo3.1', { videoSeconds: 8 }, { resolution: '4k', audio: true })), '4.8');
    assert.equal(cost(call('fal:fal-ai/veo3.1', { videoSeconds: 8 })), '3.2'); // audio defaults on
    assert.deepEqual(lines(call('fal:fal-ai/veo3.1', { videoSeconds: 6 }, { audio: false })), ['Video seconds: 6 × 0.20 = 1.2']);
    assert.match(call('fal:fal-ai/veo3.1', { images: 1 }).unpriced ?? '', /priced per second but the call's duration is unknown/);
  });

  test('Clarity upscaler per output megapixel, by the one fal megapixel rule (1 MP = 1024×1024 px, rounded up per image)', () => {
    // $0.03 per MP: 8 MP → 0.24
    assert.equal(cost(call('fal:fal-ai/clarity-upscaler', { images: 1, megapixelsPerImage: '8' })), '0.24');
    // 2048×2048 output = 4,194,304 px = exactly 4 MP × 0.03 = 0.12
    const p = call('fal:fal-ai/clarity-upscaler', { images: 1 }, { size: '2048x2048' });
    assert.equal(cost(p), '0.12');
    assert.deepEqual(lines(p), ['Megapixels: 4 × 0.03 = 0.12']);
    // 1920×1080 = 1.98 MP → 2 MP (not 10^6-px megapixels: that would be 2.07 → 3)
    assert.equal(cost(call('fal:fal-ai/clarity-upscaler', { images: 1 }, { size: '1920x1080' })), '0.06');
    // two images of 2.5 MP: each rounds up to 3 MP → 6 MP × 0.03 = 0.18
    assert.equal(cost(call('fal:fal-ai/clarity-upscaler', { images: 2, megapixelsPerImage: '2.5' })), '0.18');
  });

  test('every per-megapixel entry follows the same rule (1024×1024 px, rounded up)', () => {
    for (const e of mediaFile().entries) {
      for (const p of e.prices) {
        if (p.unit !== 'megapixel') continue;
        assert.equal(p.pixelsPerMegapixel, 1048576, `${e.route}/${e.id}`);
        assert.equal(p.roundUp, true, `${e.route}/${e.id}`);
      }
    }
  });
});

describe('pricing: overrides and locks', () => {
  const override: PriceOverride = { id: 'ovr-1', provider: 'openai', model: 'gpt-4o-mini', prices: { input_mtok: '0.10' }, note: 'negotiated', createdAt: 0 };
  const lock: RateLock = {
    id: 'lock-1', provider: 'openai', model: 'gpt-4o-mini', catalog: 'genai-prices@0.1.7',
    prices: { 'gpt-4o-mini': { input_mtok: '0.2', output_mtok: '0.8' } }, from: Date.UTC(2026, 0, 1), to: null, createdAt: 0,
  };
  const usage: Usage = { inputTokens: 1000, outputTokens: 500 };
  const after = new Date(Date.UTC(2026, 5, 1));
  const before = new Date(Date.UTC(2025, 5, 1));

  test('an override wins over the catalog (other keys keep the catalog price); source names it', () => {
    const cat = new Catalog({ overrides: [override] });
    const p = priceCall(usage, cat.resolve('openai', 'gpt-4o-mini', after));
    // 1000 × 0.10 / 1e6 = 0.0001 (override); 500 × 0.60 / 1e6 = 0.0003 (catalog)
    assert.equal(cost(p), '0.0004');
    assert.equal(p.priceSource, 'override ovr-1');
    assert.deepEqual(toLineItems(p.items).map((l) => [l.label, l.unitPrice, l.source]), [['Input tokens', '0.1', 'override ovr-1'], ['Output tokens', '0.6', 'override ovr-1']]);
    assert.equal(cat.resolve('openai', 'gpt-4o-mini').token?.source.kind, 'override');
    // the bundled catalog is untouched
    assert.equal(cost(priceCall(usage, catalog.resolve('openai', 'gpt-4o-mini'))), '0.00045');
  });

  test('a lock wins over an override while it is in force; source names the lock', () => {
    const cat = new Catalog({ overrides: [override], locks: [lock] });
    const p = priceCall(usage, cat.resolve('openai', 'gpt-4o-mini', after));
    // 1000 × 0.2 / 1e6 = 0.0002; 500 × 0.8 / 1e6 = 0.0004
    assert.equal(cost(p), '0.0006');
    assert.equal(p.priceSource, 'lock lock-1 (genai-prices@0.1.7)');
    assert.ok(p.items.every((l) => l.source === 'lock lock-1 (genai-prices@0.1.7)'));
    assert.deepEqual(cat.resolve('openai', 'gpt-4o-mini', after).token?.source, { kind: 'lock', catalog: 'genai-prices@0.1.7', detail: 'lock-1' });
    // before the lock starts the override applies again
    assert.equal(cost(priceCall(usage, cat.resolve('openai', 'gpt-4o-mini', before))), '0.0004');
    // withUserData gives the same answers
    assert.equal(cost(priceCall(usage, catalog.withUserData([override], [lock]).resolve('openai', 'gpt-4o-mini', after))), '0.0006');
  });

  test('a whole-provider lock, an expired lock, and a media override', () => {
    const provLock: RateLock = { ...lock, id: 'lock-all', model: null, prices: { 'gpt-4o': { input_mtok: '1', output_mtok: '2' } }, from: null, to: Date.UTC(2026, 0, 1) };
    const cat = new Catalog({ locks: [provLock], overrides: [{ id: 'ovr-img', provider: 'fal', model: 'fal-ai/flux-2-pro', prices: { image: '0.05' }, note: null, createdAt: 0 }] });
    // 1000 × 1 / 1e6 + 500 × 2 / 1e6 = 0.002
    assert.equal(cost(priceCall(usage, cat.resolve('openai', 'gpt-4o', before))), '0.002');
    // after `to` the catalog price is back: 1000 × 2.5 + 500 × 10 per M = 0.0075
    const back = priceCall(usage, cat.resolve('openai', 'gpt-4o', after));
    assert.equal(cost(back), '0.0075');
    assert.equal(back.priceSource, 'genai-prices@0.1.8');
    // the override prices FLUX.2 [pro] per image, whatever the size
    const img = priceCall({ images: 2 }, cat.resolve('fal', 'fal-ai/flux-2-pro'), { params: { size: '2048x2048' } });
    assert.equal(cost(img), '0.1');
    assert.equal(img.priceSource, 'override ovr-img');
  });

  test('an override prices a model the catalog does not know', () => {
    const cat = new Catalog({ overrides: [{ id: 'ovr-local', provider: 'openrouter', model: 'acme/llm-1', prices: { input_mtok: '0.5', output_mtok: '1.5' }, note: null, createdAt: 0 }] });
    // 1000 × 0.5 / 1e6 + 500 × 1.5 / 1e6 = 0.0005 + 0.00075
    assert.equal(quoteUsage(cat, 'openrouter:acme/llm-1', usage).expected, '0.00125');
    assert.ok(cat.list({ search: 'acme/llm-1' }).some((r) => r.source.kind === 'override' && r.source.detail === 'ovr-local'));
  });
});

describe('pricing: the catalog', () => {
  test('version changes when media content changes, and only then', () => {
    const same = new Catalog({ media: mediaFile() });
    assert.equal(same.version, catalog.version);
    assert.match(catalog.version, /^genai-prices@0\.1\.8\+2026-12-01\.3#[0-9a-f]{12}$/);
    const edited = mediaFile();
    const flux = edited.entries.find((e) => e.id === 'flux-2-pro')!;
    flux.prices[0]!.price = '0.016';
    const changed = new Catalog({ media: edited });
    assert.notEqual(changed.version, catalog.version);
    assert.equal(changed.mediaVersion, catalog.mediaVersion); // same declared version, different content
    // and the edit is what prices: 2048×2048 = 0.03 + 3 × 0.016
    assert.equal(cost(call('fal:fal-ai/flux-2-pro', { images: 1 }, { size: '2048x2048' }, changed)), '0.078');
  });

  test('an invalid media file is refused', () => {
    const bad = mediaFile();
    bad.entries[0]!.prices[0]!.price = '0.04 USD';
    assert.throws(() => new Catalog({ media: bad }));
  });

  test('Google media entries are reachable under the gemini route name', () => {
    assert.equal(catalog.resolve('gemini', 'veo-3.1-generate-preview').media?.id, 'veo-3-1');
    assert.equal(catalog.resolve('google', 'gemini-3-pro-image-preview').media?.id, 'nano-banana-pro');
    assert.ok(catalog.modelsOf('google').includes('veo-3-1'));
    const rows = catalog.list({ provider: 'gemini', search: 'veo' });
    assert.deepEqual(rows.map((r) => r.model).sort(), ['veo-3-1', 'veo-3-1-fast', 'veo-3-1-lite']);
    assert.ok(rows.every((r) => r.provider === 'gemini' && r.kind === 'video'));
  });

  test('resolution: dated ids, fal-queue alias, snapshot for locks', () => {
    assert.equal(catalog.resolve('openai', 'gpt-4o-mini-2024-07-18').token?.id, 'gpt-4o-mini');
    assert.equal(catalog.resolve('gemini', 'models/gemini-2.5-flash').token?.id, 'gemini-2.5-flash');
    assert.equal(catalog.resolve('fal-queue', 'fal-ai/flux-2-pro').media?.id, 'flux-2-pro');
    assert.deepEqual(catalog.snapshot('fal', 'fal-ai/clarity-upscaler', new Date(0)), { megapixel: '0.03' });
    const snap = catalog.snapshot('openai', 'gpt-4o-mini', new Date(0));
    assert.equal(snap?.input_mtok, '0.15');
    assert.equal(snap?.output_mtok, '0.6');
    assert.equal(catalog.snapshot('openai', 'gpt-nonexistent-9', new Date(0)), null);
  });
});
