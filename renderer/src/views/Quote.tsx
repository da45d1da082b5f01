import { useId, useState } from 'react';
import type { QuoteInput, QuoteResult } from '../../../shared/api.ts';
import { ApiCallError, toApiCallError } from '../bridge/errors.ts';
import { Badge, Card, ErrorNote, Money, PageHeader, Tabs, useLocale } from '../components/ui.tsx';
import { formatQuantity, formatUnitPrice } from '../format.ts';
import { useBridge } from '../store.ts';

const PROVIDERS = ['openai', 'anthropic', 'gemini', 'openrouter', 'fal', 'replicate'];

const EXAMPLE_REQUEST: Record<string, string> = {
  openai: JSON.stringify({ model: 'gpt-4.1', max_tokens: 1024, messages: [{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content: 'Summarise this quarter’s sales report in five bullet points.' }] }, null, 2),
  anthropic: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 2048, messages: [{ role: 'user', content: 'Write a migration plan from Postgres 13 to 16.' }] }, null, 2),
  gemini: JSON.stringify({ model: 'gemini-2.5-flash', contents: [{ role: 'user', parts: [{ text: 'Explain vector clocks.' }] }], generationConfig: { maxOutputTokens: 800 } }, null, 2),
  openrouter: JSON.stringify({ model: 'deepseek/deepseek-chat-v3', max_tokens: 512, messages: [{ role: 'user', content: 'Hello' }] }, null, 2),
  fal: JSON.stringify({ model: 'fal-ai/flux-pro/v1.1', prompt: 'a lighthouse at dusk, 35mm', num_images: 4 }, null, 2),
  replicate: JSON.stringify({ model: 'black-forest-labs/flux-schnell', prompt: 'a red bicycle', num_images: 2 }, null, 2),
};

const EXAMPLE_WORKFLOW = `# thumbnail pipeline: one prompt, four images, one upscale
nodes:
  - id: prompt
    model: anthropic:claude-haiku-4-5
    inputTokens: 1500
    outputTokens: 300
  - id: image
    model: fal:fal-ai/flux-pro/v1.1
    count: 4
  - id: upscale
    model: fal:fal-ai/clarity-upscaler
    megapixels: 8.4
`;

export function QuoteView() {
  const bridge = useBridge();
  const locale = useLocale();
  const [mode, setMode] = useState<'request' | 'workflow'>('request');
  const [provider, setProvider] = useState('openai');
  // pre-filled with an example, so one click on "Quote" shows what the view does
  const [body, setBody] = useState(EXAMPLE_REQUEST.openai!);
  const [workflow, setWorkflow] = useState(EXAMPLE_WORKFLOW);
  const [filename, setFilename] = useState<string | undefined>(undefined);
  const [error, setError] = useState<ApiCallError | null>(null);
  const [result, setResult] = useState<QuoteResult | null>(null);
  const [busy, setBusy] = useState(false);
  const errId = useId();
  const inputId = useId();

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    let input: QuoteInput;
    if (mode === 'request') {
      if (!body.trim()) {
        setError(new ApiCallError({ code: 'E_VALIDATION', message: 'Paste the JSON body of the request you want to price.' }));
        return;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch (err) {
        setError(new ApiCallError({ code: 'E_JSON', message: `The request body is not valid JSON: ${(err as Error).message}` }));
        return;
      }
      input = { kind: 'request', provider, body: parsed };
    } else {
      if (!workflow.trim()) {
        setError(new ApiCallError({ code: 'E_VALIDATION', message: 'Paste a workflow (JSON or YAML) or choose a file.' }));
        return;
      }
      input = { kind: 'workflow', text: workflow, ...(filename ? { filename } : {}) };
    }
    setBusy(true);
    try {
      setResult(await bridge.quote(input));
      setError(null);
    } catch (err) {
      setError(toApiCallError(err));
      setResult(null);
    } finally {
      setBusy(false);
    }
  };

  const onFile = async (file: File | undefined) => {
    if (!file) return;
    setWorkflow(await file.text());
    setFilename(file.name);
    setError(null);
  };

  return (
    <>
      <PageHeader title="Quote" sub="Price a request or a whole workflow before you run it: min, expected and max." />
      <div className="quote-layout">
        <Card testId="quote-input">
          <Tabs
            label="What to quote"
            value={mode}
            onChange={(m) => {
              setMode(m);
              setError(null);
            }}
            testId="quote-mode"
            tabs={[
              { value: 'request', label: 'Request body' },
              { value: 'workflow', label: 'Workflow' },
            ]}
          />
          <form onSubmit={(e) => void submit(e)} className="quote-form" noValidate>
            {mode === 'request' ? (
              <>
                <div className="row">
                  <label>
                    Provider
                    <select
                      value={provider}
                      onChange={(e) => {
                        // an untouched example follows the provider
                        if (body === (EXAMPLE_REQUEST[provider] ?? '') || !body.trim()) setBody(EXAMPLE_REQUEST[e.target.value] ?? '');
                        setProvider(e.target.value);
                      }}
                      data-testid="quote-provider"
                    >
                      {PROVIDERS.map((p) => (
                        <option key={p}>{p}</option>
                      ))}
                    </select>
                  </label>
                  <button type="button" className="btn btn-small" onClick={() => setBody(EXAMPLE_REQUEST[provider] ?? '')}>
                    Insert example
                  </button>
                </div>
                <label htmlFor={inputId}>Request body (JSON)</label>
                <textarea
                  id={inputId}
                  value={body}
                  onChange={(e) => setBody(e.target.value)}
                  rows={14}
                  spellCheck={false}
                  placeholder={EXAMPLE_REQUEST.openai}
                  aria-invalid={error ? true : undefined}
                  aria-describedby={error ? errId : undefined}
                  data-testid="quote-body"
                />
              </>
            ) : (
              <>
                <div className="row">
                  <label>
                    Workflow file
                    <input type="file" accept=".json,.yaml,.yml,application/json,text/yaml" onChange={(e) => void onFile(e.target.files?.[0])} data-testid="quote-file" />
                  </label>
                  <button
                    type="button"
                    className="btn btn-small"
                    onClick={() => {
                      setWorkflow(EXAMPLE_WORKFLOW);
                      setFilename('example.yaml');
                    }}
                  >
                    Insert example
                  </button>
                </div>
                <label htmlFor={inputId}>Workflow (JSON or YAML){filename ? <span className="muted"> · {filename}</span> : null}</label>
                <textarea
                  id={inputId}
                  value={workflow}
                  onChange={(e) => {
                    setWorkflow(e.target.value);
                    setFilename(undefined);
                  }}
                  rows={14}
                  spellCheck={false}
                  placeholder={EXAMPLE_WORKFLOW}
                  aria-invalid={error ? true : undefined}
                  aria-describedby={error ? errId : undefined}
                  data-testid="quote-workflow"
                />
              </>
            )}
            <ErrorNote error={error} id={errId} />
            <div className="row">
              <button type="submit" className="btn btn-primary" disabled={busy} data-testid="quote-submit">
                {busy ? 'Quoting…' : 'Quote'}
              </button>
            </div>
          </form>
        </Card>
        <Card title="Quote" testId="quote-result">
          {!result ? (
            <p className="muted">Paste a body and press Quote. Nothing is sent to a provider: pricing happens locally.</p>
          ) : (
            <>
              <div className="quote-totals">
                <div className="stat">
                  <div className="stat-label">Minimum</div>
                  <div className="stat-value">
                    <Money usd={result.min} testId="quote-total-min" />
                  </div>
                </div>
                <div className="stat stat-accent">
                  <div className="stat-label">Expected</div>
                  <div className="stat-value">
                    <Money usd={result.expected} testId="quote-total-expected" />
                  </div>
                </div>
                <div className="stat">
                  <div className="stat-label">Maximum</div>
                  <div className="stat-value">
                    <Money usd={result.max} testId="quote-total-max" />
                  </div>
                </div>
              </div>
              {result.unpriced > 0 ? (
                <p className="banner banner-warn" role="status">
                  {result.unpriced} node{result.unpriced === 1 ? '' : 's'} could not be priced and {result.unpriced === 1 ? 'is' : 'are'} not in the totals.
                </p>
              ) : null}
              {result.items.map((it, i) => (
                <div key={i} className="quote-item" data-testid="quote-item">
                  <div className="quote-item-head">
                    <div>
                      {it.node ? (
                        <>
                          <code>{it.node}</code> ·{' '}
                        </>
                      ) : null}
                      <strong>{it.model}</strong> <span className="muted small">{it.provider}</span>
                      {it.repeat > 1 ? <Badge tone="info">×{it.repeat}</Badge> : null}
                    </div>
                    {it.unpriced ? (
                      <Badge tone="warn">unpriced</Badge>
                    ) : (
                      <div className="small">
                        <Money usd={it.min} /> – <strong>
                          <Money usd={it.expected} />
                        </strong>{' '}
                        – <Money usd={it.max} />
                      </div>
                    )}
                  </div>
                  {it.unpriced ? <p className="muted small">{it.unpriced}</p> : null}
                  {it.items.length > 0 ? (
                    <table className="table items">
                      <tbody>
                        {it.items.map((li, j) => (
                          <tr key={j}>
                            <td>{li.label}</td>
                            <td className="num">{formatQuantity(li.quantity, locale)}</td>
                            <td className="num small">{formatUnitPrice(li.unitPrice, li.per, li.unit, locale)}</td>
                            <td className="num">
                              <Money usd={li.cost} />
                            </td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  ) : null}
                  {it.notes.length > 0 ? (
                    <ul className="notes">
                      {it.notes.map((n, j) => (
                        <li key={j} className="muted small">
                          {n}
                        </li>
                      ))}
                    </ul>
                  ) : null}
                </div>
              ))}
            </>
          )}
        </Card>
      </div>
    </>
  );
}
