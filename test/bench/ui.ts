/**
 * The Overview in a real browser on a large ledger: time from navigation until today's spend is
 * on screen (issue target: under 1 s with 10 M calls). Needs Chromium; reports why not otherwise.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { startEngine } from '../../electron/engine/engine.ts';
import { makeBigLedger } from './proxy.ts';
import type { BenchResult } from './pricing.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CHROMIUM = [process.env.TOLLGATE_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) => p && fs.existsSync(p));

export async function benchUi(calls = 10_000_000): Promise<BenchResult[]> {
  if (!CHROMIUM) return [{ name: 'Overview on screen (browser)', value: NaN, unit: 'ms', note: 'not measured: no Chromium found (apt-get install chromium)' }];
  const uiDir = path.join(ROOT, 'dist/renderer');
  if (!fs.existsSync(path.join(uiDir, 'index.html'))) execFileSync('npx', ['vite', 'build', '--config', 'renderer/vite.config.ts'], { cwd: ROOT, stdio: 'ignore' });
  const { dir, described } = makeBigLedger(calls);
  const engine = await startEngine({ dataDir: dir, port: 0, quiet: true, uiDir });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  try {
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const page = await browser.newPage();
      // Measured in the page, on its own clock from navigation start: the moment today's spend
      // (a dollar amount) is first in the DOM. Playwright's polling would add its own delay.
      await page.addInitScript(`
        new MutationObserver((_, obs) => {
          const el = document.querySelector('[data-testid="spend-today"]');
          if (el && el.textContent && el.textContent.includes('$')) { window.__spendShownAt = performance.now(); obs.disconnect(); }
        }).observe(document, { subtree: true, childList: true, characterData: true });
      `);
      await page.goto(`${engine.url}/#token=${engine.token}`);
      await page.getByTestId('spend-today').filter({ hasText: '$' }).waitFor();
      times.push(await page.evaluate('window.__spendShownAt') as number);
      await page.close();
    }
    const best = Math.min(...times);
    return [{ name: `Overview on screen in Chromium (${described})`, value: best, unit: 'ms', target: '< 1000', ok: best < 1000, note: `navigation start → spend in the DOM; runs: ${times.map((t) => t.toFixed(0)).join(', ')} ms (first with a cold cache)` }];
  } finally {
    await browser.close();
    await engine.stop();
  }
}
