/**
 * The ledger's fast paths (issue 12, sync speed) give exactly what the slow, obvious paths give:
 * the hand check of a pushed call accepts only what the schema accepts, with the same content; the
 * cheap canonical JSON is the canonical JSON; the engine's directly written push body is the
 * record's JSON; group-committed transactions stay all in or all out each; `others=1` pulls leave
 * the asking device's calls out but still move the cursor.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { uuidv7 } from 'uuidv7';
import { LedgerError, canonicalJson, canonicalJsonFast, pushedCallSchema, sha256, validateCall, validatePush } from '../../../ledger/protocol.ts';
import { num, openDb } from '../../../ledger/db.ts';
import { createEnrolCode, enrol, authenticate, push, pull } from '../../../ledger/store.ts';
import { Ledger, type CallRow } from '../../../electron/engine/ledger.ts';
import { bundledCatalog } from '../../../shared/catalog.ts';
import { priceCall, toLineItems } from '../../../shared/pricing.ts';
import { newCallId } from '../../../electron/engine/ids.ts';
import { pushJson, pushRecord } from '../../../electron/engine/sync.ts';

const dir = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), p));

/** What validateCall did before the fast path: the schema, then canonicalJson of its output. */
function reference(raw: unknown, index: number): string {
  const r = pushedCallSchema.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || '(call)'}: ${i.message}`);
    return `error: calls[${index}] is not a valid finished call: ${issues.join('; ')}`;
  }
  return canonicalJson(r.data);
}
function actual(raw: unknown, index: number): string {
  try {
    return validateCall(raw, index).body;
  } catch (e) {
    if (!(e instanceof LedgerError)) throw e;
    return e.message.startsWith(`calls[${index}] is not`) ? `error: ${e.message}` : `other: ${e.message}`;
  }
}

test('the hand check of a pushed call agrees with the schema on every variant, content and message alike', () => {
  const base = { id: uuidv7(), ts: 1_700_000_000_000, provider: 'openai', status: 'ok', cost: '0.00018', model: 'gpt-4o-mini', project: null, extra: { b: 1, a: [1, { d: 2, c: 3 }] } };
  const values: unknown[] = [undefined, null, '', 'x', 'pending', 'ok', 0, -1, 1.5, 2 ** 53, 2 ** 53 - 1, -0, true, [], {}, ['0190a0c2-0000-4000-8000-000000000001'],
    Array.from({ length: 33 }, () => '0190a0c2-0000-4000-8000-000000000001'), ['nope'], 'x'.repeat(201), 'x'.repeat(1001), 'x'.repeat(1000),
    uuidv7(), '0190b6a4-0000-4000-8000-000000000000', '1.5', '-0.1', '1e3', '01.5', '0.0000000001'];
  const fields = ['id', 'ts', 'status', 'cost', 'provider', 'model', 'project', 'workflow', 'keyFingerprint', 'corrects', 'leases', 'other'];
  let cases = 0;
  for (const f of fields) {
    for (const v of values) {
      const c: Record<string, unknown> = { ...base };
      if (v === undefined) delete c[f];
      else c[f] = v;
      for (const raw of [c, Object.fromEntries(Object.entries(c).reverse())]) {
        const want = reference(raw, 4);
        const got = actual(raw, 4);
        // a call the schema accepts may still be refused for its money (range, sign): never the other way round
        if (got.startsWith('other: ')) assert.ok(!want.startsWith('error: '), `${f}=${JSON.stringify(v)}`);
        else assert.equal(got, want, `${f}=${JSON.stringify(v)}`);
        cases++;
      }
    }
  }
  for (const raw of [null, 1, 'x', [], [base], JSON.parse(`{"__proto__": {"x": 1}, "id": "${uuidv7()}", "ts": 1, "provider": "p", "status": "ok", "cost": "1"}`)]) {
    assert.equal(actual(raw, 0), reference(raw, 0));
    cases++;
  }
  assert.ok(cases > 600);
});

test('the cheap canonical JSON is the canonical JSON, whatever the key order', () => {
  const samples: unknown[] = [
    { a: 1, b: { c: [1, 2, { e: null, d: 'x' }] } }, { b: 1, a: 2 }, { 10: 'a', 9: 'b' }, { a: 'é\u2028"\\' }, [{ z: 1, y: 2 }], 'x', 1, null, [],
    { a: undefined, b: 1 }, { nested: { deep: { z: 1, a: 2 } } }, JSON.parse('{"b":{"y":1,"x":2},"a":[{"q":1,"p":2}]}'),
    { a: 1, b: { y: 1, x: 2 } }, { a: [{ q: 1, p: 2 }], b: 1 }, { b: { 10: 'a', 9: 'b', x: 1 }, a: 1 }, { a: { b: undefined, a: 1 } }, { a: { y: NaN, x: 1 } },
    { a: { z: new Date(0), y: 1 } }, { a: { usage: { outputTokens: 3, inputTokens: 2 } }, b: [{ unitPrice: '1', cost: '2' }] },
  ];
  for (const s of samples) assert.equal(canonicalJsonFast(s), canonicalJson(s), JSON.stringify(s));
  const c = { id: uuidv7(), ts: 1, provider: 'openai', status: 'ok', cost: '1', items: [{ unit: 'token', cost: '1', label: 'x' }] };
  assert.equal(validateCall(c, 0).hash, sha256(canonicalJson(c)));
  assert.equal(validatePush({ protocol: 1, calls: [c] }).calls[0]!.body, canonicalJson(c));
});

const row = (over: Partial<CallRow> = {}): CallRow => ({
  id: newCallId(), ts: 1_700_000_000_123, provider: 'openai', model: 'gpt-4o-mini', endpoint: 'chat.completions', project: 'acme', workflow: null, run: 'r1', node: null,
  keyId: 'k1', keyFingerprint: 'fp_x', keyName: 'laptop', status: 'ok', httpStatus: 200, stream: true, durationMs: 10, ttfbMs: null,
  usage: { outputTokens: 5, inputTokens: 10, cachedInputTokens: 2 },
  items: [{ label: 'Input tokens', quantity: '10', unit: 'token', per: 1_000_000, unitPrice: '0.15', cost: '0.0000015', source: 'test' }],
  costNano: 1_234n, reservedNano: 99_000_000_001n, quoteMaxNano: null, quoteExpectedNano: null, estimated: true, unpriced: false, unpricedReason: null,
  priceSource: 'test', error: null, blockedBy: null, prompt: 'secret prompt', ...over,
});

test('line items are made with their keys in canonical order: stored by JSON.stringify, they are the canonical JSON the service hashes', () => {
  const catalog = bundledCatalog();
  const priced = [
    priceCall({ inputTokens: 1200, cacheReadTokens: 300, outputTokens: 80 }, catalog.resolve('openai', 'gpt-4o-mini')),
    priceCall({ images: 1 }, catalog.resolve('fal', 'fal-ai/flux-2-pro'), { params: { size: '1920x1080' } }),
  ];
  for (const p of priced) {
    const items = toLineItems(p.items);
    assert.ok(items.length > 0 && p.unpriced === null);
    assert.equal(JSON.stringify(items), canonicalJson(items));
  }
});

test('the push body written straight from the outbox is the record, and the service\'s canonical form of it is the record\'s', () => {
  const d = dir('tollgate-pushjson-');
  const L = new Ledger(d, { writerThread: false });
  try {
    const rows = [
      row(), row({ leases: ['0190a0c2-0000-4000-8000-000000000001', '0190a0c2-0000-4000-8000-000000000002'] }), row({ leases: [] }),
      row({ usage: {}, items: [], costNano: 0n, reservedNano: 0n, stream: false, estimated: false, unpriced: true, unpricedReason: 'no price', httpStatus: null, model: null }),
      row({ status: 'error', error: 'upstream said "no"\n', costNano: -5n, usage: { z: 'x', a: 1 }, blockedBy: 'cap:1', corrects: '0190a0c2-0000-7000-8000-00000000000c' }),
      row({ upstreamId: 'gen-1750000002-6b9e8353640ebc5f604f' }),
      row({ costNano: 2n ** 62n, keyName: 'ünï', workflow: 'w', node: 'n', project: null }),
    ];
    L.resetOutbox();
    for (const r of rows) L.recordEnd(r);
    L.flush(true);
    const raw = L.outboxRaw(0, 100);
    const full = L.outbox(0, 100);
    assert.equal(raw.length, rows.length);
    for (let i = 0; i < raw.length; i++) {
      const text = pushJson(raw[i]!);
      // the same content as the record; the service's canonical form of it is the record's
      assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(pushRecord(full[i]!))), `row ${i}`);
      assert.equal(validateCall(JSON.parse(text), i).body, canonicalJson(pushRecord(full[i]!)), `row ${i}`);
      assert.deepEqual(Object.keys(JSON.parse(text)), Object.keys(JSON.parse(text)).sort(), `row ${i}: top-level keys in canonical order`);
      assert.doesNotMatch(text, /secret prompt|"keyId"|"device"/);
    }
  } finally {
    L.close();
  }
});

test('group-committed transactions: each is all in or all out on its own', async () => {
  const db = await openDb({ dataDir: dir('tollgate-group-') });
  try {
    const results = await Promise.allSettled(['a', 'b', 'c', 'd'].map((id) => db.tx(async (q) => {
      await q.run('INSERT INTO accounts (id, name, last_seq, created_at) VALUES (?, ?, 0, 0)', [id, id]);
      if (id === 'b') throw new Error('b fails after writing');
      await q.run('UPDATE accounts SET last_seq = 1 WHERE id = ?', [id]);
      return id;
    })));
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    const rows = await db.all('SELECT id, last_seq FROM accounts ORDER BY id');
    assert.deepEqual(rows.map((r) => [String(r.id), num(r.last_seq)]), [['a', 1], ['c', 1], ['d', 1]]);
    // a constraint failure inside one keeps the others
    const again = await Promise.allSettled(['e', 'a'].map((id) => db.tx(async (q) => q.run('INSERT INTO accounts (id, name, last_seq, created_at) VALUES (?, ?, 0, 0)', [id, id]))));
    assert.deepEqual(again.map((r) => r.status), ['fulfilled', 'rejected']);
    assert.equal(num((await db.get('SELECT COUNT(*) AS n FROM accounts'))?.n), 4);
  } finally {
    await db.close();
  }
});

test('pull with others=1 leaves the asking device\'s calls out and still moves the cursor', async () => {
  const db = await openDb({ dataDir: dir('tollgate-others-') });
  try {
    const tokenA = (await enrol(db, (await createEnrolCode(db, 'acc')).code, 'a')).token;
    const tokenB = (await enrol(db, (await createEnrolCode(db, 'acc')).code, 'b')).token;
    const a = await authenticate(db, tokenA), b = await authenticate(db, tokenB);
    const mk = () => ({ id: uuidv7(), ts: 1, provider: 'openai', status: 'ok', cost: '0.5' });
    await push(db, a, validatePush({ protocol: 1, calls: [mk(), mk(), mk()] }).calls);
    const fromB = mk();
    await push(db, b, validatePush({ protocol: 1, calls: [fromB] }).calls);
    const all = JSON.parse(await pull(db, a, 0, 2));
    assert.equal(all.calls.length, 2);
    assert.deepEqual([all.next, all.has_more], [2, true]);
    const page1 = JSON.parse(await pull(db, a, 0, 2, true));
    assert.deepEqual([page1.calls.length, page1.next, page1.has_more], [0, 2, true], 'own calls scanned, not sent');
    const page2 = JSON.parse(await pull(db, a, page1.next, 2, true));
    assert.deepEqual([page2.calls.map((c: { call: { id: string } }) => c.call.id), page2.next, page2.has_more], [[fromB.id], 4, false]);
    assert.deepEqual(page2.calls[0].call, fromB);
    const forB = JSON.parse(await pull(db, b, 0, 10, true));
    assert.equal(forB.calls.length, 3);
    assert.equal(forB.calls[0].device_name, 'a');
  } finally {
    await db.close();
  }
});

test('a push of calls the service has never seen takes the fast path; a batch with a known id, in any place, is judged call by call with nothing half-written', async () => {
  const db = await openDb({ dataDir: dir('tollgate-fresh-') });
  try {
    const a = await authenticate(db, (await enrol(db, (await createEnrolCode(db, 'acc')).code, 'a')).token);
    const mk = (over: Record<string, unknown> = {}) => ({ id: uuidv7(), ts: 1, provider: 'openai', status: 'ok', cost: '0.5', ...over });
    const first = [mk(), mk(), mk()];
    const r1 = await push(db, a, validatePush({ protocol: 1, calls: first }).calls);
    assert.deepEqual(r1.results.map((r) => [r.status, r.seq]), [['stored', 1], ['stored', 2], ['stored', 3]]);
    // a correction of a stored call, and one of a call earlier in the same batch: both stored
    const orig = mk();
    const r2 = await push(db, a, validatePush({ protocol: 1, calls: [mk({ corrects: first[0]!.id, cost: '-0.5' }), orig, mk({ corrects: orig.id, cost: '-0.1' })] }).calls);
    assert.deepEqual(r2.results.map((r) => [r.status, r.seq]), [['stored', 4], ['stored', 5], ['stored', 6]]);
    // a known id at the end of a batch of 900 (past the first insert of 500): duplicate, conflict, the rest stored
    const fresh = Array.from({ length: 900 }, () => mk());
    const batch = [...fresh, first[1]!, { ...first[2]!, cost: '0.6' }];
    const r3 = await push(db, a, validatePush({ protocol: 1, calls: batch }).calls);
    assert.deepEqual([r3.stored, r3.duplicates, r3.conflicts], [900, 1, 1]);
    assert.deepEqual(r3.results.slice(-2).map((r) => [r.status, r.seq]), [['duplicate', 2], ['conflict', 3]]);
    assert.deepEqual([r3.results[0]!.seq, r3.results[899]!.seq], [7, 906], 'sequence numbers stay gap-free');
    // a correction of a call the account does not have: refused, nothing of the batch stored
    const before = num((await db.get('SELECT COUNT(*) AS n FROM calls'))!.n);
    await assert.rejects(push(db, a, validatePush({ protocol: 1, calls: [mk(), mk({ corrects: uuidv7(), cost: '-1' })] }).calls), /unknown_original|corrects/);
    await assert.rejects(push(db, a, validatePush({ protocol: 1, calls: [mk({ corrects: orig.id, cost: '-1' }), mk()].reverse().map((c, i, xs) => (i === 0 ? { ...c, corrects: xs[1]!.id } : c)) }).calls), /unknown_original|corrects/);
    assert.equal(num((await db.get('SELECT COUNT(*) AS n FROM calls'))!.n), before);
    assert.equal(num((await db.get('SELECT last_seq FROM accounts'))!.last_seq), 906);
    const next = await push(db, a, validatePush({ protocol: 1, calls: [mk()] }).calls);
    assert.equal(next.results[0]!.seq, 907);
  } finally {
    await db.close();
  }
});

test('pulled calls add the same rollups and totals whether a page is written at once or call by call', () => {
  const pulled = [
    row({ ts: 1_700_000_000_000 }), row({ ts: 1_700_000_100_000, costNano: 7n }), row({ ts: 1_700_000_200_000, unpriced: true, costNano: 0n }),
    row({ ts: 1_700_000_000_000, project: 'beta' }), row({ ts: 1_700_009_000_000 }), row({ status: 'blocked', costNano: 0n }),
  ].map((r) => ({ row: r, device: 'desktop', deviceId: 'd-2' }));
  const read = (L: Ledger) => ({
    totals: L.totals(),
    rollups: L.db.prepare('SELECT bucket, provider, model, project, key_fp, workflow, calls, cost_nano, unpriced FROM rollups ORDER BY bucket, project').safeIntegers(true).all(),
  });
  const onePage = new Ledger(dir('tollgate-pulled-page-'), { writerThread: false });
  const oneByOne = new Ledger(dir('tollgate-pulled-each-'), { writerThread: false });
  try {
    assert.equal(onePage.insertPulled([...pulled, pulled[0]!]), pulled.length, 'a call already here counts once');
    for (const p of pulled) oneByOne.insertPulled([p]);
    assert.deepEqual(read(onePage), read(oneByOne));
    assert.equal(read(onePage).totals.calls, 5);
  } finally {
    onePage.close();
    oneByOne.close();
  }
});
