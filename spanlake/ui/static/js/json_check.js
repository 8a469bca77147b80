// Where a JSON text first goes wrong, as line and column (1-based), the same in every browser:
// the engines' JSON.parse messages differ and some carry no position at all.

const WS = " \t\n\r";

class JsonSyntax extends Error {
  constructor(message, pos) { super(message); this.pos = pos; }
}

function scan(text) {
  let i = 0;
  const shown = (c) => ({ "\n": "line break", "\t": "tab", " ": "space" }[c] ?? `'${c}'`);
  const fail = (what) => { throw new JsonSyntax(i >= text.length ? `unexpected end of text; expected ${what}` : `unexpected ${shown(text[i])}; expected ${what}`, i); };
  const ws = () => { while (i < text.length && WS.includes(text[i])) i += 1; };
  const literal = (word) => { if (text.startsWith(word, i)) i += word.length; else fail(`a value`); };
  const string = () => {
    i += 1;
    while (i < text.length) {
      const c = text[i];
      if (c === '"') { i += 1; return; }
      if (c === "\\") {
        const e = text[i + 1];
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) { i += 2; fail("4 hex digits after \\u"); }
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else { i += 1; fail("an escape such as \\n or \\\""); }
      } else if (c < " ") fail("a closing quote (control characters must be escaped)");
      else i += 1;
    }
    fail('a closing "');
  };
  const number = () => {
    const match = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!match) fail("a value");
    i += match[0].length;
  };
  const value = () => {
    ws();
    const c = text[i];
    if (c === "{") {
      i += 1; ws();
      if (text[i] === "}") { i += 1; return; }
      for (;;) {
        ws();
        if (text[i] !== '"') fail("a property name in double quotes");
        string(); ws();
        if (text[i] !== ":") fail("':'");
        i += 1; value(); ws();
        if (text[i] === ",") { i += 1; continue; }
        if (text[i] === "}") { i += 1; return; }
        fail("',' or '}'");
      }
    } else if (c === "[") {
      i += 1; ws();
      if (text[i] === "]") { i += 1; return; }
      for (;;) {
        value(); ws();
        if (text[i] === ",") { i += 1; continue; }
        if (text[i] === "]") { i += 1; return; }
        fail("',' or ']'");
      }
    } else if (c === '"') string();
    else if (c === "t") literal("true");
    else if (c === "f") literal("false");
    else if (c === "n") literal("null");
    else number();
  };
  value(); ws();
  if (i < text.length) fail("the end of the text");
}

/** null when `text` is valid JSON, else {line, column, message}. */
export function jsonError(text) {
  try {
    scan(text);
    return null;
  } catch (error) {
    if (!(error instanceof JsonSyntax)) throw error;
    const before = text.slice(0, error.pos).split("\n");
    return { line: before.length, column: before[before.length - 1].length + 1, message: error.message };
  }
}
