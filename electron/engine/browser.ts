/**
 * Opening the UI in the user's browser, signed in, without the control token ever appearing on a
 * command line (where `ps` shows it to every user of the machine) or in a query string (where it
 * would reach logs and Referer headers).
 *
 * As Jupyter does: the token goes into a small redirect page in the data dir (0600, readable only
 * by the user, like control.token itself), and the browser is given that file's path. The page
 * sends the browser on to `http://127.0.0.1:PORT/#token=…`; the UI moves the token from the
 * fragment into session storage and removes it from the address bar.
 *
 * $BROWSER is honoured as everywhere on Unix (`BROWSER=none` opens nothing); on Linux without a
 * display there is nothing to open, and we say so rather than claim a browser appeared.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const REDIRECT_FILE = 'open-ui.html';

export interface OpenResult {
  opened: boolean;
  /** Why nothing was opened, in words for the user. */
  reason?: string;
}

export function signedInUrl(baseUrl: string, token: string): string {
  return `${baseUrl}/#token=${token}`;
}

function writeRedirect(dataDir: string, url: string): string {
  const file = path.join(dataDir, REDIRECT_FILE);
  const escaped = url.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  const html = `<!doctype html><meta charset="utf-8"><title>Tollgate</title>
<meta http-equiv="refresh" content="0;url=${escaped}">
<script>location.replace(${JSON.stringify(url)})</script>
<p>Opening Tollgate… <a href="${escaped}">continue</a></p>\n`;
  fs.rmSync(file, { force: true });
  fs.writeFileSync(file, html, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return file;
}

/** The command that opens a file in the default browser here, or why there is none. */
function opener(): { cmd: string; args: string[] } | { reason: string } {
  const browser = process.env.BROWSER;
  if (browser !== undefined && browser !== '') {
    if (browser === 'none') return { reason: 'BROWSER=none' };
    return { cmd: browser.split(':')[0]!, args: [] };
  }
  if (process.platform === 'darwin') return { cmd: 'open', args: [] };
  if (process.platform === 'win32') return { cmd: 'explorer.exe', args: [] };
  if (!process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) return { reason: 'there is no graphical display here (no $DISPLAY or $WAYLAND_DISPLAY)' };
  return { cmd: 'xdg-open', args: [] };
}

/**
 * Open the signed-in UI. Resolves once the opener has exited (xdg-open and `open` return as soon
 * as they have handed the page to a browser) or after 10 s for openers that stay (a browser given
 * as $BROWSER), so `opened` is what the opener reported, not a guess.
 */
export function openSignedIn(dataDir: string, baseUrl: string, token: string): Promise<OpenResult> {
  const how = opener();
  if ('reason' in how) return Promise.resolve({ opened: false, reason: how.reason });
  const file = writeRedirect(dataDir, signedInUrl(baseUrl, token));
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: OpenResult) => {
      if (!done) {
        done = true;
        resolve(r);
      }
    };
    const child = spawn(how.cmd, [...how.args, file], { stdio: 'ignore', detached: true });
    child.on('error', (e) => finish({ opened: false, reason: `${how.cmd}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not installed' : e.message}` }));
    child.on('exit', (code) => finish(code === 0 ? { opened: true } : { opened: false, reason: `${how.cmd} exited with code ${code}` }));
    // An opener that stays (a browser named in $BROWSER) has taken the page by then; the CLI need
    // not wait for it to close.
    setTimeout(() => {
      child.unref();
      finish({ opened: true });
    }, 10_000).unref();
    child.once('spawn', () => {
      const keepAlive = setTimeout(() => {}, 10_500); // holds the event loop until exit or the 10 s above
      child.once('exit', () => clearTimeout(keepAlive));
      child.once('error', () => clearTimeout(keepAlive));
    });
  });
}
