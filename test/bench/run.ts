/** `npm run bench`: every benchmark, printed as a table of values, baselines and targets. */
import { benchPricing, type BenchResult } from './pricing.ts';
import { benchEngine } from './proxy.ts';
import { benchUi } from './ui.ts';
import { benchCredits } from './credits.ts';
import { benchProxyWithSync, benchSync } from './sync.ts';
import { benchRegression } from './regression.ts';

const quick = process.argv.includes('--quick');
// --only pricing|engine|regression|credits|ui|sync|proxy-sync runs one group (e.g. `npm run bench -- --only engine`)
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : null;
const results: BenchResult[] = [];
if (!only || only === 'pricing') results.push(...(await benchPricing()));
if (!only || only === 'engine') results.push(...(await benchEngine({ seconds: quick ? 2 : 6, ledgerCalls: quick ? 1_000_000 : 10_000_000 })));
if (!only || only === 'regression') results.push(...(await benchRegression({ seconds: quick ? 3 : 8 })));
if (!only || only === 'credits') results.push(...(await benchCredits({ statementCalls: quick ? 200_000 : 1_000_000, ledgerCalls: quick ? 1_000_000 : 10_000_000 })));
if (!only || only === 'ui') results.push(...(await benchUi(quick ? 1_000_000 : 10_000_000)));
if (!only || only === 'sync') results.push(...(await benchSync(quick ? 100_000 : 1_000_000)));
if (!only || only === 'sync' || only === 'proxy-sync') results.push(...(await benchProxyWithSync({ seconds: quick ? 3 : 6 })));
const fmt = (v: number) => Number.isNaN(v) ? '—' : (Math.abs(v) >= 1000 ? Math.round(v).toLocaleString('en-US') : v.toFixed(v < 10 ? 3 : 1));
console.log('\nTollgate benchmarks (this machine; each against its in-process baseline where one applies)\n');
for (const r of results) {
  console.log(`${r.ok === undefined ? ' ' : r.ok ? '✓' : '✗'} ${r.name.padEnd(62)} ${fmt(r.value).padStart(12)} ${r.unit.padEnd(8)} ${r.target ? `target ${r.target}` : ''}${r.note ? `  (${r.note})` : ''}`);
}
process.exit(0);
