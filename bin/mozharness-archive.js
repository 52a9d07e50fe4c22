#!/usr/bin/env node
// Entry point of the installed command. `npm ci` builds dist/ through the `prepare` script.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
await import('../dist/cli/main.js');
