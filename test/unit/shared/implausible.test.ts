import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bundledCatalog } from '../../../shared/catalog.ts';
import { implausibleUsage, SANE_MAX_TOKENS } from '../../../shared/pricing.ts';
import { TOKEN_FIELDS, totalInputTokens, totalOutputTokens, type Usage } from '../../../shared/usage.ts';

const catalog = bundledCatalog();
const tok = (p: string, m: string) => catalog.resolve(p, m).token;

test('usage over the model\'s context window is implausible, with the reason', () => {
  // issue 10: 9,007,199,254,740,991 tokens → $6.76 billion; 1e12 → $150,000 on gpt-4o-mini
  assert.match(implausibleUsage({ outputTokens: Number.MAX_SAFE_INTEGER }, tok('openai', 'gpt-4o-mini')) ?? '', /implausible usage: the provider reported 9,007,199,254,740,991 tokens, more than the gpt-4o-mini context window of 128,000 tokens/);
  assert.match(implausibleUsage({ inputTokens: 1e12 }, tok('openai', 'gpt-4o-mini')) ?? '', /1,000,000,000,000 tokens/);
  assert.match(implausibleUsage({ inputTokens: 200_000 }, tok('openai', 'gpt-4o-mini')) ?? '', /context window/);
});

test('real usage up to the context window (and long-context tiers) is plausible', () => {
  assert.equal(implausibleUsage({ inputTokens: 120_000, outputTokens: 8_000 }, tok('openai', 'gpt-4o-mini')), null);
  assert.equal(implausibleUsage({ inputTokens: 900_000, cacheReadTokens: 100_000, outputTokens: 40_000 }, tok('gemini', 'gemini-2.5-pro')), null);
  // Sonnet 4.5 lists a 200K window but prices a >200K tier (the retired 1M beta): 1M is plausible
  assert.equal(implausibleUsage({ inputTokens: 950_000, outputTokens: 20_000 }, tok('anthropic', 'claude-sonnet-4-5')), null);
});

test('unknown window: a sane bound; media units: per-call bounds', () => {
  assert.equal(implausibleUsage({ inputTokens: 1_000_000 }, null), null);
  assert.match(implausibleUsage({ inputTokens: SANE_MAX_TOKENS + 1 }, null) ?? '', /no context window is known/);
  assert.match(implausibleUsage({ images: 1e9 }, null) ?? '', /1,000,000,000 images/);
  assert.match(implausibleUsage({ videoSeconds: 1e7 }, null) ?? '', /seconds of video/);
  assert.equal(implausibleUsage({ images: 4, videoSeconds: 8 }, null), null);
});

test('every token field counts toward the bound, spread over several fields (the sum, not one field)', () => {
  // each field alone is plausible; the fields the usage totals add up to more than the window
  for (const field of TOKEN_FIELDS) {
    const u = { [field]: 100_000, [field === 'inputTokens' ? 'outputTokens' : 'inputTokens']: 70_000 } as Usage;
    assert.equal(totalInputTokens(u) + totalOutputTokens(u) > 160_000, true, field);
    assert.match(implausibleUsage(u, tok('openai', 'gpt-4o-mini')) ?? '', /context window/, field);
  }
  // a field that is not a token count (requests, images) is not added to the tokens
  assert.equal(implausibleUsage({ inputTokens: 100_000, requests: 100 }, tok('openai', 'gpt-4o-mini')), null);
  // the token fields are exactly what the totals add up
  const all = Object.fromEntries(TOKEN_FIELDS.map((f, i) => [f, 2 ** i])) as Usage;
  assert.equal(totalInputTokens(all) + totalOutputTokens(all), 2 ** TOKEN_FIELDS.length - 1);
});
