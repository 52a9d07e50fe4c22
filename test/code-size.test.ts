// The size rule of ARCHITECTURE.md: no source file in src/ over 500 lines and no function over 80,
// so each stage stays readable in one sitting. Measured with the TypeScript parser (every function,
// method, accessor and arrow function with a body), counting the lines from its first token to its
// closing brace. A failure names the file, the line and the function.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

export const MAX_FILE_LINES = 500;
export const MAX_FUNCTION_LINES = 80;

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    if (d.isDirectory()) return sourceFiles(p);
    return /\.ts$/.test(d.name) && !/\.d\.ts$/.test(d.name) ? [p] : [];
  });
}

/** Whether a file is generated from schemas/ (its size follows the schema, not a person). */
function generated(text: string): boolean {
  return /^(\/\/|\/\*)[^\n]*\bgenerated\b[\s\S]{0,300}?do not edit/i.test(text.slice(0, 600));
}

export interface LongFunction {
  file: string;
  line: number;
  name: string;
  lines: number;
}

/** Every function of a source text longer than `max` lines. */
export function longFunctions(file: string, text: string, max: number): LongFunction[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: LongFunction[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const first = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const last = sf.getLineAndCharacterOfPosition(node.end).line;
      const lines = last - first + 1;
      if (lines > max) {
        const named = (node as ts.FunctionLikeDeclarationBase).name;
        out.push({ file, line: first + 1, name: named ? named.getText(sf) : '(anonymous)', lines });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

describe('code size: files and functions stay small', () => {
  const files = sourceFiles('src').map((f) => ({ file: f, text: fs.readFileSync(f, 'utf8') }));

  it(`no source file in src/ is over ${MAX_FILE_LINES} lines`, () => {
    const long = files
      .filter((f) => !generated(f.text))
      .map((f) => ({
        file: f.file,
        lines: f.text.split('\n').length - (f.text.endsWith('\n') ? 1 : 0),
      }))
      .filter((f) => f.lines > MAX_FILE_LINES)
      .map((f) => `${f.file}: ${f.lines} lines`);
    assert.deepEqual(long, [], `split these along their seams:\n${long.join('\n')}`);
  });

  it(`no function in src/ is over ${MAX_FUNCTION_LINES} lines`, () => {
    const long = files
      .filter((f) => !generated(f.text))
      .flatMap((f) => longFunctions(f.file, f.text, MAX_FUNCTION_LINES))
      .map((f) => `${f.file}:${f.line} ${f.name}: ${f.lines} lines`);
    assert.deepEqual(long, [], `shorten these:\n${long.join('\n')}`);
  });

  it('the measure counts a function from its first line to its closing brace', () => {
    const body = Array.from({ length: 5 }, (_, i) => `  const a${i} = ${i};`).join('\n');
    const text = `export function f() {\n${body}\n}\nconst g = () => {\n  return 1;\n};\n`;
    assert.deepEqual(longFunctions('x.ts', text, 6), [
      { file: 'x.ts', line: 1, name: 'f', lines: 7 },
    ]);
    assert.deepEqual(longFunctions('x.ts', text, 7), []);
  });
});
