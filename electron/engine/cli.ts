/**
 * The `tollgate` CLI. Every report works whether or not the engine is running: with a running
 * engine the CLI talks to its control API; without one it opens the ledger itself.
 *
 * Exit codes: 0 ok · 1 runtime error · 2 bad input (flags, files, validation) · 3 a quote or
 * comparison has unpriced models · 4 the ledger or engine cannot be used.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option, CommanderError } from 'commander';
import Table from 'cli-table3';
import { parse as parseYaml } from 'yaml';
import { CONTROL_PREFIX, TOKEN_HEADER, type PriceDataInfo, type ApiArg, type ApiMethod, type ApiResult, type CallRecord, type QuoteResult, type Workload } from '../../shared/api.ts';
import { parseApiArg } from '../../shared/schemas.ts';
import { formatUsd } from '../../shared/money.ts';
import { bundledCatalog } from '../../shared/catalog.ts';
import { defaultDataDir, defaultPort } from './paths.ts';
import { Engine, EngineRunningError, runningEngine, startEngine } from './engine.ts';
import { readToken } from './control.ts';
import { toCallRecord } from './ledger.ts';
import { openSignedIn, signedInUrl } from './browser.ts';
import { installPriceData, PriceDataError, resetPriceData, validatePriceData } from './price-data.ts';

export const EXIT = { OK: 0, ERROR: 1, INPUT: 2, UNPRICED: 3, LEDGER: 4 } as const;

class CliError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT.INPUT) {
    super(message);
  }
}

type Call = <M extends ApiMethod>(m: M, arg: ApiArg<M>) => Promise<ApiResult<M>>;

interface Client {
  call: Call;
  close(): Promise<void>;
  offline: Engine | null;
}

async function connect(dataDir: string): Promise<Client> {
  const running = runningEngine(dataDir);
  const token = readToken(dataDir);
  if (running && token) {
    const call: Call = async (m, arg) => {
      const res = await fetch(`${running.url}${CONTROL_PREFIX}/rpc/${m}`, {
        method: 'POST', headers: { 'content-type': 'application/json', [TOKEN_HEADER]: token }, body: JSON.stringify(arg ?? {}),
      });
      const body = (await res.json()) as { error?: { code: string; message: string } };
      if (!res.ok) throw Object.assign(new Error(body.error?.message ?? `HTTP ${res.status}`), { code: body.error?.code });
      return body as ApiResult<typeof m>;
    };
    return { call, close: async () => {}, offline: null };
  }
  let engine: Engine;
  try {
    // offline: never recovers calls that a live engine (holding the data dir's lock) owns
    engine = new Engine({ dataDir, quiet: true, offline: true });
  } catch (e) {
    throw new CliError((e as Error).message, EXIT.LEDGER);
  }
  const call: Call = async (m, arg) => {
    const parsed = parseApiArg(m, arg ?? {});
    return (engine.api[m] as (a: unknown) => Promise<ApiResult<typeof m>>).call(engine.api, parsed);
  };
  return { call, close: async () => engine.closeQuietly(), offline: engine };
}

const money = (usd: string) => formatUsd(usd);
const print = (s: string): void => void process.stdout.write(s.endsWith("\n") ? s : s + "\n");
const asJson = (v: unknown) => print(JSON.stringify(v, null, 2));

function table(head: string[], rows: (string | number)[][]): string {
  const t = new Table({ head, style: { head: [], border: [] } });
  for (const r of rows) t.push(r.map(String));
  return t.toString();
}

function readFile(file: string): string {
  try {
    return fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${(e as Error).message}`);
  }
}

function int(name: string) {
  return (v: string) => {
    if (!/^\d+$/.test(v)) throw new CliError(`${name} must be a whole number, got "${v}"`);
    return Number(v);
  };
}

const program = new Command();
program
  .name('tollgate')
  .description('Tollgate: see and cap what your AI API calls cost, on your own machine.\n\nRoute your SDKs through the local proxy (`npx tollgate serve`), then use reports, caps and quotes.')
  .option('--data-dir <dir>', 'where the ledger, keys and settings live (default: per-OS config dir, or $TOLLGATE_DATA_DIR)')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride() // before the subcommands, which inherit it: a bad option value exits 2, not commander's 1
  .addHelpText('after', `
Exit codes: 0 ok, 1 error, 2 bad input, 3 unpriced model in a quote/compare, 4 ledger unavailable.

Run from a checkout as \`npx tollgate …\` (or \`npm run tollgate -- …\`).

Examples:
  npx tollgate serve                              # proxy on http://127.0.0.1:7411, prints the signed-in UI link
  npx tollgate quote --model openai:gpt-4o-mini --input-tokens 1000 --output-tokens 500
  npx tollgate compare --models openai:gpt-4o-mini,anthropic:claude-sonnet-4-5 --calls 10000 --input-tokens 1200 --output-tokens 400
  npx tollgate cap set --scope project:acme --period month --limit 50 --hard
  npx tollgate report --by model --period month --json`);

/** The running engine's URL, or where `npx tollgate serve` will listen by default. */
const proxyUrl = () => runningEngine(dataDir())?.url ?? `http://127.0.0.1:${defaultPort()}`;
const dataDir = () => (program.opts().dataDir as string | undefined) ?? defaultDataDir();

program.command('serve')
  .description('Run the metering proxy and control API on 127.0.0.1 (headless; the desktop app runs the same engine).')
  .option('--port <n>', `port (default ${defaultPort()}, or $TOLLGATE_PORT)`, int('--port'))
  .option('--upstream <name=url...>', 'replace a provider base URL, e.g. openai=http://127.0.0.1:9000 (repeatable; also $TOLLGATE_UPSTREAM_<NAME>)')
  .option('--no-ui', 'do not serve the web UI')
  .option('--open', 'open the UI in your browser once started')
  .action(async (o: { port?: number; upstream?: string[]; ui: boolean; open?: boolean }) => {
    const upstreams: Record<string, string> = {};
    for (const u of o.upstream ?? []) {
      const i = u.indexOf('=');
      if (i <= 0) throw new CliError(`--upstream takes NAME=URL, got "${u}"`);
      try {
        new URL(u.slice(i + 1));
      } catch {
        throw new CliError(`--upstream ${u}: "${u.slice(i + 1)}" is not a URL`);
      }
      upstreams[u.slice(0, i)] = u.slice(i + 1);
    }
    const uiDir = o.ui ? path.resolve(import.meta.dirname, '../../dist/renderer') : null;
    // Signals are handled from the start: a SIGTERM while starting or opening a browser still
    // stops the engine cleanly (and releases the data dir) instead of killing the process.
    let engine: Engine | null = null;
    let stopping = false;
    const stop = async () => {
      if (stopping) return;
      stopping = true;
      await engine?.stop();
      process.exit(0);
    };
    process.on('SIGINT', () => void stop());
    process.on('SIGTERM', () => void stop());
    try {
      engine = await startEngine({ dataDir: dataDir(), port: o.port ?? defaultPort(), upstreams, uiDir: uiDir && fs.existsSync(uiDir) ? uiDir : null });
    } catch (e) {
      const err = e as Error & { code?: string };
      if (e instanceof EngineRunningError) throw new CliError(e.message, EXIT.ERROR);
      throw new CliError(err.code === 'EADDRINUSE' ? `port ${o.port ?? defaultPort()} is in use (is Tollgate already running? try --port)` : err.message, EXIT.LEDGER);
    }
    if (stopping) return void (await engine.stop(), process.exit(0));
    const url = engine.url;
    print(`Tollgate is metering on ${url}  (data: ${engine.dataDir})`);
    print(`  OpenAI SDK:     baseURL = "${url}/openai/v1"`);
    print(`  Anthropic SDK:  baseURL = "${url}/anthropic"   (Claude Code: ANTHROPIC_BASE_URL=${url}/anthropic)`);
    print(`  Gemini SDK:     httpOptions.baseUrl = "${url}/gemini"`);
    if (uiDir && !fs.existsSync(uiDir)) print('  The web UI is not built here: run `npm run build:renderer` (or start with `npm start`, which builds it).');
    else if (o.ui) {
      print(`  UI, signed in:  ${signedInUrl(url, engine.token)}`);
      print('                  (the part after # stays in your browser; keep this link to yourself)');
    }
    if (o.open && o.ui && uiDir && fs.existsSync(uiDir)) {
      const r = await openSignedIn(engine.dataDir, url, engine.token);
      print(r.opened ? '  Opened the UI in your browser.' : `  Did not open a browser (${r.reason}): open the link above yourself.`);
    }
    if (stopping) await stop();
  });

program.command('open')
  .description('Open the UI of the running engine in your browser, already signed in (the token travels in the URL fragment, never a query string or a command line).')
  .option('--print-url', 'print the signed-in URL instead of opening it')
  .action(async (o: { printUrl?: boolean }) => {
    const running = runningEngine(dataDir());
    const token = readToken(dataDir());
    if (!running || !token) throw new CliError('Tollgate is not running: start it with `npm start` or `npx tollgate serve`.', EXIT.LEDGER);
    if (o.printUrl) return print(signedInUrl(running.url, token));
    const r = await openSignedIn(dataDir(), running.url, token);
    if (r.opened) return print(`Opened ${running.url}/ in your browser.`);
    print(`Could not open a browser (${r.reason}). Open this link yourself:\n  ${signedInUrl(running.url, token)}`);
    process.exitCode = EXIT.ERROR;
  });

/** The token price data line of `tollgate prices`: which data, its version or hash, and its date. */
function describePriceData(d: PriceDataInfo): string {
  const what = d.kind === 'bundled'
    ? `bundled genai-prices data ${d.version} (${d.label})`
    : `genai-prices data file ${d.file} (sha256:${d.sha256!.slice(0, 12)}${d.fileDate ? `, file dated ${d.fileDate.slice(0, 10)}` : ''}, loaded ${d.loadedAt!.slice(0, 16).replace('T', ' ')} UTC; ${d.providers} providers, ${d.models} models${d.newestPriceDate ? `, newest price from ${d.newestPriceDate}` : ''})`;
  return `Token prices: ${what} + ${d.supplement}.${d.problem ? `\nWarning: ${d.problem}` : ''}`;
}

const prices = program.command('prices').description('List what is priced and from which source; set or remove your own prices; load newer token price data.')
  .option('--provider <p>', 'only this provider (openai, anthropic, gemini, fal, replicate, …)')
  .option('--search <text>', 'only models whose id or name contains this')
  .option('--json', 'machine-readable output: { priceData, models }')
  .action(async (o: { provider?: string; search?: string; json?: boolean }) => {
    const c = await connect(dataDir());
    try {
      const rows = await c.call('prices', { provider: o.provider, search: o.search });
      const data = await c.call('priceData', {});
      if (o.json) return asJson({ priceData: data, models: rows });
      if (!rows.length) {
        print('No priced model matches.');
        return print(describePriceData(data));
      }
      print(table(['provider', 'model', 'kind', 'prices (USD)', 'source'], rows.map((r) => [
        r.provider, r.model, r.kind,
        r.prices.slice(0, 4).map((p) => `${p.label}: ${p.unitPrice}${p.per > 1 ? ` / ${p.per === 1_000_000 ? '1M' : p.per === 1000 ? '1K' : p.per}` : ''}`).join('\n') + (r.prices.length > 4 ? `\n… +${r.prices.length - 4}` : ''),
        [r.source.kind === 'catalog' ? r.source.catalog : `${r.source.kind} ${r.source.detail ?? ''}`, r.source.asOf ? `as of ${r.source.asOf}` : ''].filter(Boolean).join('\n'),
      ])));
      print(`${rows.length} model(s).`);
      print(describePriceData(data));
    } finally {
      await c.close();
    }
  });

prices.command('update')
  .description('Load a newer genai-prices data file (the JSON @pydantic/genai-prices publishes: an array of providers) without network access; --reset goes back to the bundled data')
  .option('--from <file>', 'the data file (e.g. a downloaded copy of genai-prices\' data.json)')
  .option('--reset', 'use the bundled data again')
  .option('--json', 'machine-readable output')
  .action(async (o: { from?: string; reset?: boolean; json?: boolean }) => {
    if (!!o.from === !!o.reset) throw new CliError('prices update takes --from FILE or --reset');
    let text: string | null = null;
    let fileDate: number | null = null;
    if (o.from) {
      text = readFile(o.from);
      try {
        fileDate = o.from === '-' ? null : fs.statSync(o.from).mtimeMs;
      } catch { /* read above; a date is a nicety */ }
      try {
        validatePriceData(text, path.basename(o.from)); // refused before anything is opened or changed
      } catch (e) {
        if (e instanceof PriceDataError) throw new CliError(e.message);
        throw e;
      }
    }
    const c = await connect(dataDir());
    const { Ledger } = await import('./ledger.ts');
    // Written to the data dir and the ledger's settings directly (as `export` reads it): a running
    // engine notices the config version change on its next check and reloads its prices.
    const L = c.offline?.ledger ?? new Ledger(dataDir());
    try {
      if (o.reset) resetPriceData(dataDir(), L);
      else installPriceData(dataDir(), L, o.from!, text!, Date.now(), fileDate);
      if (!c.offline) await new Promise((r) => setTimeout(r, 300)); // past the engine's config poll
      const data = await c.call('priceData', {});
      if (o.json) return asJson(data);
      print(o.reset ? 'Back to the bundled token price data.' : `Loaded ${path.basename(o.from!)}.`);
      print(describePriceData(data));
    } finally {
      if (!c.offline) L.close();
      await c.close();
    }
  });

prices.command('set <model> <prices...>')
  .description('Set your own price for provider:model (wins over the catalog). Token prices per 1M tokens: input_mtok=0.15 output_mtok=0.6; media: image=0.04, second=0.1, megapixel=0.03, request=0.01')
  .option('--note <text>', 'why (e.g. your negotiated rate)')
  .action(async (model: string, kv: string[], o: { note?: string }) => {
    const i = model.indexOf(':');
    if (i <= 0) throw new CliError(`"${model}" is not provider:model`);
    const p: Record<string, string> = {};
    for (const x of kv) {
      const [k, v] = x.split('=');
      if (!k || !v) throw new CliError(`"${x}" is not KEY=PRICE`);
      p[k] = v;
    }
    const c = await connect(dataDir());
    try {
      const r = await c.call('setOverride', { provider: model.slice(0, i), model: model.slice(i + 1), prices: p, note: o.note ?? null });
      print(`Price override ${r.id} set for ${r.provider}:${r.model}. New calls use it.`);
      const past = (await c.call('unpriced', {})).find((u) => u.provider === r.provider && u.model === r.model);
      if (past?.calls) print(`${past.calls} earlier call(s) of ${r.provider}:${r.model} are unpriced. Price them with this price: npx tollgate prices reprice ${r.provider}:${r.model}`);
    } finally {
      await c.close();
    }
  });

prices.command('reprice <model>')
  .description('Price earlier unpriced calls of provider:model with the price now in force (after `prices set`), from the usage each call recorded. Calls already sent to a sync service or inside a closed client statement stay as they were.')
  .option('--json', 'machine-readable output')
  .action(async (model: string, o: { json?: boolean }) => {
    const i = model.indexOf(':');
    if (i <= 0) throw new CliError(`"${model}" is not provider:model`);
    const c = await connect(dataDir());
    try {
      const r = await c.call('reprice', { provider: model.slice(0, i), model: model.slice(i + 1) });
      if (o.json || prices.opts().json) return asJson(r); // `prices` has a --json of its own, which commander gives it
      print(r.repriced ? `Re-priced ${r.repriced} call(s) of ${r.provider}:${r.model}: ${money(r.cost)} booked.` : `No unpriced call of ${r.provider}:${r.model} could be priced.`);
      if (r.stillUnpriced) print(`${r.stillUnpriced} call(s) still unpriced: ${r.reasons.join('; ')}`);
      if (r.skippedSynced) print(`${r.skippedSynced} call(s) already sent to the sync service were left as they were.`);
      if (r.skippedClosed) print(`${r.skippedClosed} call(s) inside a closed client statement were left as they were.`);
      if (r.stillUnpriced) process.exitCode = EXIT.UNPRICED;
    } finally {
      await c.close();
    }
  });

prices.command('rm <id>').description('Remove a price override (by id or provider:model)').action(async (id: string) => {
  const c = await connect(dataDir());
  try {
    const r = await c.call('removeOverride', { id });
    if (!r.removed) throw new CliError(`no override ${id}`);
    print(`Removed ${id}.`);
  } finally {
    await c.close();
  }
});

function printQuote(q: QuoteResult): void {
  const rows = q.items.map((it) => [it.node ?? '-', `${it.provider}:${it.model}`, it.repeat, ...(it.unpriced ? ['unpriced', 'unpriced', 'unpriced'] : [money(it.min), money(it.expected), money(it.max)])]);
  print(table(['node', 'model', '×', 'min', 'expected', 'max'], rows));
  print(`Total: min ${money(q.min)} · expected ${money(q.expected)} · max ${money(q.max)}${q.unpriced ? `  — not counting ${q.unpriced} unpriced node(s)` : ''}`);
  for (const it of q.items) {
    if (it.unpriced) {
      print(`  unpriced${it.node ? ` (${it.node})` : ''}: ${it.unpriced}`);
      const near = suggestModels(it.provider, it.model);
      if (near.length) print(`    did you mean: ${near.map((m) => `${it.provider}:${m}`).join(', ')}?`);
    }
    for (const n of it.notes) print(`  note${it.node ? ` (${it.node})` : ''}: ${n}`);
  }
}

/** Catalog ids of the same provider that share the longest prefix with an unknown id. */
function suggestModels(provider: string, model: string): string[] {
  const ids = bundledCatalog().modelsOf(provider);
  let best = 0;
  const scored = ids.map((id) => {
    let n = 0;
    while (n < id.length && n < model.length && id[n] === model[n]) n++;
    best = Math.max(best, n);
    return { id, n };
  });
  if (best < 3) return [];
  return scored.filter((x) => x.n === best).map((x) => x.id).sort((a, b) => a.length - b.length).slice(0, 3);
}

program.command('quote')
  .description('Price a call or a whole workflow before running it: min / expected / max.')
  .option('--model <provider:model>', 'e.g. openai:gpt-4o-mini, anthropic:claude-sonnet-4-5, fal:fal-ai/flux-2-pro')
  .option('--input-tokens <n>', 'input tokens (including cached ones)', int('--input-tokens'))
  .option('--cached-tokens <n>', 'of the input, how many are cache reads', int('--cached-tokens'))
  .option('--output-tokens <n>', 'output tokens', int('--output-tokens'))
  .option('--reasoning-tokens <n>', 'reasoning/thinking tokens', int('--reasoning-tokens'))
  .option('--images <n>', 'images to generate', int('--images'))
  .option('--size <WxH>', 'image size, e.g. 1024x1024')
  .option('--quality <q>', 'image quality (low, medium, high, standard, hd)')
  .option('--seconds <n>', 'seconds of video', int('--seconds'))
  .option('--resolution <r>', 'video resolution (720p, 1080p, 4k)')
  .option('--audio <yes|no>', 'video with generated audio')
  .option('--megapixels <mp>', 'megapixels per image (upscalers)')
  .option('--request <file>', 'a request body (JSON) as you would send it; use - for stdin')
  .option('--provider <p>', 'provider of --request (openai, anthropic, gemini, fal, replicate, …)', 'openai')
  .option('--path <path>', 'API path of --request (e.g. /v1beta/models/gemini-2.5-flash:generateContent, fal-ai/flux-2-pro)')
  .option('--workflow <file>', 'a workflow file (JSON or YAML) of nodes')
  .option('--json', 'machine-readable output (money as decimal strings)')
  .action(async (o: Record<string, string | number | boolean | undefined>) => {
    let arg: ApiArg<'quote'>;
    if (o.workflow) arg = { kind: 'workflow', text: readFile(String(o.workflow)), filename: String(o.workflow) };
    else if (o.request) {
      let body: unknown;
      const text = readFile(String(o.request));
      try {
        body = JSON.parse(text);
      } catch (e) {
        throw new CliError(`${o.request}: not JSON: ${(e as Error).message}`);
      }
      arg = { kind: 'request', provider: String(o.provider), body, path: o.path ? String(o.path) : undefined };
    } else if (o.model) {
      const usage: Record<string, number | string> = {};
      const set = (k: string, v: unknown) => { if (v !== undefined) usage[k] = v as number; };
      set('inputTokens', o.inputTokens); set('cachedTokens', o.cachedTokens); set('outputTokens', o.outputTokens); set('reasoningTokens', o.reasoningTokens);
      set('images', o.images); set('videoSeconds', o.seconds);
      if (o.megapixels !== undefined) usage.megapixels = String(o.megapixels);
      const params: Record<string, string | boolean> = {};
      if (o.size) params.size = String(o.size);
      if (o.quality) params.quality = String(o.quality);
      if (o.resolution) params.resolution = String(o.resolution);
      if (o.audio !== undefined) params.audio = /^(y|yes|true|1|on)$/i.test(String(o.audio));
      if (Object.keys(usage).length === 0) throw new CliError('say what to price: --input-tokens/--output-tokens, --images, --seconds or --megapixels');
      arg = { kind: 'usage', model: String(o.model), usage, params };
    } else throw new CliError('give --model with usage flags, --request FILE or --workflow FILE');
    const c = await connect(dataDir());
    try {
      const q = await c.call('quote', arg);
      if (o.json) asJson(q);
      else printQuote(q);
      if (q.unpriced) process.exitCode = EXIT.UNPRICED;
    } finally {
      await c.close();
    }
  });

program.command('compare')
  .description('The cost of one workload on several models, cheapest first.')
  .requiredOption('--models <list>', 'comma-separated provider:model list')
  .option('--workload <file>', 'a workload file (JSON/YAML), e.g. {kind: chat, calls: 10000, inputTokens: 1200, outputTokens: 400}')
  .option('--calls <n>', 'chat workload: number of calls', int('--calls'))
  .option('--input-tokens <n>', 'chat workload: input tokens per call', int('--input-tokens'))
  .option('--output-tokens <n>', 'chat workload: output tokens per call', int('--output-tokens'))
  .option('--cached-tokens <n>', 'chat workload: cached input tokens per call', int('--cached-tokens'))
  .option('--images <n>', 'image workload: number of images', int('--images'))
  .option('--size <WxH>', 'image workload: size')
  .option('--quality <q>', 'image workload: quality')
  .option('--video-seconds <n>', 'video workload: seconds', int('--video-seconds'))
  .option('--resolution <r>', 'video workload: resolution')
  .option('--audio <yes|no>', 'video workload: with audio')
  .option('--upscales <n>', 'upscale workload: number of images', int('--upscales'))
  .option('--megapixels <mp>', 'upscale workload: input megapixels per image')
  .option('--factor <n>', 'upscale workload: upscale factor (default 2)', int('--factor'))
  .option('--replay', 'what your real traffic of --period would have cost on these models')
  .addOption(new Option('--period <p>', 'with --replay').choices(['day', 'week', 'month']).default('month'))
  .option('--json', 'machine-readable output')
  .action(async (o: Record<string, string | number | boolean | undefined>) => {
    let workload: Workload;
    if (o.workload) {
      const text = readFile(String(o.workload));
      try {
        workload = parseYaml(text) as Workload;
      } catch (e) {
        throw new CliError(`${o.workload}: ${(e as Error).message}`);
      }
    } else if (o.replay) workload = { kind: 'replay', period: o.period as 'month' };
    else if (o.calls !== undefined) workload = { kind: 'chat', calls: Number(o.calls), inputTokens: Number(o.inputTokens ?? 0), outputTokens: Number(o.outputTokens ?? 0), cachedInputTokens: o.cachedTokens === undefined ? undefined : Number(o.cachedTokens) };
    else if (o.images !== undefined) workload = { kind: 'image', count: Number(o.images), size: o.size as string | undefined, quality: o.quality as string | undefined };
    else if (o.videoSeconds !== undefined) workload = { kind: 'video', seconds: Number(o.videoSeconds), resolution: o.resolution as string | undefined, audio: o.audio === undefined ? undefined : /^(y|yes|true|1|on)$/i.test(String(o.audio)) };
    else if (o.upscales !== undefined) workload = { kind: 'upscale', count: Number(o.upscales), megapixels: String(o.megapixels ?? '1'), factor: o.factor === undefined ? undefined : Number(o.factor) };
    else throw new CliError('describe the workload: --workload FILE, --calls/--input-tokens/--output-tokens, --images, --video-seconds, --upscales or --replay');
    const models = String(o.models).split(',').map((s) => s.trim()).filter(Boolean);
    const c = await connect(dataDir());
    try {
      const r = await c.call('compare', { workload, models });
      if (o.json) asJson(r);
      else {
        print(r.description);
        print(table(['model', 'cost', 'per unit', ''], r.rows.map((x) => [x.model, x.cost === null ? '—' : money(x.cost), x.perUnit === null ? '' : money(x.perUnit), x.cheapest ? 'cheapest' : x.reason ?? ''])));
      }
      if (r.rows.some((x) => x.cost === null)) process.exitCode = EXIT.UNPRICED;
    } finally {
      await c.close();
    }
  });

program.command('report')
  .description('Spend grouped by model, provider, project, key, workflow or day.')
  .addOption(new Option('--by <dim>', 'grouping (device: per synced machine)').choices(['model', 'provider', 'project', 'key', 'workflow', 'day', 'device']).default('model'))
  .addOption(new Option('--period <p>', 'period: day (today), week, month or total (all time); the same words as caps').choices(['day', 'today', 'week', 'month', 'total', 'all']).default('month'))
  .option('--from <date>', 'start date (YYYY-MM-DD, your time zone)')
  .option('--to <date>', 'end date, inclusive')
  .option('--json', 'machine-readable output: { total, calls, unpriced_calls, groups: [{ key, calls, cost, unpriced }] }')
  .action(async (o: { by: ApiArg<'report'>['by']; period: 'day' | 'today' | 'week' | 'month' | 'total' | 'all'; from?: string; to?: string; json?: boolean }) => {
    const c = await connect(dataDir());
    try {
      const period = o.period === 'day' ? 'today' : o.period === 'total' ? 'all' : o.period;
      const r = await c.call('report', { by: o.by, period, from: o.from, to: o.to });
      if (o.json) return asJson({ total: r.total, calls: r.calls, unpriced_calls: r.unpriced_calls, from: new Date(r.from).toISOString(), to: new Date(r.to).toISOString(), groups: r.groups });
      if (!r.groups.length) return print(`No spend in this period yet (${localTime(r.from, false)} to ${localTime(r.to, false)}, ${ZONE}).`);
      print(table([o.by, 'calls', 'cost'], r.groups.map((g) => [g.key, g.calls, money(g.cost)])));
      print(`Total ${money(r.total)} over ${r.calls} call(s)${r.unpriced_calls ? ` — ${r.unpriced_calls} unpriced call(s): see \`npx tollgate calls\`` : ''}`);
    } finally {
      await c.close();
    }
  });

/** One time format for every CLI table: local time, with the zone named in the column header. */
const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
const localFmt = new Intl.DateTimeFormat('en-CA', { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
function localTime(ts: number, seconds = true): string {
  const p = Object.fromEntries(localFmt.formatToParts(ts).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}${seconds ? `:${p.second}` : ''}`;
}

function callLine(x: CallRecord): (string | number)[] {
  return [localTime(x.ts), x.device ?? 'this', `${x.provider}:${x.model ?? '?'}`, x.project ?? '', x.status + (x.estimated ? ' (est.)' : ''), x.unpriced ? 'unpriced' : money(x.cost), x.durationMs === null ? '' : `${x.durationMs} ms`];
}

program.command('calls')
  .description('Recent calls with their itemized lines.')
  .option('--limit <n>', 'how many', int('--limit'), 20)
  .option('--json', 'machine-readable output')
  .action(async (o: { limit: number; json?: boolean }) => {
    const c = await connect(dataDir());
    try {
      const rows = await c.call('calls', { limit: o.limit });
      if (o.json) return asJson(rows);
      if (!rows.length) return print(`No calls yet. Point an SDK at the proxy: e.g. the OpenAI SDK with baseURL "${proxyUrl()}/openai/v1".`);
      print(table([`time (${ZONE})`, 'device', 'model', 'project', 'status', 'cost', 'duration'], rows.map(callLine)));
      for (const x of rows.slice(0, 5)) {
        print(`${x.id}  ${x.provider}:${x.model ?? '?'}${x.unpricedReason ? `  — ${x.unpricedReason}` : ''}${x.error ? `  — ${x.error}` : ''}`);
        for (const it of x.items) print(`    ${it.label}: ${it.quantity} ${it.unit} × $${it.unitPrice}${it.per > 1 ? `/${it.per}` : ''} = ${money(it.cost)}`);
      }
    } finally {
      await c.close();
    }
  });

program.command('runs')
  .description('Workflow runs (x-tollgate-run) with per-node cost against their quote.')
  .option('--limit <n>', 'how many', int('--limit'), 20)
  .option('--json', 'machine-readable output')
  .action(async (o: { limit: number; json?: boolean }) => {
    const c = await connect(dataDir());
    try {
      const runs = await c.call('runs', { limit: o.limit });
      if (o.json) return asJson(runs);
      if (!runs.length) return print('No workflow runs yet: send x-tollgate-workflow, x-tollgate-run and x-tollgate-node headers with your calls.');
      for (const r of runs) {
        print(`${r.run}  ${r.workflow ?? ''}  ${r.calls} call(s)  ${money(r.cost)}${r.quoted ? ` (quoted ${money(r.quoted)})` : ''}`);
        print(table(['node', 'calls', 'cost', 'quoted'], r.nodes.map((n) => [n.node, n.calls, money(n.cost), n.quoted ? money(n.quoted) : ''])));
      }
    } finally {
      await c.close();
    }
  });

program.command('export')
  .description('Stream the ledger as CSV or JSON Lines (to stdout).')
  .addOption(new Option('--format <f>', 'format').choices(['csv', 'jsonl']).default('csv'))
  .option('--from <date>', 'start date (YYYY-MM-DD)')
  .option('--to <date>', 'end date, inclusive')
  .action(async (o: { format: 'csv' | 'jsonl'; from?: string; to?: string }) => {
    const c = await connect(dataDir());
    try {
      // Export reads the ledger file directly (read-only is safe next to a running engine: WAL).
      const { Ledger } = await import('./ledger.ts');
      const { parseDate } = await import('./api.ts');
      const L = c.offline?.ledger ?? new Ledger(dataDir());
      const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
      const from = o.from ? parseDate(o.from, tz) : 0;
      const to = o.to ? parseDate(o.to, tz, true) : Number.MAX_SAFE_INTEGER;
      const cols = ['id', 'time', 'provider', 'model', 'endpoint', 'project', 'workflow', 'run', 'node', 'key', 'status', 'http_status', 'cost_usd', 'estimated', 'unpriced', 'unpriced_reason', 'duration_ms', 'ttfb_ms', 'price_source', 'upstream_id', 'device'] as const;
      const out = process.stdout;
      if (o.format === 'csv') out.write(cols.join(',') + '\n');
      for (const row of L.iterateCalls(from, to)) {
        const r = toCallRecord(row);
        if (o.format === 'jsonl') {
          if (!out.write(JSON.stringify(r) + '\n')) await new Promise((res) => out.once('drain', res));
          continue;
        }
        const v = [r.id, new Date(r.ts).toISOString(), r.provider, r.model, r.endpoint, r.project, r.workflow, r.run, r.node, r.keyName ?? r.keyFingerprint, r.status, r.httpStatus, r.cost, r.estimated, r.unpriced, r.unpricedReason, r.durationMs, r.ttfbMs, r.priceSource, r.upstreamId ?? '', r.device ?? ''];
        if (!out.write(v.map(csv).join(',') + '\n')) await new Promise((res) => out.once('drain', res));
      }
      if (!c.offline) L.close();
    } finally {
      await c.close();
    }
  });

function csv(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const cap = program.command('cap').description('Budgets: caps per scope and period, with alerts and an optional hard block.');
cap.command('set')
  .description('Create or change a cap.')
  .requiredOption('--scope <scope>', 'global, or provider:NAME, project:NAME, key:NAME, model:PROVIDER:MODEL, workflow:NAME')
  .addOption(new Option('--period <p>', 'period (in your time zone; weeks are ISO weeks)').choices(['day', 'week', 'month', 'total']).default('month'))
  .requiredOption('--limit <usd>', 'limit in USD, e.g. 50 or 12.50')
  .option('--hard', 'block calls that would go over the limit (the default, as in the UI)')
  .option('--alert-only', 'only alert at the thresholds; never block')
  .option('--alerts <list>', 'alert thresholds in percent', '50,80,100')
  .option('--id <id>', 'change an existing cap')
  .option('--all-devices', 'keep the cap on the sync service: one hard limit across every device of the account, spent from leases')
  .option('--json', 'machine-readable output')
  .action(async (o: { scope: string; period: ApiArg<'setCap'>['period']; limit: string; hard?: boolean; alertOnly?: boolean; alerts: string; id?: string; allDevices?: boolean; json?: boolean }) => {
    if (o.hard && o.alertOnly) throw new CliError('--hard and --alert-only contradict each other: give one');
    const i = o.scope.indexOf(':');
    const scope = (i < 0 ? o.scope : o.scope.slice(0, i)) as ApiArg<'setCap'>['scope'];
    const scopeValue = i < 0 ? null : o.scope.slice(i + 1);
    const alerts = o.alerts.split(',').map((x) => x.trim()).filter(Boolean).map((x) => {
      if (!/^\d+$/.test(x)) throw new CliError(`--alerts takes percentages like 50,80,100; "${x}" is not one`);
      return Number(x);
    });
    const c = await connect(dataDir());
    try {
      const r = await c.call('setCap', { scope, scopeValue, period: o.period, limit: o.limit, alerts, hard: !o.alertOnly, id: o.id, ...(o.allDevices ? { allDevices: true } : {}) });
      if (o.json) return asJson(r);
      print(`Cap ${r.id}: ${r.scope}${r.scopeValue ? ':' + r.scopeValue : ''} ${money(r.limit)} per ${r.period}, ${r.hard ? 'hard block at the limit' : 'alerts only'}${r.allDevices ? ' across all devices (kept on the sync service)' : ''} (alerts at ${r.alerts.join('/')} %).`);
    } finally {
      await c.close();
    }
  });
cap.command('list').description('Caps with spend, reservations and reset time.').option('--json', 'machine-readable output').action(async (o: { json?: boolean }) => {
  const c = await connect(dataDir());
  try {
    const caps = await c.call('caps', {});
    if (o.json) return asJson(caps);
    if (!caps.length) return print('No caps. Add one: npx tollgate cap set --scope global --period month --limit 50 --hard');
    print(table(['id', 'scope', 'period', 'limit', 'spent', 'reserved', '%', 'mode', `resets (${ZONE})`], caps.map((s) => [
      s.cap.id, s.cap.scope + (s.cap.scopeValue ? ':' + s.cap.scopeValue : ''), s.cap.period, money(s.cap.limit), money(s.spent), money(s.reserved), `${s.percent}%`,
      (s.cap.hard ? (s.blocked ? 'BLOCKED' : 'hard') : 'alert') + (s.cap.allDevices ? ' (all devices)' : ''), s.resetsAt ? localTime(s.resetsAt, false) : 'never',
    ])));
  } finally {
    await c.close();
  }
});
cap.command('rm <id>').description('Remove a cap.').action(async (id: string) => {
  const c = await connect(dataDir());
  try {
    const r = await c.call('removeCap', { id });
    if (!r.removed) throw new CliError(`no cap ${id} (see \`npx tollgate cap list\`)`);
    print(`Removed cap ${id}.`);
  } finally {
    await c.close();
  }
});

for (const [name, desc] of [['pause', 'Block every call at once (the kill switch).'], ['resume', 'Allow calls again after `npx tollgate pause`.']] as const) {
  program.command(name).description(desc).option('--json', 'machine-readable output').action(async (o: { json?: boolean }) => {
    const c = await connect(dataDir());
    try {
      const r = await c.call(name, {});
      if (o.json) return asJson(r);
      print(r.paused ? 'Paused: every call through Tollgate is blocked until `npx tollgate resume`.' : 'Resumed: calls flow again.');
    } finally {
      await c.close();
    }
  });
}

const key = program.command('key').description('Local tgk_ keys: your real provider key stays encrypted here; clients get a key you can revoke.');
key.command('add')
  .description('Store a provider key (read from stdin) and print a tgk_ key to use instead.')
  .requiredOption('--name <name>', 'a name for this key')
  .requiredOption('--provider <p>', 'openai, anthropic, gemini, openrouter, fal, replicate, or a host you added')
  .option('--project <project>', 'attribute calls made with this key to a project')
  .option('--json', 'machine-readable output')
  .action(async (o: { name: string; provider: string; project?: string; json?: boolean }) => {
    if (process.stdin.isTTY) process.stderr.write(`Paste the ${o.provider} API key, then press Enter and Ctrl-D:\n`);
    const secret = fs.readFileSync(0, 'utf8').trim();
    if (!secret) throw new CliError('no key on stdin (e.g. `printf %s "$OPENAI_API_KEY" | npx tollgate key add --name laptop --provider openai`)');
    const c = await connect(dataDir());
    try {
      const r = await c.call('addKey', { name: o.name, provider: o.provider, project: o.project ?? null, secret });
      if (o.json) return asJson(r);
      print(r.token);
      process.stderr.write(`Key "${r.key.name}" stored encrypted (${r.key.fingerprint}). Use the tgk_ key above in place of your ${r.key.provider} key; it is shown only once.\n`);
    } finally {
      await c.close();
    }
  });
key.command('list').description('Local keys (never their secrets).').option('--json', 'machine-readable output').action(async (o: { json?: boolean }) => {
  const c = await connect(dataDir());
  try {
    const keys = await c.call('keys', {});
    if (o.json) return asJson(keys);
    if (!keys.length) return print('No local keys. Add one: printf %s "$OPENAI_API_KEY" | npx tollgate key add --name laptop --provider openai');
    print(table(['id', 'name', 'provider', 'project', 'prefix', 'fingerprint', 'status'], keys.map((k) => [k.id, k.name, k.provider, k.project ?? '', k.prefix + '…', k.fingerprint, k.revokedAt ? 'revoked' : 'active'])));
  } finally {
    await c.close();
  }
});
key.command('revoke <idOrName>').description('Revoke a local key: it stops working on the next call.').action(async (id: string) => {
  const c = await connect(dataDir());
  try {
    const r = await c.call('revokeKey', { id });
    if (!r.revoked) throw new CliError(`no active key ${id} (see \`npx tollgate key list\`)`);
    print(`Revoked ${id}.`);
  } finally {
    await c.close();
  }
});

// ---- credits, statements, reconciliation ----

/** Bad input the engine refused (validation, a closed statement): exit 2 with its message. */
async function inputErrors<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.code === 'E_VALIDATION' || err.code === 'E_CLOSED') throw new CliError(err.message, EXIT.INPUT);
    throw e;
  }
}

function decimalFlag(name: string, pattern: RegExp, example: string) {
  return (v: string) => {
    if (!pattern.test(v)) throw new CliError(`${name} must be ${example}, got "${v}"`);
    return v;
  };
}

const credits = program.command('credits').description('Prepaid credits per provider: balance, burn rate, runway, what expires unused.')
  .addHelpText('after', `
Burn order: priority (lower first), then soonest expiry, then promotional before paid, then oldest, then id.
Dates are UTC; a grant is usable through its expiry date.

Examples:
  npx tollgate credits add --provider openai --amount 50 --expires 2027-11-30
  npx tollgate credits add --provider openai --amount 5 --expires 2026-12-31 --promo --note "welcome credit"
  npx tollgate credits list --json`);
credits.command('add')
  .description('Record a grant (a purchase or a promotional credit).')
  .requiredOption('--provider <p>', 'openai, anthropic, openrouter, fal, …')
  .requiredOption('--amount <usd>', 'amount in USD, e.g. 50 or 12.50', decimalFlag('--amount', /^\d{1,15}(\.\d{1,9})?$/, 'an amount in USD like 50 or 12.50'))
  .requiredOption('--expires <date>', 'last usable day, YYYY-MM-DD (UTC)')
  .option('--effective <date>', 'first usable day, YYYY-MM-DD (default today; an earlier date re-derives later balances)')
  .option('--priority <n>', 'burn priority 0–100, lower burns first (default 50)', int('--priority'))
  .option('--promo', 'a promotional credit (burned before paid ones of the same priority and expiry)')
  .option('--note <text>', 'a note, e.g. the invoice number')
  .option('--json', 'machine-readable output')
  .action(async (o: { provider: string; amount: string; expires: string; effective?: string; priority?: number; promo?: boolean; note?: string; json?: boolean }) => {
    const c = await connect(dataDir());
    try {
      const g = await inputErrors(() => c.call('addCredit', { provider: o.provider, amount: o.amount, expires: o.expires, effective: o.effective ?? null, priority: o.priority, promo: o.promo ?? false, note: o.note ?? null }));
      if (o.json) return asJson(g);
      print(`Added ${g.id}: ${money(g.amount)} of ${g.provider} ${g.promo ? 'promotional ' : ''}credit, usable ${g.effective} through ${g.expires}, priority ${g.priority}.`);
    } finally {
      await c.close();
    }
  });
credits.command('list').description('Balances, burn rate (trailing 7 days), runway and credits expiring unused.').option('--json', 'machine-readable output').action(async (o: { json?: boolean }) => {
  const c = await connect(dataDir());
  try {
    const st = await c.call('credits', {});
    if (o.json) return asJson(st);
    if (!st.providers.length) return print('No credits recorded. Add one: npx tollgate credits add --provider openai --amount 50 --expires 2027-11-30');
    for (const p of st.providers) {
      print(`${p.provider}: balance ${money(p.balance)} · burn ${money(p.burnPerDay)}/day (7 days: ${money(p.burn7d)}) · runway ${p.runwayDays === null ? '—' : `${p.runwayDays} days`}${p.uncovered !== '0' ? ` · not covered by credits ${money(p.uncovered)}` : ''}`);
      print(`  ${p.summary}`);
      print(table(['id', 'amount', 'remaining', 'drawn', 'effective', 'expires', 'priority', 'kind', 'state', 'note'], p.grants.map((g) => [
        g.id, money(g.amount), g.state === 'expired' ? `expired unused ${money(g.expiredUnused)}` : money(g.remaining), money(g.drawn), g.effective, g.expires, g.priority, g.promo ? 'promo' : 'paid', g.state, g.note ?? '',
      ])));
    }
  } finally {
    await c.close();
  }
});
credits.command('movements')
  .description('Which grant each call drew from (derived from the calls in burn order; a call split across grants has one line per grant).')
  .option('--provider <p>', 'only this provider')
  .option('--days <n>', 'the last N UTC days, today included (default 1)', int('--days'))
  .option('--limit <n>', 'at most N movements, newest (default 100)', int('--limit'))
  .option('--json', 'machine-readable output')
  .action(async (o: { provider?: string; days?: number; limit?: number; json?: boolean }) => {
    const c = await connect(dataDir());
    try {
      const rows = await inputErrors(() => c.call('creditMovements', { provider: o.provider, days: o.days, limit: o.limit ?? 100 }));
      if (o.json) return asJson(rows);
      if (!rows.length) return print('No movements in this window.');
      print(table(['time (UTC)', 'call', 'provider', 'model', 'grant', 'amount'], rows.map((m) => [
        new Date(m.ts).toISOString().slice(0, 19).replace('T', ' '), m.callId, m.provider, m.model ?? '', m.grantId ?? 'not covered by credits', money(m.amount),
      ])));
    } finally {
      await c.close();
    }
  });
credits.command('rm <id>').description('Remove a grant (balances are derived again without it; closed statements do not change).').action(async (id: string) => {
  const c = await connect(dataDir());
  try {
    const r = await c.call('removeCredit', { id });
    if (!r.removed) throw new CliError(`no credit ${id} (see \`npx tollgate credits list\`)`);
    print(`Removed ${id}.`);
  } finally {
    await c.close();
  }
});

program.command('statement')
  .description('A settlement statement for a client (project) and period: line items by model, workflow and node, markup, fee, billed total.')
  .requiredOption('--project <name>', 'the project (client)')
  .requiredOption('--period <p>', 'a day (2026-11-30), an ISO week (2026-W48) or a month (2026-11), UTC')
  .option('--markup <pct>', 'markup in percent on every line, e.g. 15 (remembered for the project)', decimalFlag('--markup', /^\d{1,4}(\.\d{1,4})?$/, 'a percentage like 15 or 12.5'))
  .option('--fee <usd>', 'a fixed fee per statement in USD, e.g. 5 (remembered for the project)', decimalFlag('--fee', /^\d{1,10}(\.\d{1,2})?$/, 'an amount in USD with at most 2 decimals'))
  .option('--grace <hours>', 'how long the project\'s periods stay open after they end, in hours (default 48; remembered for the project)', (v: string) => Number(decimalFlag('--grace', /^\d{1,4}$/, 'a whole number of hours, 0 to 2160')(v)))
  .addOption(new Option('--format <f>', 'output format').choices(['csv', 'json', 'html']))
  .option('--out <file>', 'write to this file instead of stdout')
  .option('--json', 'the statement as JSON (same as --format json)')
  .addHelpText('after', `
A period stays open 48 h after it ends (late syncs land; --grace sets the time per project), then closes on first use: it never changes again
(same bytes, same SHA-256); a call that arrives later lands in the next open statement as a prior-period adjustment.
Each line's billed amount is cost + markup rounded half-even to the cent once; the total is the sum of the lines.

Examples:
  npx tollgate statement --project acme --period 2026-W48 --markup 15
  npx tollgate statement --project acme --period 2026-11 --fee 5 --format html --out acme-2026-11.html
  npx tollgate statement --project acme --period 2026-11 --grace 120     # acme's periods close 5 days after they end`)
  .action(async (o: { project: string; period: string; markup?: string; fee?: string; grace?: number; format?: 'csv' | 'json' | 'html'; out?: string; json?: boolean }) => {
    const format = o.json ? 'json' : o.format;
    const c = await connect(dataDir());
    try {
      const r = await inputErrors(() => c.call('statement', { project: o.project, period: o.period, markup: o.markup, fee: o.fee, graceHours: o.grace, format: format ?? 'json' }));
      if (o.out) {
        try {
          fs.writeFileSync(o.out, r.content);
        } catch (e) {
          throw new CliError(`cannot write ${o.out}: ${(e as Error).message}`);
        }
        process.stderr.write(`Wrote the ${r.statement.status} statement of ${r.statement.project} for ${r.statement.period} (${format ?? 'json'}) to ${o.out}${r.statement.hash ? `, sha256 ${r.statement.hash}` : ''}.\n`);
        return;
      }
      if (format) return void process.stdout.write(r.content);
      const s = r.statement;
      print(`Statement ${s.project} ${s.period} (${s.from.slice(0, 10)} to ${s.to.slice(0, 10)} UTC) — ${s.status}${s.closedAt ? ` at ${s.closedAt.slice(0, 16).replace('T', ' ')} UTC` : ''}`);
      print(table(['item', 'quantity', 'unit rate', 'cost', 'markup', 'billed'], s.lines.map((l) => [
        l.kind === 'fee' ? 'Service fee' : `${l.model}${l.workflow ? ' · ' + l.workflow : ''}${l.node ? ' · ' + l.node : ''}\n${l.label}${l.kind === 'adjustment' ? `\n(adjustment for ${l.originalPeriod})` : ''}`,
        `${l.quantity} ${l.unit}`, l.unitPrice ? `$${l.unitPrice}${l.per > 1 ? ` / ${l.per}` : ''}` : '—', l.cost, l.markupPct === '0' ? '' : `${l.markupPct} %`, `$${l.billed}`,
      ])));
      print(`Total $${s.total} (cost ${money(s.cost)}, ${s.calls} call(s)${s.unpricedCalls ? `, ${s.unpricedCalls} unpriced not billed` : ''})${s.hash ? `\nsha256 ${s.hash}` : ''}`);
    } finally {
      await c.close();
    }
  });

program.command('statements')
  .description('Statements: periods still open (running totals) and closed ones (with their hash).')
  .command('list', { isDefault: true })
  .description('List open and closed statements.')
  .option('--project <name>', 'only this project')
  .option('--json', 'machine-readable output')
  .action(async (o: { project?: string; json?: boolean }) => {
    const c = await connect(dataDir());
    try {
      const rows = await inputErrors(() => c.call('statements', { project: o.project }));
      if (o.json) return asJson(rows);
      if (!rows.length) return print('No statements yet: calls with a project (header x-tollgate-project, or a key bound to a project) make them.');
      print(table(['project', 'period', 'status', 'calls', 'cost', 'billed', 'closes / hash'], rows.map((r) => [
        r.project, r.period, r.status, r.calls, money(r.cost), `$${r.total}`, r.status === 'open' ? `closes ${r.closesAt.slice(0, 16).replace('T', ' ')} UTC` : (r.hash ?? '').slice(0, 16) + '…',
      ])));
    } finally {
      await c.close();
    }
  });

program.command('reconcile <file>')
  .description('Compare a provider\'s usage or cost export (CSV) with the ledger per day × model.')
  .addOption(new Option('--provider <p>', 'whose export it is').choices(['openai', 'anthropic', 'openrouter']).makeOptionMandatory())
  .option('--json', 'machine-readable output')
  .addHelpText('after', `
Exports read: OpenAI cost and usage exports, Anthropic usage and cost exports, OpenRouter activity export.
A day × model matches within max(1 %, $0.01). Exit 0 when everything matches, 1 when something does not.

Example:
  npx tollgate reconcile --provider openai ~/Downloads/costs.csv`)
  .action(async (file: string, o: { provider: 'openai' | 'anthropic' | 'openrouter'; json?: boolean }) => {
    const text = readFile(file);
    const c = await connect(dataDir());
    try {
      const r = await inputErrors(() => c.call('reconcile', { provider: o.provider, csv: text }));
      if (r.mismatches) process.exitCode = EXIT.ERROR;
      if (o.json) return asJson(r);
      print(`${r.label}${r.pricedByTollgate ? ' (token counts priced with Tollgate\'s catalog)' : ''}, ${r.from} to ${r.to} (UTC days)`);
      print(table(['day', 'model', 'Tollgate', 'provider', 'difference', 'calls', 'status'], r.rows.map((x) => [
        x.day, x.model, money(x.tollgate), x.provider === null ? 'no price' : money(x.provider), money(x.difference), x.calls,
        x.status === 'unmetered' ? 'billed by the provider but not metered' : x.status,
      ])));
      if (r.generations) {
        const g = r.generations.counts;
        print(`Joined per generation id: ${g.matched} matched · ${g.costDiffers} cost differs · ${g.billedNotMetered} billed but not metered · ${g.meteredNotBilled} metered but not billed`);
        if (r.generations.unmatched.length) {
          print(table(['generation', 'call', 'day', 'model', 'Tollgate', 'provider', 'difference', 'status'], r.generations.unmatched.map((x) => [
            x.generationId ?? '(no id)', x.callId ?? '', x.day, x.model, x.tollgate === null ? '' : money(x.tollgate), x.provider === null ? '' : money(x.provider), money(x.difference), x.status,
          ])));
        }
      }
      print(`Tollgate ${money(r.tollgateTotal)} · provider ${money(r.providerTotal)} · difference ${money(r.difference)}`);
      print(`Billed by the provider but not metered: ${money(r.unmetered)}`);
      print(r.mismatches ? `${r.mismatches} day × model row(s) outside max(1 %, $0.01).` : 'Everything matches within max(1 %, $0.01).');
    } finally {
      await c.close();
    }
  });

const sync = program.command('sync').description('Sync this device with a tollgate-ledger service: every machine\'s calls in one spend picture.');

function ago(ts: number | null): string {
  if (ts === null) return 'never';
  const s = Math.max(0, Math.round((Date.now() - ts) / 1000));
  const rel = s < 90 ? `${s} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : s < 172_800 ? `${Math.round(s / 3600)} h ago` : `${Math.round(s / 86_400)} days ago`;
  return `${localTime(ts)} (${rel})`;
}

sync.command('join <url> <code>')
  .description('Join the account of a ledger service with a one-time code (`npx tollgate-ledger enroll` prints one). This device\'s calls, past and future, are pushed; the other devices\' are pulled.')
  .option('--name <name>', 'this device\'s name on the account (default: the host name)')
  .option('--insecure', 'allow a plain http:// service on another machine (the token and calls cross the network in clear)')
  .option('--json', 'machine-readable output')
  .action(async (url: string, code: string, o: { name?: string; insecure?: boolean; json?: boolean }) => {
    const os = await import('node:os');
    const c = await connect(dataDir());
    try {
      const st = await c.call('syncJoin', { url, code, name: o.name ?? os.hostname().slice(0, 100), insecure: o.insecure ?? false });
      if (o.json) return asJson(st);
      print(`Joined account "${st.account}" at ${st.url} as "${st.device?.name}". ${st.pending} call(s) of this device to push.`);
      print(c.offline ? 'Tollgate is not running: `npx tollgate sync now` pushes and pulls once; a running engine syncs in the background.' : 'The running engine syncs in the background.');
    } finally {
      await c.close();
    }
  });

sync.command('status')
  .description('This device: calls not yet pushed, last push and pull; every device of the account with its last contact.')
  .option('--json', 'machine-readable output')
  .action(async (o: { json?: boolean }) => {
    const c = await connect(dataDir());
    try {
      const st = await c.call('syncStatus', { refresh: true });
      if (o.json) return asJson(st);
      if (!st.joined) return print('Not syncing. Join a ledger service: npx tollgate sync join URL CODE [--name laptop]');
      print(`Account "${st.account}" at ${st.url}, this device "${st.device?.name}" (${st.device?.id})`);
      print(`  not yet pushed: ${st.pending} call(s)${st.pendingGrants ? `, ${st.pendingGrants} credit grant change(s)` : ''}`);
      print(`  last push: ${ago(st.lastPushAt)}`);
      print(`  last pull: ${ago(st.lastPullAt)}`);
      if (st.conflicts) print(`  conflicts: ${st.conflicts} call(s) the service holds in another version (kept apart, never merged)`);
      if (st.refused) print(`  refused: ${st.refused} call(s) the service would not take (kept here only)`);
      if (st.lastError) print(`  last error: ${st.lastError}`);
      for (const l of st.leases) print(`  lease on cap ${l.cap}: ${money(l.amount)} granted, ${money(l.used)} spent, ${money(l.reserved)} reserved, ${l.expiresInMs > 0 ? `expires in ${Math.ceil(l.expiresInMs / 60_000)} min` : 'expired (returned when the service answers)'}`);
      if (st.devices.length) {
        print(table(['device', 'id', `last contact (${ZONE})`, ''], st.devices.map((d) => [d.name + (d.self ? ' (this)' : ''), d.id, ago(d.lastSeenAt), d.revoked ? 'revoked' : d.silent ? 'SILENT > 24 h' : ''])));
        if (st.devicesAt && Date.now() - st.devicesAt > 120_000) print(`(devices as of ${ago(st.devicesAt)}: the service cannot be reached now)`);
      }
      if (st.silentDevices.length) print(`Spend may be incomplete: ${st.silentDevices.join(', ')} ha${st.silentDevices.length > 1 ? 've' : 's'} not synced for over 24 h.`);
    } finally {
      await c.close();
    }
  });

sync.command('now')
  .description('Push this device\'s calls and pull the others\' now (with progress for a large backlog).')
  .option('--json', 'machine-readable output')
  .action(async (o: { json?: boolean }) => {
    const c = await connect(dataDir());
    const tty = process.stderr.isTTY;
    const show = (p: { pushed: number; total: number; pulled: number }) => {
      if (o.json || p.total + p.pulled < 1000) return;
      const width = 30, done = p.total ? Math.min(width, Math.round((p.pushed / p.total) * width)) : width;
      const line = `pushed [${'#'.repeat(done)}${'.'.repeat(width - done)}] ${p.pushed}/${p.total}, pulled ${p.pulled}`;
      process.stderr.write(tty ? `\r${line}` : line + '\n');
    };
    try {
      let r: { pushed: number; pulled: number; pending: number };
      if (c.offline) {
        const e = c.offline;
        e.flushQuietly();
        const p = await e.sync.syncNow(show).catch((err: Error & { code?: string }) => {
          throw new CliError(err.message, EXIT.ERROR);
        });
        r = { pushed: p.pushed, pulled: p.pulled, pending: e.ledger.outboxCount() };
      } else {
        const poll = setInterval(() => {
          void c.call('syncStatus', {}).then((st) => { if (st.syncing) show(st.syncing); }, () => {});
        }, 500);
        try {
          r = await c.call('syncNow', {});
        } finally {
          clearInterval(poll);
        }
      }
      if (tty && !o.json) process.stderr.write('\n');
      if (o.json) return asJson(r);
      print(`Pushed ${r.pushed} call(s), pulled ${r.pulled} new call(s) from other devices; ${r.pending} not yet pushed.`);
    } finally {
      await c.close();
    }
  });

sync.command('leave')
  .description('Stop syncing and forget this device\'s token. Calls already synced stay in this ledger.')
  .action(async () => {
    const c = await connect(dataDir());
    try {
      const before = await c.call('syncStatus', {});
      if (!before.joined) return print('Not syncing.');
      await c.call('syncLeave', {});
      print(`Left account "${before.account}" (${before.url}). To remove this device on the service too: npx tollgate-ledger revoke ${before.device?.id}`);
    } finally {
      await c.close();
    }
  });

// `npx tollgate … | head` closes stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    process.exitCode = e.exitCode === 0 ? 0 : EXIT.INPUT;
  } else {
    const err = e as Error & { code?: string; exitCode?: number };
    process.stderr.write(`tollgate: ${err.message}\n`);
    process.exitCode = e instanceof CliError ? e.exitCode : err.code === 'E_VALIDATION' || err.code === 'E_WORKFLOW' || err.code === 'E_QUOTE' ? EXIT.INPUT : err.code?.startsWith('E_LEDGER') ? EXIT.LEDGER : EXIT.ERROR;
  }
}
