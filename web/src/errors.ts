// What an error says to the person using the app, in the app's language.
import { ApiError } from "./api";
import { isKey, translate, useLang } from "./i18n";

/** An error as text. The server's messages are English and the most specific, so English
 * shows them; Chinese shows the text for the error's stable code (with the field or the
 * wait where the server gave one), and the server's words only for a code it does not know. */
export function errorText(e: unknown): string {
  const lang = useLang.getState().lang;
  if (!(e instanceof ApiError)) return e instanceof Error ? e.message : String(e);
  if (e.code === "network" || e.code === "cancelled" || e.code === "stalled") return translate(lang, `error.${e.code}`);
  if (e.code.startsWith("http_") || !e.message) return translate(lang, "error.http", { status: e.status });
  if (lang === "en") return e.message;
  if (e.code === "rate_limited" && e.retryAfter) return translate(lang, "error.rate_limited_wait", { seconds: e.retryAfter });
  if (e.code === "invalid_input" && e.field) return translate(lang, "error.invalid_input_field", { field: e.field });
  const key = `error.${e.code}`;
  return isKey(key) ? translate(lang, key) : translate(lang, "error.generic", { message: e.message });
}
