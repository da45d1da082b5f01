/**
 * The ids users really send resolve and quote, each with a realistic request and a figure
 * computed by hand from the catalog's sourced prices (see shared/catalog/SOURCES.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bundledCatalog } from '../../../shared/catalog.ts';
import { quoteRequest, quoteUsage } from '../../../shared/quote.ts';
import type { QuoteItem } from '../../../shared/api.ts';
import { priceCall } from '../../../shared/pricing.ts';

const catalog = bundledCatalog();
function exact(q: QuoteItem): string {
  assert.equal(q.unpriced, null, `${q.provider}:${q.model} unpriced: ${q.unpriced}`);
  assert.equal(q.min, q.max, `${q.provider}:${q.model} should be exact`);
  return q.expected;
}
const fal = (id: string, body: Record<string, unknown>) => exact(quoteRequest(catalog, 'fal', body, `/${id}`));
const replicate = (id: string, input: Record<string, unknown>) => exact(quoteRequest(catalog, 'replicate', { input }, `/v1/models/${id}/predictions`));

test('FLUX.2 on fal: pro edit bills input images too; dev, dev edit and max resolve', () => {
  // output 1024×1024 = 1 MP → $0.03; two reference images at their 1 MP minimum × $0.015 = $0.03
  assert.equal(fal('fal-ai/flux-2-pro/edit', { prompt: 'put the mug on the desk', image_urls: ['https://x/a.png', 'https://x/b.png'], image_size: { width: 1024, height: 1024 } }), '0.06');
  const items = quoteRequest(catalog, 'fal', { prompt: 'p', image_urls: ['https://x/a.png'], image_size: 'square_hd' }, '/fal-ai/flux-2-pro/edit').items.map((i) => `${i.label}: ${i.quantity} × ${i.unitPrice} = ${i.cost}`);
  assert.deepEqual(items, ['First megapixel: 1 × 0.03 = 0.03', 'Input images (1 MP each, the minimum): 1 × 0.015 = 0.015']);
  // landscape_16_9 = 1024×576 = 0.5625 MP → rounded up to 1 MP × $0.012
  assert.equal(fal('fal-ai/flux-2', { prompt: 'a fox', image_size: 'landscape_16_9' }), '0.012');
  // 1 MP output + 1 input MP, both $0.012
  assert.equal(fal('fal-ai/flux-2/edit', { prompt: 'p', image_urls: ['https://x/a.png'], image_size: 'square_hd' }), '0.024');
  // 1920×1080 = 1.98 MP → 2 MP: $0.07 first + $0.03
  assert.equal(fal('fal-ai/flux-2-max', { prompt: 'p', image_size: { width: 1920, height: 1080 } }), '0.1');
});

test('Recraft V4 vectors on fal and Replicate', () => {
  assert.equal(fal('fal-ai/recraft/v4/text-to-vector', { prompt: 'a logo' }), '0.08');
  assert.equal(fal('fal-ai/recraft/v4/pro/text-to-vector', { prompt: 'a poster' }), '0.3');
  assert.equal(replicate('recraft-ai/recraft-v4-svg', { prompt: 'an icon' }), '0.08');
  assert.equal(replicate('recraft-ai/recraft-v4-pro-svg', { prompt: 'an icon' }), '0.3');
});

test('Nano Banana 2 and Pro on fal and Replicate, by resolution', () => {
  assert.equal(fal('fal-ai/nano-banana-2', { prompt: 'p', resolution: '2K', num_images: 2 }), '0.24'); // 2 × $0.08 × 1.5
  assert.equal(fal('fal-ai/nano-banana-2', { prompt: 'p', resolution: '0.5K' }), '0.06');
  assert.equal(fal('fal-ai/nano-banana-pro', { prompt: 'p', resolution: '4K' }), '0.3');
  assert.equal(fal('fal-ai/nano-banana-pro/edit', { prompt: 'p', image_urls: ['https://x/a.png'] }), '0.15');
  assert.equal(replicate('google/nano-banana-pro', { prompt: 'p', resolution: '2K' }), '0.15');
  assert.equal(replicate('google/nano-banana-2', { prompt: 'p', resolution: '4K' }), '0.151');
});

test('Veo 3.1 Fast on fal and its image / reference / first-last-frame endpoints', () => {
  assert.equal(fal('fal-ai/veo3.1/fast', { prompt: 'p', duration: '8s' }), '1.2'); // 8 s × $0.15 (audio on by default)
  assert.equal(fal('fal-ai/veo3.1/fast/image-to-video', { prompt: 'p', image_url: 'https://x/a.png', duration: '6s', generate_audio: false }), '0.6'); // 6 × $0.10
  assert.equal(fal('fal-ai/veo3.1/fast/first-last-frame-to-video', { prompt: 'p', duration: '8s', resolution: '4k' }), '2.8'); // 8 × $0.35
  assert.equal(fal('fal-ai/veo3.1/reference-to-video', { prompt: 'p', duration: '8s' }), '3.2'); // standard tier: 8 × $0.40
  // 4K with audio left at its default (on) is the 4K with-audio price, not the 720p one
  assert.equal(fal('fal-ai/veo3.1', { prompt: 'p', duration: '8s', resolution: '4k' }), '4.8'); // 8 × $0.60
  assert.equal(fal('fal-ai/veo3.1/first-last-frame-to-video', { prompt: 'p', duration: '4s', generate_audio: false }), '0.8'); // 4 × $0.20
});

test('gemini:models/veo-… quotes on the CLI as on the proxy', () => {
  const cli = quoteUsage(catalog, 'gemini:models/veo-3.1-generate-preview', { videoSeconds: 8 }, { resolution: '1080p' });
  assert.equal(exact(cli), '3.2'); // 8 s × $0.40
  const proxy = quoteRequest(catalog, 'gemini', { instances: [{ prompt: 'p' }], parameters: { durationSeconds: 8, resolution: '1080p' } }, '/v1beta/models/veo-3.1-generate-preview:predictLongRunning');
  assert.equal(exact(proxy), '3.2');
  assert.equal(exact(quoteUsage(catalog, 'gemini:models/veo-3.1-fast-generate-preview', { videoSeconds: 8 }, { resolution: '1080p' })), '0.96');
});

test('gpt-image-1.5 and gpt-image-1-mini per image on OpenAI', () => {
  const img = (model: string, quality: string, size: string) => exact(quoteRequest(catalog, 'openai', { model, prompt: 'p', quality, size }, '/v1/images/generations'));
  assert.equal(img('gpt-image-1.5', 'high', '1024x1536'), '0.2');
  assert.equal(img('gpt-image-1.5', 'low', '1024x1024'), '0.009');
  assert.equal(img('gpt-image-1-mini', 'medium', '1024x1024'), '0.011');
  assert.equal(img('gpt-image-1-mini', 'high', '1536x1024'), '0.052');
});

test('Replicate black-forest-labs/flux-2-pro: $0.015 a run + $0.015 per output MP + $0.015 per input image MP (1024² px, rounded up)', () => {
  // resolution "2 MP" with two reference images: $0.015 run + 2 × $0.015 output + 2 × $0.015 input (1 MP minimum each)
  assert.equal(replicate('black-forest-labs/flux-2-pro', { prompt: 'the mug on the desk', resolution: '2 MP', aspect_ratio: '1:1', input_images: ['https://x/a.png', 'https://x/b.png'] }), '0.075');
  const q = quoteRequest(catalog, 'replicate', { input: { prompt: 'p', resolution: '2 MP', input_images: ['https://x/a.png', 'https://x/b.png'] } }, '/v1/models/black-forest-labs/flux-2-pro/predictions');
  assert.deepEqual(q.items.map((i) => `${i.label}: ${i.quantity} × ${i.unitPrice} = ${i.cost}`), [
    'First megapixel: 1 × 0.03 = 0.03', 'Additional megapixels: 1 × 0.015 = 0.015', 'Input images (1 MP each, the minimum): 2 × 0.015 = 0.03',
  ]);
  // to the nano-dollar, from the catalog entry itself
  const r = catalog.resolve('replicate', 'black-forest-labs/flux-2-pro');
  assert.equal(r.media?.source.url, 'https://github.com/HeyPuter/puter/pull/2806');
  assert.equal(priceCall({ images: 1, megapixelsPerImage: '4' }, r, { params: { inputImages: 3 } }).cost, 120_000_000n); // 0.03 + 3 × 0.015 + 3 × 0.015
  // no resolution: Replicate's default "1 MP" — $0.03
  assert.equal(replicate('black-forest-labs/flux-2-pro', { prompt: 'a fox' }), '0.03');
  // "0.5 MP" rounds up to 1 MP
  assert.equal(replicate('black-forest-labs/flux-2-pro', { prompt: 'a fox', resolution: '0.5 MP' }), '0.03');
  // aspect_ratio custom: width × height (1920×1080 = 1.98 MP of 1024² → 2), resolution ignored as Replicate ignores it
  assert.equal(replicate('black-forest-labs/flux-2-pro', { prompt: 'a fox', aspect_ratio: 'custom', width: 1920, height: 1080, resolution: '4 MP' }), '0.045');
  // match_input_image: the output size is the input image's, not in the request — unpriced, with why
  const m = quoteRequest(catalog, 'replicate', { input: { prompt: 'p', aspect_ratio: 'match_input_image', resolution: 'match_input_image', input_images: ['https://x/a.png'] } }, '/v1/models/black-forest-labs/flux-2-pro/predictions');
  assert.equal(m.items.length, 0);
  assert.match(m.unpriced ?? '', /black-forest-labs\/flux-2-pro/);
});

test('Replicate google/veo-3.1 per second of output video: $0.40 with audio (the default), $0.20 without', () => {
  assert.equal(replicate('google/veo-3.1', { prompt: 'a drone shot over a lake' }), '3.2'); // default 8 s × $0.40
  assert.equal(replicate('google/veo-3.1', { prompt: 'p', duration: 6, resolution: '1080p', generate_audio: false }), '1.2'); // 6 × $0.20
  assert.equal(replicate('google/veo-3.1', { prompt: 'p', duration: 4, resolution: '720p', generate_audio: true, reference_images: ['https://x/a.png'] }), '1.6'); // 4 × $0.40
  const r = catalog.resolve('replicate', 'google/veo-3.1');
  assert.equal(r.media?.kind, 'video');
  assert.equal(priceCall({ videoSeconds: 8 }, r, { params: { audio: false } }).cost, 1_600_000_000n);
  assert.equal(priceCall({ videoSeconds: 8 }, r, { params: {} }).cost, 3_200_000_000n);
});

test('ids without a published price stay unpriced with a reason, never $0', () => {
  for (const [p, body, path] of [
    ['replicate', { input: { prompt: 'p' } }, '/v1/models/black-forest-labs/flux-2-flex/predictions'],
    ['replicate', { input: { prompt: 'p', duration: 8 } }, '/v1/models/google/veo-3.1-lite/predictions'],
  ] as const) {
    const q = quoteRequest(catalog, p, body, path);
    assert.match(q.unpriced ?? '', /unknown model|no media price|not in the price catalog/, path);
  }
});
