// The archive contract: every fact that the decision task, the worker, actions, lookups and local
// replay must agree on. Nothing outside this folder spells an index namespace, an archive artifact
// name or the level order.
export * from './artifacts.js';
export * from './expected.js';
export * from './levels.js';
export * from './namespaces.js';
