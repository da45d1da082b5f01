import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { bundledCatalog } from '../../../shared/catalog.ts';
import { compare, describeWorkload } from '../../../shared/compare.ts';
import type { CompareResult } from '../../../shared/api.ts';

const catalog = bundledCatalog();
const table = (r: CompareResult) => r.rows.map((row) => [row.model, row.cost, row.cheapest]);

describe('compare', () => {
  test('chat workload across 3 token models: sorted, cheapest marked', () => {
    const r = compare(catalog, { kind: 'chat', calls: 10000, inputTokens: 1200, outputTokens: 400 }, ['openai:gpt-4o', 'gemini:gemini-2.5-flash', 'openai:gpt-4o-mini']);
    // per call:
    //   gpt-4o:           1200 × 2.50/M + 400 × 10/M  = 0.003   + 0.004 = 0.007    × 10,000 = 70
    //   gemini-2.5-flash: 1200 × 0.30/M + 400 × 2.5/M = 0.00036 + 0.001 = 0.00136  × 10,000 = 13.6
    //   gpt-4o-mini:      1200 × 0.15/M + 400 × 0.6/M = 0.00018 + 0.00024 = 0.00042 × 10,000 = 4.2
    assert.deepEqual(table(r), [
      ['openai:gpt-4o-mini', '4.2', true],
      ['gemini:gemini-2.5-flash', '13.6', false],
      ['openai:gpt-4o', '70', false],
    ]);
    assert.equal(r.description, '10,000 chat calls of 1,200 in / 400 out tokens');
    const mini = r.rows[0]!;
    assert.equal(mini.perUnit, '0.00042');
    assert.deepEqual(mini.items.map((l) => [l.label, l.quantity, l.cost]), [['Input tokens', '1200 ×10,000', '1.8'], ['Output tokens', '400 ×10,000', '2.4']]);
  });

  test('chat workload with cached input', () => {
    const r = compare(catalog, { kind: 'chat', calls: 1000, inputTokens: 1200, outputTokens: 400, cachedInputTokens: 1000 }, ['openai:gpt-4o-mini']);
    // 200 × 0.15/M + 1000 × 0.075/M + 400 × 0.6/M = 0.00003 + 0.000075 + 0.00024 = 0.000345 × 1,000
    assert.deepEqual(table(r), [['openai:gpt-4o-mini', '0.345', true]]);
    assert.equal(r.description, '1,000 chat calls of 1,200 in / 400 out tokens (1,000 cached)');
  });

  test('image workload: a chat model is listed as unable (cost null, reason), after the priced rows', () => {
    const r = compare(catalog, { kind: 'image', count: 100, size: '1024x1024', quality: 'high' }, [
      'openai:gpt-4o-mini', 'openai:gpt-image-1', 'fal:fal-ai/flux-2-pro', 'fal:fal-ai/recraft/v4/text-to-image', 'fal:fal-ai/veo3.1', 'acme:imagine-9', 'gpt-image-1',
    ]);
    // gpt-image-1 high 1024² $0.167 × 100 = 16.7; FLUX.2 [pro] 1 MP $0.03 × 100 = 3; Recraft V4 $0.04 × 100 = 4
    assert.deepEqual(table(r), [
      ['fal:fal-ai/flux-2-pro', '3', true],
      ['fal:fal-ai/recraft/v4/text-to-image', '4', false],
      ['openai:gpt-image-1', '16.7', false],
      ['openai:gpt-4o-mini', null, false],
      ['fal:fal-ai/veo3.1', null, false],
      ['acme:imagine-9', null, false],
      ['gpt-image-1', null, false],
    ]);
    const reasons = Object.fromEntries(r.rows.filter((x) => x.cost === null).map((x) => [x.model, x.reason]));
    assert.equal(reasons['openai:gpt-4o-mini'], 'openai:gpt-4o-mini is a chat model; it cannot do image workloads');
    assert.equal(reasons['fal:fal-ai/veo3.1'], 'fal:fal-ai/veo3.1 is a video model; it cannot do image workloads');
    assert.equal(reasons['acme:imagine-9'], 'unknown model: acme:imagine-9');
    assert.match(reasons['gpt-image-1'] ?? '', /is not provider:model/);
    assert.ok(r.rows.filter((x) => x.cost === null).every((x) => x.items.length === 0 && x.perUnit === null && !x.cheapest));
    assert.equal(r.description, '100 images at 1024×1024, high quality');
  });

  test('video: 60 s', () => {
    const models = ['gemini:veo-3.1-generate-preview', 'fal:fal-ai/veo3.1', 'fal:fal-ai/kling-video/v2.6/pro/image-to-video', 'openai:sora-2', 'openai:gpt-4o'];
    const withAudio = compare(catalog, { kind: 'video', seconds: 60, resolution: '1080p' }, models);
    // Veo (Gemini) $0.40/s → 24; Veo (fal, audio on) $0.40/s → 24; Kling 2.6 Pro with audio $0.14/s → 8.4; Sora 2 $0.10/s → 6
    assert.deepEqual(table(withAudio), [
      ['openai:sora-2', '6', true],
      ['fal:fal-ai/kling-video/v2.6/pro/image-to-video', '8.4', false],
      ['gemini:veo-3.1-generate-preview', '24', false],
      ['fal:fal-ai/veo3.1', '24', false],
      ['openai:gpt-4o', null, false],
    ]);
    const noAudio = compare(catalog, { kind: 'video', seconds: 60, resolution: '1080p', audio: false }, models.slice(0, 3));
    // fal Veo without audio $0.20/s → 12; Kling without audio $0.07/s → 4.2; Gemini Veo has no audio-free price → 24
    assert.deepEqual(table(noAudio), [
      ['fal:fal-ai/kling-video/v2.6/pro/image-to-video', '4.2', true],
      ['fal:fal-ai/veo3.1', '12', false],
      ['gemini:veo-3.1-generate-preview', '24', false],
    ]);
    assert.equal(noAudio.description, '60 s of 1080p video without audio');
    // two clips of 60 s
    assert.deepEqual(table(compare(catalog, { kind: 'video', seconds: 60, count: 2 }, ['openai:sora-2'])), [['openai:sora-2', '12', true]]);
  });

  test('upscale: 200 × 2 MP (×2 → 8 output MP each)', () => {
    const r = compare(catalog, { kind: 'upscale', count: 200, megapixels: '2' }, ['fal:fal-ai/clarity-upscaler', 'fal:fal-ai/flux-2-pro', 'openai:gpt-4o-mini']);
    // output = 2 MP × 2² = 8 MP × $0.03 = $0.24 per image × 200 = 48
    assert.deepEqual(table(r), [
      ['fal:fal-ai/clarity-upscaler', '48', true],
      ['fal:fal-ai/flux-2-pro', null, false],
      ['openai:gpt-4o-mini', null, false],
    ]);
    const up = r.rows[0]!;
    assert.equal(up.perUnit, '0.24');
    assert.deepEqual(up.items.map((l) => [l.label, l.quantity, l.cost]), [['Megapixels', '8 ×200', '48']]);
    assert.equal(r.rows[1]!.reason, 'fal:fal-ai/flux-2-pro is a image model; it cannot do upscale workloads');
    assert.equal(r.description, '200 upscales of 2 MP images');
    // ×4 from 1.5 MP: 24 MP × 0.03 = 0.72 × 200 = 144
    assert.deepEqual(table(compare(catalog, { kind: 'upscale', count: 200, megapixels: '1.5', factor: 4 }, ['fal:fal-ai/clarity-upscaler'])), [['fal:fal-ai/clarity-upscaler', '144', true]]);
  });

  test('replay: real usage re-priced on other models', () => {
    const replay = [
      { usage: { inputTokens: 1000, outputTokens: 500 }, calls: 1 },
      { usage: { inputTokens: 2000, cacheReadTokens: 1000 }, calls: 1 },
    ];
    const r = compare(catalog, { kind: 'replay', period: 'week' }, ['openai:gpt-4o-mini', 'fal:fal-ai/flux-2-pro'], replay);
    // gpt-4o-mini: 0.00045 + (2000 × 0.15 + 1000 × 0.075)/M = 0.00045 + 0.000375 = 0.000825
    assert.deepEqual(table(r), [['openai:gpt-4o-mini', '0.000825', true], ['fal:fal-ai/flux-2-pro', null, false]]);
    assert.equal(r.rows[1]!.reason, 'fal:fal-ai/flux-2-pro is not a token-priced model');
    assert.equal(describeWorkload({ kind: 'replay', period: 'week' }), 'your real traffic of the last week');
  });
});
