declare module 'taskcluster-client' {
  const tc: any;
  export default tc;
}
declare module 'taskcluster-client/src/apis.js' {
  const apis: any;
  export default apis;
}
declare module 'taskcluster-lib-scopes' {
  export function satisfiesExpression(scopeset: string[], expression: unknown): boolean;
  export function removeGivenScopes(scopeset: string[], expression: unknown): unknown;
  export function scopeIntersection(a: string[], b: string[]): string[];
  export function scopeUnion(a: string[], b: string[]): string[];
  export function normalizeScopeSet(scopes: string[]): string[];
  export function validScope(scope: string): boolean;
  export function validExpression(expr: unknown): boolean;
  export function scopeCompare(a: string, b: string): number;
  export function mergeScopeSets(a: string[], b: string[]): string[];
}
declare module 's3rver' {
  const S3rver: any;
  export default S3rver;
}
