/**
 * Workflow files: a list of nodes, each a model with its parameters and a repeat count.
 * `quoteWorkflow` prices every node and the total is exactly the sum of the nodes.
 *
 *   name: product-shots
 *   nodes:
 *     - id: brief
 *       model: openai:gpt-4o-mini
 *       input_tokens: 1200
 *       output_tokens: 400
 *       repeat: 10
 *     - id: hero
 *       model: fal:fal-ai/flux-2-pro
 *       images: 4
 *       size: 1024x1024
 *     - id: teaser
 *       model: gemini:veo-3.1-generate-preview
 *       seconds: 8
 *       resolution: 1080p
 *     - id: copy
 *       provider: anthropic
 *       request: { model: claude-sonnet-4-5, max_tokens: 1024, messages: [{ role: user, content: "..." }] }
 */
import { LineCounter, parseDocument, isNode } from 'yaml';
import { z } from 'zod';
import { nanoToUsd } from './money.ts';
import type { Catalog } from './catalog.ts';
import { quoteRequest, quoteUsage, sumQuote, tokenRange, splitModelRef, type QuoteOptions } from './quote.ts';
import type { QuoteItem, QuoteResult } from './api.ts';
import type { Usage } from './usage.ts';
import { toLineItems } from './pricing.ts';

const count = z.number().int().nonnegative();
const nodeSchema = z.object({
  id: z.string().min(1),
  model: z.string().min(1).optional(),
  provider: z.string().min(1).optional(),
  path: z.string().optional(),
  request: z.record(z.string(), z.unknown()).optional(),
  repeat: z.number().int().positive().default(1),
  input_tokens: count.optional(),
  output_tokens: count.optional(),
  max_output_tokens: count.optional(),
  cached_input_tokens: count.optional(),
  reasoning_tokens: count.optional(),
  images: count.optional(),
  size: z.string().regex(/^\d+x\d+$/, 'size is WIDTHxHEIGHT, e.g. 1024x1024').optional(),
  quality: z.string().optional(),
  resolution: z.string().optional(),
  audio: z.boolean().optional(),
  seconds: z.number().positive().optional(),
  megapixels: z.union([z.number().positive(), z.string().regex(/^\d+(\.\d+)?$/)]).optional(),
  /** Upscalers as users think of them: the input image's size and the factor (output = input × factor per side). */
  input_size: z.string().regex(/^\d+x\d+$/, 'input_size is WIDTHxHEIGHT, e.g. 1024x1024').optional(),
  upscale_factor: z.number().positive().max(16).optional(),
  /** Reference images sent to an edit endpoint (billed per input megapixel by some, e.g. FLUX.2 edits). */
  input_images: count.optional(),
}).strict().refine((n) => n.model || (n.provider && n.request), { message: 'a node needs "model" (provider:model) or "provider" + "request"' });

const workflowSchema = z.object({
  name: z.string().optional(),
  description: z.string().optional(),
  nodes: z.array(nodeSchema).min(1, 'a workflow needs at least one node'),
}).strict();

export type WorkflowNode = z.infer<typeof nodeSchema>;
export type Workflow = z.infer<typeof workflowSchema>;

export class WorkflowError extends Error {
  readonly code = 'E_WORKFLOW';
  constructor(message: string, readonly line: number | null, readonly file: string | null) {
    super(`${file ?? 'workflow'}${line ? `:${line}` : ''}: ${message}`);
  }
}

/** Parse JSON or YAML; errors name the file and the line. */
export function parseWorkflow(text: string, file: string | null = null): Workflow {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    throw new WorkflowError(e.message.split('\n')[0]!, lc.linePos(e.pos[0]).line, file);
  }
  const result = workflowSchema.safeParse(doc.toJS());
  if (!result.success) {
    const issue = result.error.issues[0]!;
    let node: unknown = doc.getIn(issue.path as (string | number)[], true);
    // for a missing key, point at the object that lacks it
    for (let i = issue.path.length; (!isNode(node) || !node.range) && i > 0; i--) node = doc.getIn(issue.path.slice(0, i - 1) as (string | number)[], true);
    const line = isNode(node) && node.range ? lc.linePos(node.range[0]).line : null;
    const where = issue.path.length ? issue.path.join('.') + ': ' : '';
    throw new WorkflowError(where + issue.message, line, file);
  }
  const ids = new Set<string>();
  for (const [i, n] of result.data.nodes.entries()) {
    if (ids.has(n.id)) {
      const node = doc.getIn(['nodes', i, 'id'], true);
      throw new WorkflowError(`duplicate node id "${n.id}"`, isNode(node) && node.range ? lc.linePos(node.range[0]).line : null, file);
    }
    ids.add(n.id);
  }
  return result.data;
}

export function nodeUsage(n: WorkflowNode): Usage {
  const u: Usage = {};
  if (n.input_tokens !== undefined) u.inputTokens = n.input_tokens - (n.cached_input_tokens ?? 0);
  if (n.cached_input_tokens) u.cacheReadTokens = n.cached_input_tokens;
  if (n.output_tokens !== undefined) u.outputTokens = n.output_tokens;
  if (n.reasoning_tokens) u.reasoningTokens = n.reasoning_tokens;
  if (n.images !== undefined) u.images = n.images;
  if (n.seconds !== undefined) u.videoSeconds = n.seconds;
  if (n.megapixels !== undefined) u.megapixelsPerImage = String(n.megapixels);
  return u;
}

/** An upscale node's output size: its input size × upscale_factor per side (2 when only the size is given). */
function upscaledSize(n: WorkflowNode): string | undefined {
  if (!n.input_size) return undefined;
  const [w, h] = n.input_size.split('x').map(Number) as [number, number];
  const f = n.upscale_factor ?? 2;
  return `${Math.round(w * f)}x${Math.round(h * f)}`;
}

export function quoteNode(catalog: Catalog, n: WorkflowNode, opts: QuoteOptions = {}): QuoteItem {
  if (n.request) {
    const provider = n.provider ?? splitModelRef(n.model!).provider;
    return quoteRequest(catalog, provider, n.model && !n.request.model ? { ...n.request, model: splitModelRef(n.model).model } : n.request, n.path ?? '', opts, n.id, n.repeat);
  }
  const params = { size: n.size ?? upscaledSize(n), quality: n.quality, resolution: n.resolution, audio: n.audio, inputImages: n.input_images };
  if (n.input_tokens !== undefined && n.output_tokens === undefined) {
    // known input, unknown output: a range like a request quote
    const { provider, model } = splitModelRef(n.model!);
    const r = tokenRange(catalog, { provider, model, inputTokens: n.input_tokens, maxOutput: n.max_output_tokens ?? null, kind: 'chat' }, opts);
    const times = BigInt(n.repeat);
    if (!r.range) return { node: n.id, provider, model, repeat: n.repeat, min: '0', expected: '0', max: '0', items: [], unpriced: r.reason, notes: r.notes };
    return {
      node: n.id, provider, model, repeat: n.repeat,
      min: nanoToUsd(r.range.min.cost * times), expected: nanoToUsd(r.range.expected.cost * times), max: nanoToUsd(r.range.max.cost * times),
      items: toLineItems(r.range.expected.items).map((l, i) => (n.repeat === 1 ? l : { ...l, label: `${l.label} ×${n.repeat}`, cost: nanoToUsd(r.range!.expected.items[i]!.cost * times) })),
      unpriced: null, notes: r.notes,
    };
  }
  return quoteUsage(catalog, n.model!, nodeUsage(n), params, opts, n.id, n.repeat);
}

export function quoteWorkflow(catalog: Catalog, wf: Workflow, opts: QuoteOptions = {}): QuoteResult {
  const items = wf.nodes.map((n) => quoteNode(catalog, n, opts));
  const t = sumQuote(items);
  return { min: nanoToUsd(t.min), expected: nanoToUsd(t.expected), max: nanoToUsd(t.max), items, unpriced: items.filter((i) => i.unpriced).length };
}
