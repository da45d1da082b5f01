import { benchEngine } from './test/bench/proxy.ts';
const r = await benchEngine({ seconds: 6, ledgerCalls: 10000 });
for (const x of r.slice(0, 3)) console.log(x.name, x.value.toFixed(3), x.note ?? '');
process.exit(0);
