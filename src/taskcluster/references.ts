// The upstream API references that taskcluster-client ships (src/apis.js): every method's name,
// HTTP verb, route, arguments, query parameters and scopes. The embedded services build their
// route table from these, so paths and verbs match upstream by construction.
import apis from 'taskcluster-client/src/apis.js';

export interface ApiEntry {
  type: 'function' | 'topic-exchange';
  name: string;
  method: 'get' | 'post' | 'put' | 'delete' | 'patch';
  route: string;
  args: string[];
  query: string[];
  scopes?: unknown;
  input?: string;
  output?: string;
  stability: string;
  title: string;
}

export interface ApiReference {
  serviceName: string;
  apiVersion: string;
  entries: ApiEntry[];
}

const byService: Record<string, ApiReference> = {};
for (const value of Object.values(apis as Record<string, { reference: ApiReference }>)) {
  const ref = value.reference;
  if (ref.entries?.some((e) => e.type === 'function')) byService[ref.serviceName] = ref;
}

/** The reference of one service, e.g. `apiReference('queue')`. */
export function apiReference(serviceName: string): ApiReference {
  const ref = byService[serviceName];
  if (!ref) throw new Error(`no API reference for service '${serviceName}'`);
  return ref;
}

/** The function entries of one service. */
export function apiEntries(serviceName: string): ApiEntry[] {
  return apiReference(serviceName).entries.filter((e) => e.type === 'function');
}
