#!/usr/bin/env node
// The `tollgate` command. TypeScript sources run through tsx, so a fresh clone works after a
// plain `npm install` with no build step to remember.
import { register } from 'tsx/esm/api';

register();
await import('../electron/engine/cli.ts');
