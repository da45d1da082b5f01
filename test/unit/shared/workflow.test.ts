import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { bundledCatalog } from '../../../shared/catalog.ts';
import { parseWorkflow, quoteWorkflow, WorkflowError, nodeUsage } from '../../../shared/workflow.ts';
import { usdToNanoExact, nanoToUsd } from '../../../shared/money.ts';
import type { QuoteItem, QuoteResult } from '../../../shared/api.ts';

const catalog = bundledCatalog();

const YAML_WF = `name: product-shots
description: brief → hero images → teaser → copy
nodes:
  - id: brief
    model: openai:gpt-4o-mini
    input_tokens: 1200
    output_tokens: 400
    repeat: 10
  - id: hero
    model: fal:fal-ai/flux-2-pro
    images: 4
    size: 1024x1024
  - id: teaser
    model: gemini:veo-3.1-generate-preview
    seconds: 8
    resolution: 1080p
  - id: copy
    provider: anthropic
    request:
      model: claude-sonnet-4-5
      max_tokens: 1024
      messages:
        - role: user
          content: "What is the capital of Australia, and why was it chosen?"
  - id: draft
    model: openai:gpt-4o-mini
    input_tokens: 2000
    max_output_tokens: 1000
`;

// Per node, by hand from the catalog:
//  brief  gpt-4o-mini: 1200 × 0.15/M + 400 × 0.60/M = 0.00018 + 0.00024 = 0.00042 × 10     = 0.0042 (all three)
//  hero   FLUX.2 [pro]: 1024×1024 = 1 MP → $0.03 × 4 images                             = 0.12
//  teaser Veo 3.1 (Gemini API): 8 s × $0.40                                               = 3.2
//  copy   claude-sonnet-4-5: 19 input tokens (13 text + 3 per message + 3) × $3/M = 0.000057
//         expected + 500 × $15/M = 0.0075 → 0.007557; max + 1024 × $15/M = 0.01536 → 0.015417
//  draft  gpt-4o-mini: 2000 × 0.15/M = 0.0003; expected + 500 × 0.6/M = 0.0003 → 0.0006; max + 1000 × 0.6/M → 0.0009
const EXPECTED_NODES = {
  brief: ['0.0042', '0.0042', '0.0042'],
  hero: ['0.12', '0.12', '0.12'],
  teaser: ['3.2', '3.2', '3.2'],
  copy: ['0.000057', '0.007557', '0.015417'],
  draft: ['0.0003', '0.0006', '0.0009'],
};
// totals: min    0.0042 + 0.12 + 3.2 + 0.000057 + 0.0003 = 3.324557
//         expected 0.0042 + 0.12 + 3.2 + 0.007557 + 0.0006 = 3.332357
//         max      0.0042 + 0.12 + 3.2 + 0.015417 + 0.0009 = 3.340517
const EXPECTED_TOTAL = ['3.324557', '3.332357', '3.340517'];

function checkQuote(q: QuoteResult) {
  assert.equal(q.unpriced, 0);
  assert.deepEqual(Object.fromEntries(q.items.map((i) => [i.node, [i.min, i.expected, i.max]])), EXPECTED_NODES);
  assert.deepEqual([q.min, q.expected, q.max], EXPECTED_TOTAL);
  // each node's itemized lines add up to its expected cost
  for (const i of q.items) assert.equal(nanoToUsd(i.items.reduce((a, l) => a + usdToNanoExact(l.cost), 0n)), i.expected, `items of ${i.node}`);
  // the total is exactly the sum of the nodes, for each of min / expected / max
  for (const k of ['min', 'expected', 'max'] as const) {
    const sum = q.items.reduce((a, i) => a + usdToNanoExact(i[k]), 0n);
    assert.equal(nanoToUsd(sum), q[k]);
  }
}

describe('workflow: quoting', () => {
  test('YAML: per-node items, and the total is exactly the sum of the nodes', () => {
    const wf = parseWorkflow(YAML_WF, 'product-shots.yaml');
    assert.equal(wf.nodes.length, 5);
    const q = quoteWorkflow(catalog, wf);
    checkQuote(q);
    const byNode: Record<string, QuoteItem> = Object.fromEntries(q.items.map((i) => [i.node, i]));
    assert.deepEqual(byNode.brief!.items.map((l) => [l.label, l.quantity, l.cost]), [['Input tokens ×10', '1200', '0.0018'], ['Output tokens ×10', '400', '0.0024']]);
    assert.equal(byNode.brief!.repeat, 10);
    assert.deepEqual(byNode.hero!.items.map((l) => [l.label, l.quantity, l.cost]), [['First megapixel', '4', '0.12']]);
    assert.deepEqual(byNode.teaser!.items.map((l) => [l.label, l.quantity, l.unitPrice, l.cost]), [['Video seconds', '8', '0.40', '3.2']]);
    assert.deepEqual(byNode.copy!.notes, ['input tokens approximated with the o200k_base tokenizer']);
  });

  test('JSON: the same workflow gives the same quote', () => {
    const wf = parseWorkflow(YAML_WF);
    const json = JSON.stringify(wf, null, 2);
    checkQuote(quoteWorkflow(catalog, parseWorkflow(json, 'product-shots.json')));
  });

  test('an unpriced node is counted and left out of the total, never added as $0 silently', () => {
    const wf = parseWorkflow(`nodes:
  - id: a
    model: openai:gpt-4o-mini
    input_tokens: 1000
    output_tokens: 500
  - id: b
    model: openai:gpt-nonexistent-9
    input_tokens: 1000
    output_tokens: 500
`);
    const q = quoteWorkflow(catalog, wf);
    assert.equal(q.unpriced, 1);
    assert.match(q.items[1]!.unpriced ?? '', /unknown model/);
    assert.deepEqual([q.min, q.expected, q.max], ['0.00045', '0.00045', '0.00045']);
  });

  test('a repeated node with unknown output: range and items are both multiplied', () => {
    const q = quoteWorkflow(catalog, parseWorkflow(`nodes:
  - id: draft
    model: openai:gpt-4o-mini
    input_tokens: 2000
    max_output_tokens: 1000
    repeat: 3
`));
    const n = q.items[0]!;
    // per call: 0.0003 / 0.0006 / 0.0009 (see above) × 3
    assert.deepEqual([n.min, n.expected, n.max], ['0.0009', '0.0018', '0.0027']);
    assert.deepEqual(n.items.map((l) => [l.label, l.quantity, l.cost]), [['Input tokens ×3', '2000', '0.0009'], ['Output tokens ×3', '500', '0.0009']]);
  });

  test('cached input tokens and megapixels map to usage leaves', () => {
    const wf = parseWorkflow(`nodes:
  - id: a
    model: openai:gpt-4o-mini
    input_tokens: 1000
    cached_input_tokens: 800
    output_tokens: 10
  - id: up
    model: fal:fal-ai/clarity-upscaler
    images: 200
    megapixels: 8
`);
    assert.deepEqual(nodeUsage(wf.nodes[0]!), { inputTokens: 200, cacheReadTokens: 800, outputTokens: 10 });
    const q = quoteWorkflow(catalog, wf);
    // 200 × 0.15 + 800 × 0.075 + 10 × 0.6 per M = 0.00003 + 0.00006 + 0.000006 = 0.000096
    assert.equal(q.items[0]!.expected, '0.000096');
    // 200 images × 8 MP × $0.03 = 48
    assert.equal(q.items[1]!.expected, '48');
    assert.equal(q.expected, '48.000096');
  });

  test('an upscale node by input size and upscale_factor; an edit node with its reference images', () => {
    const wf = parseWorkflow(`nodes:
  - id: up2x
    model: fal:fal-ai/clarity-upscaler
    input_size: 1024x1024
    upscale_factor: 2
  - id: up4k
    model: fal:fal-ai/clarity-upscaler
    images: 10
    input_size: 1920x1080
  - id: edit
    model: fal:fal-ai/flux-2-pro/edit
    size: 1024x1024
    input_images: 3
`);
    const q = quoteWorkflow(catalog, wf);
    // 1024×1024 × 2 = 2048×2048 = 4 MP (1 MP = 1024² px) × $0.03
    assert.equal(q.items[0]!.expected, '0.12');
    // 1920×1080 × 2 (the default factor) = 3840×2160 = 7.91 MP → 8 MP × $0.03 × 10 images
    assert.equal(q.items[1]!.expected, '2.4');
    // 1 output MP ($0.03) + 3 reference images at 1 MP × $0.015
    assert.equal(q.items[2]!.expected, '0.075');
  });
});

function fails(text: string, file: string | null): WorkflowError {
  try {
    parseWorkflow(text, file);
  } catch (e) {
    assert.ok(e instanceof WorkflowError, `expected a WorkflowError, got ${String(e)}`);
    return e;
  }
  assert.fail('parseWorkflow accepted an invalid workflow');
}

describe('workflow: errors name the file and the line', () => {
  test('malformed YAML points at the broken line', () => {
    const text = `name: broken
nodes:
  - id: a
    model: openai:gpt-4o-mini
    input_tokens: 10: 20
`;
    const e = fails(text, 'flows/broken.yaml');
    assert.equal(e.line, 5);
    assert.equal(e.file, 'flows/broken.yaml');
    assert.match(e.message, /^flows\/broken\.yaml:5: /);
    assert.equal(e.code, 'E_WORKFLOW');
  });

  test('tab indentation and an unclosed JSON bracket: the right line', () => {
    assert.equal(fails('nodes:\n  - id: a\n\tmodel: x\n', 'tabs.yaml').line, 3);
    const e = fails('{\n  "nodes": [\n    { "id": "a",\n      "model": "openai:gpt-4o-mini" \n  ]\n}\n', 'wf.json');
    assert.equal(e.line, 5);
    assert.match(e.message, /^wf\.json:5: /);
  });

  test('a node missing model → error at the line of that node', () => {
    const text = `name: two
nodes:
  - id: first
    model: openai:gpt-4o-mini
    input_tokens: 1
    output_tokens: 1
  - id: second
    input_tokens: 1
    output_tokens: 1
`;
    const e = fails(text, 'two.yaml');
    assert.equal(e.line, 7);
    assert.match(e.message, /^two\.yaml:7: nodes\.1: a node needs "model"/);
  });

  test('a wrong type points at the value; an unknown key is refused', () => {
    const text = `nodes:
  - id: a
    model: openai:gpt-4o-mini
    input_tokens: lots
`;
    const e = fails(text, 'types.yaml');
    assert.equal(e.line, 4);
    assert.match(e.message, /nodes\.0\.input_tokens/);
    const u = fails('nodes:\n  - id: a\n    model: openai:gpt-4o-mini\n    temperature: 0.2\n', 'keys.yaml');
    assert.equal(u.line, 2);
    assert.match(u.message, /temperature/);
    assert.match(fails('nodes: []\n', null).message, /^workflow:1: nodes: a workflow needs at least one node/);
  });

  test('duplicate ids → error at the second id', () => {
    const text = `nodes:
  - id: a
    model: openai:gpt-4o-mini
    input_tokens: 1
    output_tokens: 1
  - id: b
    model: openai:gpt-4o-mini
    input_tokens: 1
    output_tokens: 1
  - id: a
    model: openai:gpt-4o-mini
    input_tokens: 1
    output_tokens: 1
`;
    const e = fails(text, 'dup.yaml');
    assert.equal(e.line, 10);
    assert.match(e.message, /^dup\.yaml:10: duplicate node id "a"/);
  });
});
