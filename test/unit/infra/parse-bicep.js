// Parses Bicep files with tree-sitter-bicep (web-tree-sitter's wasm build) and prints, as JSON, what the infra test
// checks: the parse errors and each top-level declaration with its value made plain. Run as a child process because
// web-tree-sitter loads its wasm through ESM and fetch-style loaders that jest's module system does not provide.
'use strict';
const { readFileSync } = require('node:fs');
const { Parser, Language } = require('web-tree-sitter');

/** A node's value as JSON where it is a literal (string, number, bool, array, object), else `{ expr: text }`. */
function plain(node) {
  switch (node.type) {
    case 'string': {
      const parts = node.namedChildren;
      if (parts.every((p) => p.type === 'string_content' || p.type === 'escape_sequence'))
        return parts.map((p) => (p.type === 'escape_sequence' ? p.text.slice(1) : p.text)).join('');
      return { expr: node.text };
    }
    case 'multiline_string':
      return node.text.replace(/^'''\n?|'''$/g, '');
    case 'number':
      return Number(node.text);
    case 'boolean':
      return node.text === 'true';
    case 'null':
      return null;
    case 'array':
      return node.namedChildren.filter((c) => c.type !== 'comment').map(plain);
    case 'object': {
      const out = {};
      for (const prop of node.namedChildren.filter((c) => c.type === 'object_property')) {
        const [key, value] = prop.namedChildren;
        out[key.type === 'string' ? plain(key) : key.text] = plain(value);
      }
      return out;
    }
    case 'if_statement':
      // `= if (cond) { ... }`: the body, with the condition kept.
      return { ...plain(node.namedChildren[1]), '@if': node.namedChildren[0].text };
    case 'for_statement': {
      const body = node.namedChildren[node.namedChildren.length - 1];
      return { '@for': node.text.split(':')[0].replace(/^\[\s*/, ''), body: plain(body) };
    }
    default:
      return { expr: node.text };
  }
}

const KINDS = {
  parameter_declaration: 'param',
  variable_declaration: 'var',
  output_declaration: 'output',
  resource_declaration: 'resource',
  module_declaration: 'module',
};

function describe(tree) {
  const errors = [];
  (function walk(n) {
    if (n.isError || n.isMissing)
      errors.push(`${n.isMissing ? 'MISSING' : 'ERROR'} at line ${n.startPosition.row + 1}`);
    for (const c of n.children) walk(c);
  })(tree.rootNode);
  const declarations = [];
  for (const node of tree.rootNode.namedChildren) {
    const kind = KINDS[node.type];
    if (!kind) continue;
    const [name, ...rest] = node.namedChildren;
    const entry = { kind, name: name.text };
    if (kind === 'resource' || kind === 'module') entry.type = plain(rest[0]);
    const last = rest[rest.length - 1];
    if (kind === 'param') entry.hasDefault = rest.length > 1 && last.type !== 'type';
    if (last && kind !== 'param') entry.value = plain(last);
    declarations.push(entry);
  }
  return { errors, declarations };
}

(async () => {
  await Parser.init();
  const bicep = await Language.load(require.resolve('tree-sitter-bicep/tree-sitter-bicep.wasm'));
  const parser = new Parser();
  parser.setLanguage(bicep);
  const result = {};
  for (const file of process.argv.slice(2)) result[file] = describe(parser.parse(readFileSync(file, 'utf8')));
  process.stdout.write(JSON.stringify(result));
})().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err));
  process.exit(1);
});
