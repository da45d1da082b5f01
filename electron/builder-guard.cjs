// electron-builder `beforeBuild` hook (see electron-builder.yml). Refuses to let
// electron-builder rebuild native modules in any directory that is not a staging copy made by
// electron/package.mjs, so the repository's node_modules (plain Node's better-sqlite3) is
// never rebuilt for Electron's ABI. Returning true lets electron-builder do its rebuild.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

exports.MARKER = '.tollgate-stage';

exports.default = async function beforeBuild(context) {
  const marker = path.join(context.appDir, exports.MARKER);
  if (!fs.existsSync(marker)) {
    throw new Error(
      `Refusing to rebuild native modules in ${context.appDir}: it would overwrite the better-sqlite3 ` +
        'binary plain Node uses with an Electron-ABI build. Package with `node electron/package.mjs`, ' +
        'which stages the app and rebuilds there.',
    );
  }
  return true;
};
exports.beforeBuild = exports.default;
