/**
 * A batch's correction syncs: the estimate at submit, the actual from the results and the correction
 * that takes the estimate back are pushed to the ledger service (which takes a negative cost only from
 * a record naming what it corrects) and pulled by another device, whose total is the actual exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startRig, eventually, tempDir } from '../fixtures/engine.ts';
import { joinDevice, ledgerCli, request, startLedger, type LedgerBackend } from '../fixtures/ledger-service.ts';

async function enrolCode(b: LedgerBackend): Promise<string> {
  const r = await ledgerCli(b, ['enroll', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { code: string }).code;
}

test('estimate, actual and correction reach the service and another device; every total is the actual', async () => {
  const b: LedgerBackend = { dataDir: tempDir('tollgate-ledger-') };
  const svc = await startLedger(b);
  const a = await startRig(['anthropic'], { syncIntervalMs: 100 });
  const other = await startRig(['anthropic'], { syncIntervalMs: 100 });
  try {
    const observer = await joinDevice(b, svc.url, 'default', 'observer');
    assert.equal((await a.engine.api.syncJoin({ url: svc.url, code: await enrolCode(b), name: 'laptop' })).joined, true);
    assert.equal((await other.engine.api.syncJoin({ url: svc.url, code: await enrolCode(b), name: 'desktop' })).joined, true);

    const client = new Anthropic({ apiKey: 'sk-ant-x', baseURL: `${a.url}/anthropic`, maxRetries: 0, defaultHeaders: { 'x-tollgate-project': 'nightly' } });
    const params = { model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user' as const, content: 'Summarise the attached policy in one line.' }] };
    const batch = await client.messages.batches.create({ requests: [{ custom_id: 'a', params }, { custom_id: 'b', params }] });
    for await (const _ of await client.messages.batches.results(batch.id)) { /* drain */ }
    // submit (estimate 0.001548), the poll, the results (0.000273) and the correction (-0.001548)
    await eventually(async () => {
      a.engine.flushQuietly();
      const t = await request(svc.url, 'GET', '/v1/totals', { token: observer.token });
      return t.status === 200 && t.body.calls === 4 ? t : null;
    }, 'the four records on the service', 20_000);
    const t = await request(svc.url, 'GET', '/v1/totals', { token: observer.token });
    assert.equal(String(t.body.cost_nano), '273000');
    const pulled = await eventually(async () => {
      other.engine.flushQuietly();
      const r = await other.engine.api.report({ by: 'project', period: 'all' });
      return r.total === '0.000273' ? r : null;
    }, 'the other device pulls them', 20_000);
    assert.equal(pulled.groups.find((g) => g.key === 'nightly')?.cost, '0.000273');
    other.engine.flushQuietly();
    const corr = (await other.engine.api.calls({ limit: 50 })).find((c) => c.endpoint === 'batch.correction');
    assert.equal(corr?.cost, '-0.001548');
    assert.ok(corr?.corrects);
    assert.equal((await a.engine.api.syncStatus({})).pending, 0, 'nothing refused, nothing left to push');
  } finally {
    await a.close();
    await other.close();
    await svc.stop();
  }
});
