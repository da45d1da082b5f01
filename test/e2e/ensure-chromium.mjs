// Finds a Chromium for the e2e tests; installs Debian's when running as root; otherwise stops
// at once with the exact command to run. (Playwright's own browser download needs the network.)
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';

const candidates = [process.env.TOLLGATE_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome'].filter(Boolean);
const found = candidates.find((p) => fs.existsSync(p));
if (found) process.exit(0);
const root = typeof process.getuid === 'function' && process.getuid() === 0;
if (root && fs.existsSync('/usr/bin/apt-get')) {
  console.log('No Chromium found: installing Debian\'s chromium package (apt-get install -y chromium)…');
  const u = spawnSync('apt-get', ['update'], { stdio: 'inherit' });
  const i = u.status === 0 ? spawnSync('apt-get', ['install', '-y', 'chromium'], { stdio: 'inherit' }) : u;
  if (i.status === 0 && fs.existsSync('/usr/bin/chromium')) process.exit(0);
}
console.error('The browser tests need Chromium. Install it with:\n  sudo apt-get install -y chromium      (Debian/Ubuntu)\nor set TOLLGATE_CHROMIUM=/path/to/chrome, then run `npm test` again.');
process.exit(1);
