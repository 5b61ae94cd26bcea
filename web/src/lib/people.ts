// Finding people and conversations by what someone types: a name, username or e-mail, or the name's pinyin
// run together, with spaces, or as initials (张伟: `zhangwei`, `zhang wei`, `zw`), ignoring
// case, full-width letters and traditional characters (陈伟 finds 陳偉). The same rules as the
// server's directory search (`search_key` in crates/qiao-domain/src/user.rs), whose tables
// cover every CJK character where this one covers GB 2312's and their traditional forms.
import type { Conversation, Id, User } from "../types";
import { PINYIN, SURNAMES, T2S } from "./pinyin-table";

let readings: Map<string, string> | null = null;
let simplified: Map<string, string> | null = null;

/** A character's simplified form (itself when it has none). */
function simplify(ch: string): string {
  if (!simplified) {
    simplified = new Map();
    const pairs = Array.from(T2S);
    for (let i = 0; i + 1 < pairs.length; i += 2) simplified.set(pairs[i], pairs[i + 1]);
  }
  return simplified.get(ch) ?? ch;
}

/** Lower case, full-width letters and digits as ordinary ones, traditional characters as simplified. */
export function foldText(s: string): string {
  let out = "";
  // Diacritics go as on the server (José finds jose), then width and compatibility forms.
  const plain = s.normalize("NFD").replace(/[\u0300-\u036f]/g, "").normalize("NFKC");
  for (const ch of plain.toLowerCase()) out += simplify(ch);
  return out;
}

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
  for (const ch of Array.from(name, simplify)) {
    const r = (out.length === 0 && SURNAMES[ch]) || reading(ch);
    if (r) out.push(r);
  }
  return out;
}


/** A text's pinyin, a syllable per Chinese character (no surname reading: channel names). */
export function textPinyin(text: string): string[] {
  const out: string[] = [];
  for (const ch of Array.from(text, simplify)) {
    const r = reading(ch);
    if (r) out.push(r);
  }
  return out;
}

/** The lines a text is matched on: folded, then its pinyin run together, spaced and as initials. */
function matchKey(text: string, syllables: string[]): string {
  const parts = [text];
  if (syllables.length) parts.push(syllables.join(""), syllables.join(" "), syllables.map((s) => s[0]).join(""));
  return parts.map(foldText).join("\n");
}

/** Whether `query` (as typed) finds a channel name: folded text or its pinyin (项目组: `xmz`). */
export function matchesText(text: string, query: string): boolean {
  const q = foldText(query.trim());
  return !q || matchKey(text, textPinyin(text)).includes(q);
}

const keys = new WeakMap<User, string>();

function personKey(u: User): string {
  let key = keys.get(u);
  if (key === undefined) {
    key = [u.username, u.email ?? "", u.title].map(foldText).join("\n") + "\n" + matchKey(u.display_name, namePinyin(u.display_name));
    keys.set(u, key);
  }
  return key;
}

/** Whether `query` (as typed) finds `u`; an empty query finds everyone. */
export function matchesPerson(u: User, query: string): boolean {
  const q = foldText(query.trim());
  return !q || personKey(u).includes(q);
}

/** Whether `query` finds a conversation: its name, or someone else in it when it is a DM. */
export function matchesConversation(conv: Conversation, query: string, meId: Id | undefined, users: Record<Id, User>): boolean {
  if (!query.trim()) return true;
  if (conv.name && matchesText(conv.name, query)) return true;
  if (conv.kind !== "dm" && conv.kind !== "group") return false;
  return conv.participant_ids.some((p) => p !== meId && users[p] !== undefined && matchesPerson(users[p], query));
}
