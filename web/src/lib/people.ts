// Finding people by what someone types: their name, username or e-mail, or the name's pinyin
// run together, with spaces, or as initials (张伟: `zhangwei`, `zhang wei`, `zw`), ignoring
// case and full-width letters. The same rules as the server's directory search
// (`search_key` in crates/qiao-domain/src/user.rs), which also folds traditional characters.
import type { User } from "../types";
import { PINYIN, SURNAMES } from "./pinyin-table";

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

/** Lower case, and full-width letters and digits as ordinary ones. */
export function foldText(s: string): string {
  return s.normalize("NFKC").toLowerCase();
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
