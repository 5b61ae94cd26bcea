// Names in the order of the app's language (Chinese by pinyin, English alphabetically), numbers
// by value ("Room 2" before "Room 10").
// The language is always passed in: a component gets it with `useLang((s) => s.lang)`, which
// re-renders it when the person switches language, and lists it among a memo's inputs, so
// that its lists are sorted again then. (Reading `useLang.getState()` while sorting does
// neither: a list sorted in one language would stay so.)
import type { Lang } from "../i18n";

const collators = new Map<Lang, Intl.Collator>();

/** The collator for `lang` (one per language, kept: making one is not cheap). */
export function collator(lang: Lang): Intl.Collator {
  let c = collators.get(lang);
  if (!c) collators.set(lang, (c = new Intl.Collator(lang, { numeric: true })));
  return c;
}

/** A copy of `list` sorted by `name` in `lang`'s order. */
export function sortByName<T>(list: readonly T[], name: (x: T) => string, lang: Lang): T[] {
  const compare = collator(lang).compare;
  return [...list].sort((a, b) => compare(name(a), name(b)));
}
