/**
 * Tool fees (issue 11, item 5). Gemini grounding with Google Search, driven by the official @google/genai
 * SDK through the proxy against the fake Gemini, whose grounded answers carry groundingMetadata as
 * the live API's do. Gemini 2.x bills $35 per 1,000 grounded prompts after 1,500 free a day;
 * Gemini 3 bills $14 per 1,000 search queries after 5,000 free prompts a month (Pacific time).
 * Anthropic's code execution container time: no response says it, so such calls are estimates that say why.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GoogleGenAI } from '@google/genai';
import Anthropic from '@anthropic-ai/sdk';
import { startRig, eventually, type Rig } from '../fixtures/engine.ts';
import { newCallId } from '../../electron/engine/ids.ts';
import type { CallRow } from '../../electron/engine/ledger.ts';
import type { CallRecord } from '../../shared/api.ts';

let rig: Rig;
let ai: GoogleGenAI;
before(async () => {
  rig = await startRig(['gemini', 'anthropic']);
  ai = new GoogleGenAI({ apiKey: 'g-test', httpOptions: { baseUrl: `${rig.url}/gemini` } });
});
after(async () => {
  await rig.close();
});

async function latest(): Promise<CallRecord> {
  return eventually(async () => {
    const [c] = await rig.engine.api.calls({ limit: 1, provider: 'gemini' });
    const full = c ? await rig.engine.api.call({ id: c.id }) : null;
    return full && full.status !== 'pending' ? full : null;
  }, 'the grounded call');
}

/** Earlier grounded calls of this period (another script's, say), written straight into the ledger. */
function seed(n: number, usage: Record<string, number>): void {
  const now = Date.now();
  for (let i = 0; i < n; i++) {
    const row: CallRow = {
      id: newCallId(), ts: now - 1000, provider: 'gemini', model: 'seeded', endpoint: 'generateContent', project: null, workflow: null,
      run: null, node: null, keyId: null, keyFingerprint: 'fp_seed', keyName: null, status: 'ok', httpStatus: 200, stream: false, durationMs: 1, ttfbMs: 1,
      usage, items: [], costNano: 0n, reservedNano: 0n, quoteMaxNano: null, quoteExpectedNano: null, estimated: false, unpriced: false,
      unpricedReason: null, priceSource: 'seed', error: null, blockedBy: null, prompt: null,
    };
    rig.engine.ledger.recordEnd(row);
  }
  rig.engine.ledger.flush();
}

test('Gemini 2.5: a grounded prompt inside the daily free allowance is a $0 line that says so; past 1,500 it is $0.035', async () => {
  rig.fakes.gemini!.next({ usage: { promptTokenCount: 1000, candidatesTokenCount: 100 } });
  const r = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'Who won euro 2024?', config: { tools: [{ googleSearch: {} }] } });
  assert.deepEqual(r.candidates?.[0]?.groundingMetadata?.webSearchQueries?.length, 2, 'the client gets the grounding metadata');
  let c = await latest();
  // tokens: 1000 × $0.30/M + 100 × $2.50/M = $0.00055; the grounded prompt is free (1st of 1,500 today)
  assert.equal(c.cost, '0.00055');
  const free = c.items.find((i) => i.label.startsWith('Google Search grounding'));
  assert.ok(free, JSON.stringify(c.items));
  assert.match(free.label, /free allowance \(grounded prompt 1 of 1,500 free today, Pacific time/);
  assert.equal(free.cost, '0');
  assert.equal((c.usage as Record<string, number>).groundedPrompts, 1);
  assert.equal((c.usage as Record<string, number>).groundingQueries, undefined, 'Gemini 2.x is billed per prompt, not per query');

  seed(1499, { groundedPrompts: 1 }); // 1,500 grounded prompts today with the call above
  rig.fakes.gemini!.next({ usage: { promptTokenCount: 1000, candidatesTokenCount: 100 } });
  await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'And 2020?', config: { tools: [{ googleSearch: {} }] } });
  c = await latest();
  // $0.00055 of tokens + 1 grounded prompt × $35/1,000 = $0.03555
  assert.equal(c.cost, '0.03555');
  const fee = c.items.find((i) => i.label === 'Google Search grounding (grounded prompts)');
  assert.deepEqual([fee?.quantity, fee?.unitPrice, fee?.cost], ['1', '35', '0.035']);

  // a call that did not search carries no grounding line
  rig.fakes.gemini!.next({ usage: { promptTokenCount: 1000, candidatesTokenCount: 100 } });
  await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'hi' });
  c = await latest();
  assert.equal(c.cost, '0.00055');
  assert.ok(!c.items.some((i) => i.label.includes('grounding')));
});

test('Gemini 3, streamed: billed per search query, after 5,000 free prompts a month', async () => {
  rig.fakes.gemini!.next({ usage: { promptTokenCount: 1000, candidatesTokenCount: 100 } });
  const stream = await ai.models.generateContentStream({ model: 'gemini-3-pro-preview', contents: 'Who won euro 2024?', config: { tools: [{ googleSearch: {} }] } });
  for await (const _ of stream) { /* read it all */ }
  let c = await latest();
  // tokens: 1000 × $2/M + 100 × $12/M = $0.0032; 2 queries inside the month's free 5,000
  assert.equal(c.cost, '0.0032');
  assert.equal((c.usage as Record<string, number>).groundingQueries, 2);
  assert.ok(c.items.some((i) => i.label.includes('free allowance') && i.quantity === '2' && i.cost === '0'), JSON.stringify(c.items));

  seed(5000, { groundingQueries: 3 });
  rig.fakes.gemini!.next({ usage: { promptTokenCount: 1000, candidatesTokenCount: 100 } });
  const again = await ai.models.generateContentStream({ model: 'gemini-3-pro-preview', contents: 'And 2020?', config: { tools: [{ googleSearch: {} }] } });
  for await (const _ of again) { /* read it all */ }
  c = await latest();
  // $0.0032 + 2 queries × $14/1,000 = $0.0312
  assert.equal(c.cost, '0.0312');
  const fee = c.items.find((i) => i.label === 'Google Search grounding (search queries)');
  assert.deepEqual([fee?.quantity, fee?.cost], ['2', '0.028']);
});

test('a grounded call of a Gemini model with no grounding price is unpriced with the reason, never free', async () => {
  rig.fakes.gemini!.next({ usage: { promptTokenCount: 1000, candidatesTokenCount: 100 } });
  await ai.models.generateContent({ model: 'gemini-1.5-flash', contents: 'Who won euro 2024?', config: { tools: [{ googleSearch: {} }] } });
  const c = await latest();
  assert.equal(c.unpriced, true);
  assert.match(c.unpricedReason ?? '', /grounding/);
});

test('Anthropic code execution: tokens priced exactly, the call marked estimated with why (container time is billed apart)', async () => {
  const client = new Anthropic({ apiKey: 'sk-ant-test', baseURL: `${rig.url}/anthropic`, maxRetries: 0 });
  for (const stream of [false, true]) {
    rig.fakes.anthropic!.next({ usage: { input_tokens: 1000, output_tokens: 100 } });
    const params = {
      model: 'claude-sonnet-4-5', max_tokens: 1024, messages: [{ role: 'user' as const, content: 'mean of 1..10?' }],
      tools: [{ type: 'code_execution_20250825', name: 'code_execution' }], betas: ['code-execution-2025-08-25'],
    };
    if (stream) {
      const s = client.beta.messages.stream(params as never);
      const final = await s.finalMessage();
      assert.ok((final as unknown as { container?: { id: string } }).container?.id, 'the client gets the container');
    } else {
      const m = await client.beta.messages.create(params as never);
      assert.ok((m as unknown as { container?: { id: string } }).container?.id);
    }
    const c = await eventually(async () => {
      const [x] = await rig.engine.api.calls({ limit: 1, provider: 'anthropic' });
      const full = x ? await rig.engine.api.call({ id: x.id }) : null;
      return full && full.status !== 'pending' ? full : null;
    }, 'the code execution call');
    // claude-sonnet-4-5: 1000 × $3/M + 100 × $15/M = $0.0045
    assert.equal(c.cost, '0.0045', `stream=${stream}`);
    assert.equal(c.estimated, true);
    assert.match(c.priceSource ?? '', /code execution container time not included/);
  }
  // the same model without the tool: exact, not estimated
  rig.fakes.anthropic!.next({ usage: { input_tokens: 1000, output_tokens: 100 } });
  await client.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 1024, messages: [{ role: 'user', content: 'hi' }] });
  const plain = await eventually(async () => {
    const [x] = await rig.engine.api.calls({ limit: 1, provider: 'anthropic' });
    const full = x ? await rig.engine.api.call({ id: x.id }) : null;
    return full && full.status !== 'pending' && !full.estimated ? full : null;
  }, 'the plain call');
  assert.equal(plain.cost, '0.0045');
});
