#!/usr/bin/env node
// The `tollgate-ledger` command: the remote ledger service Tollgate devices sync with
// (ledger/README.md). TypeScript sources run through tsx, like bin/tollgate.js.
import { register } from 'tsx/esm/api';

register();
await import('../ledger/cli.ts');
