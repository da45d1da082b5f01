/**
 * The ids users really send resolve and quote, each with a realistic request and a figure
 * computed by hand from the catalog's sourced prices (see shared/catalog/SOURCES.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bundledCatalog } from '../../../shared/catalog.ts';
import { quoteRequest, quoteUsage } from '../../../shared/quote.ts';
import type { QuoteItem } from '../../../shared/api.ts';

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

test('ids without a published price stay unpriced with a reason, never $0', () => {
  for (const [p, body, path] of [
    ['replicate', { input: { prompt: 'p' } }, '/v1/models/black-forest-labs/flux-2-pro/predictions'],
    ['replicate', { input: { prompt: 'p', duration: 8 } }, '/v1/models/google/veo-3.1/predictions'],
  ] as const) {
    const q = quoteRequest(catalog, p, body, path);
    assert.match(q.unpriced ?? '', /unknown model|no media price|not in the price catalog/, path);
  }
});
