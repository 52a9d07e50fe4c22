// Scope expression templates, as the API references declare them for each method (taskcluster-
// client's src/apis.js `scopes`), rendered with a request's parameters the way upstream's
// `req.authorize(params)` does (libraries/api/src/expressions.js):
// - `<name>` in a string is replaced by the parameter `name` (a string or a number);
// - `{for: 'x', in: 'xs', each: '...<x>...'}` expands to one scope per element of the array `xs`,
//   spliced into the surrounding AllOf/AnyOf;
// - `{if: 'flag', then: expr[, else: expr]}` takes `then` when `flag` is true, `else` (or nothing)
//   when false.
// A parameter of the wrong type is a programming error in the handler (thrown as an Error).
import type { ScopeExpression } from './framework.js';

export type ScopeTemplate =
  | string
  | { AllOf: ScopeTemplate[] }
  | { AnyOf: ScopeTemplate[] }
  | { for: string; in: string; each: string }
  | { if: string; then: ScopeTemplate; else?: ScopeTemplate };

export type ScopeParams = Record<string, unknown>;

function param(params: ScopeParams, name: string): unknown {
  // dotted names descend into objects, as upstream allows
  let value: unknown = params;
  for (const part of name.split('.')) {
    value =
      value && typeof value === 'object' ? (value as Record<string, unknown>)[part] : undefined;
  }
  return value;
}

function renderString(template: string, params: ScopeParams): string {
  return template.replace(/<([a-zA-Z][a-zA-Z0-9_.]*)>/g, (_, name: string) => {
    const value = param(params, name);
    if (typeof value !== 'string' && typeof value !== 'number') {
      throw new Error(
        `scope expression template expected parameter '${name}' to be a string or number`,
      );
    }
    return String(value);
  });
}

type Rendered = ScopeExpression | ScopeExpression[] | null;

function renderList(items: ScopeTemplate[], params: ScopeParams): ScopeExpression[] {
  const out: ScopeExpression[] = [];
  for (const item of items) {
    const r = renderTemplate(item, params);
    if (r === null) continue;
    if (Array.isArray(r)) out.push(...r);
    else out.push(r);
  }
  return out;
}

function renderTemplate(template: ScopeTemplate, params: ScopeParams): Rendered {
  if (typeof template === 'string') return renderString(template, params);
  if ('AllOf' in template) return { AllOf: renderList(template.AllOf, params) };
  if ('AnyOf' in template) return { AnyOf: renderList(template.AnyOf, params) };
  if ('for' in template) {
    const values = param(params, template.in);
    if (!Array.isArray(values)) {
      throw new Error(
        `scope expression template expected parameter '${template.in}' to be an array`,
      );
    }
    return values.map((v) => renderString(template.each, { ...params, [template.for]: v }));
  }
  if ('if' in template) {
    const flag = param(params, template.if);
    if (flag === true) return renderTemplate(template.then, params);
    if (flag === false) return template.else ? renderTemplate(template.else, params) : null;
    throw new Error(
      `scope expression template expected parameter '${template.if}' to be a boolean`,
    );
  }
  throw new Error(`not a scope expression template: ${JSON.stringify(template)}`);
}

/**
 * The scope expression a request must satisfy: the method's template with the parameters filled
 * in. A template that renders to nothing (an `if` without `else`) requires nothing: `{AllOf: []}`.
 */
export function renderScopeTemplate(template: ScopeTemplate, params: ScopeParams): ScopeExpression {
  const r = renderTemplate(template, params);
  if (r === null) return { AllOf: [] };
  if (Array.isArray(r)) return { AllOf: r };
  return r;
}

/** The parameters a template uses, with the type each needs (as upstream's extractParams). */
function templateParams(template: ScopeTemplate): Map<string, 'string' | 'array' | 'boolean'> {
  const out = new Map<string, 'string' | 'array' | 'boolean'>();
  const strings = (s: string, skip?: string) => {
    for (const m of s.matchAll(/<([a-zA-Z][a-zA-Z0-9_.]*)>/g)) {
      if (m[1] !== skip) out.set(m[1]!, 'string');
    }
  };
  const walk = (t: ScopeTemplate) => {
    if (typeof t === 'string') strings(t);
    else if ('AllOf' in t) t.AllOf.forEach(walk);
    else if ('AnyOf' in t) t.AnyOf.forEach(walk);
    else if ('for' in t) {
      out.set(t.in, 'array');
      strings(t.each, t.for);
    } else {
      out.set(t.if, 'boolean');
      walk(t.then);
      if (t.else) walk(t.else);
    }
  };
  walk(template);
  return out;
}

/**
 * Whether upstream checks a method's scopes itself before the handler runs: when every
 * parameter of the template is a URL parameter of the route (libraries/api middleware/auth.js).
 * The other methods call `authorize(params)` with values from the body or the stored resource.
 */
export function authorizedFromUrl(template: ScopeTemplate, routeParams: string[]): boolean {
  for (const [name, type] of templateParams(template)) {
    if (type !== 'string' || !routeParams.includes(name)) return false;
  }
  return true;
}
