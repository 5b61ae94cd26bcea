// Finding people by what someone types: their name, username or e-mail, or the name's pinyin
// run together, with spaces, or as initials (张伟: `zhangwei`, `zhang wei`, `zw`), ignoring
// case, full-width letters and traditional characters (陈伟 finds 陳偉). The same rules as the
// server's directory search (`search_key` in crates/qiao-domain/src/user.rs), whose tables
// cover every CJK character where this one covers GB 2312's and their traditional forms.
import type { User } from "../types";
import { PINYIN, SURNAMES, T2S } from "./pinyin-table";

let readings: Map<string, string> | null = null;

function reading(c: string): string | undefined {
  if (!readings) {
    readings = new Map();
    for (const line of PINYIN.split("\n")) {
      const [syllable, chars] = line.split(" ");
      for (const ch of chars ?? "") readings.set(ch, syllable);
    }
  }
  return readings.get(c);
}

/** A name's pinyin, a syllable per Chinese character (a surname read as a surname). */
export function namePinyin(name: string): string[] {
  const out: string[] = [];
  for (const ch of name) {
    const r = (out.length === 0 && SURNAMES[ch]) || reading(ch);
    if (r) out.push(r);
  }
  return out;
}

let simplified: Map<string, string> | null = null;

/** Lower case, full-width letters and digits as ordinary ones, traditional characters as simplified. */
export function foldText(s: string): string {
  if (!simplified) {
    simplified = new Map();
    const pairs = Array.from(T2S);
    for (let i = 0; i + 1 < pairs.length; i += 2) simplified.set(pairs[i], pairs[i + 1]);
  }
  const table = simplified;
  let out = "";
  for (const ch of s.normalize("NFKC").toLowerCase()) out += table.get(ch) ?? ch;
  return out;
}

const keys = new WeakMap<User, string>();

function personKey(u: User): string {
  let key = keys.get(u);
  if (key === undefined) {
    const syllables = namePinyin(u.display_name);
    const parts = [u.username, u.display_name, u.email ?? "", u.title];
    if (syllables.length) parts.push(syllables.join(""), syllables.join(" "), syllables.map((s) => s[0]).join(""));
    key = parts.map(foldText).join("\n");
    keys.set(u, key);
  }
  return key;
}

/** Whether `query` (as typed) finds `u`; an empty query finds everyone. */
export function matchesPerson(u: User, query: string): boolean {
  const q = foldText(query.trim());
  return !q || personKey(u).includes(q);
}
