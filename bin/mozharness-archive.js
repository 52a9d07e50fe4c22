#!/usr/bin/env node
// Entry point of the installed command. `npm ci` builds dist/ through the `prepare` script.
import module from 'node:module';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// Node 22.1+ keeps V8's compiled code of the modules between runs (not there on Node 20)
module.enableCompileCache?.();
await import('../dist/cli/main.js');
