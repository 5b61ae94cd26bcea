// A small Markdown renderer that builds React elements (never HTML strings), so message text
// cannot inject markup or script. Supports paragraphs and line breaks, **bold**, *italic*,
// ~~strike~~, `code`, fenced code blocks, > quotes, - and 1. lists, [links](https://…),
// bare URLs and mentions (`@username`, `<@user-id>`, `<@&department-id>`, `@channel`).
import type { ReactNode } from "react";

export interface MentionNames {
  user(id: string): string | undefined;
  username(name: string): string | undefined;
  department(id: string): string | undefined;
  /** Whether this username or id is the reader (highlighted more). */
  isMe(idOrUsername: string): boolean;
  /** The departments the server counted as mentioned (a refused one stays plain text); all
   * when not given (a message not yet sent). */
  mentionedDepartments?: readonly string[];
}

const SAFE_URL = /^(https?:\/\/|mailto:)/i;

export function safeUrl(url: string): string | null {
  const u = url.trim();
  return SAFE_URL.test(u) ? u : null;
}

type Inline = ReactNode[];

const INLINE =
  /(`+)([\s\S]*?[^`])\1(?!`)|\*\*([^*]+?)\*\*|__([^_]+?)__|~~([^~]+?)~~|\*([^*\s][^*]*?)\*|(?<![\w])_([^_\s][^_]*?)_(?![\w])|\[([^\]]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"，。；：！？）])|<@&([0-9a-fA-F-]{36})>|<@([0-9a-fA-F-]{36})>|(?<![\w.@-])@(所有人|全体成员|[A-Za-z0-9][A-Za-z0-9._+-]*[A-Za-z0-9_]|[A-Za-z0-9])/g;

function inline(text: string, names: MentionNames | undefined, key: string): Inline {
  const out: Inline = [];
  let last = 0;
  let i = 0;
  for (const m of text.matchAll(INLINE)) {
    const start = m.index ?? 0;
    if (start > last) out.push(text.slice(last, start));
    last = start + m[0].length;
    const k = `${key}.${i++}`;
    if (m[1]) out.push(<code key={k}>{m[2]}</code>);
    else if (m[3] || m[4]) out.push(<strong key={k}>{inline(m[3] ?? m[4], names, k)}</strong>);
    else if (m[5]) out.push(<del key={k}>{inline(m[5], names, k)}</del>);
    else if (m[6] || m[7]) out.push(<em key={k}>{inline(m[6] ?? m[7], names, k)}</em>);
    else if (m[8]) {
      const href = safeUrl(m[9]);
      out.push(
        href ? (
          <a key={k} href={href} target="_blank" rel="noopener noreferrer nofollow">
            {inline(m[8], names, k)}
          </a>
        ) : (
          m[0]
        ),
      );
    } else if (m[10]) {
      out.push(
        <a key={k} href={m[10]} target="_blank" rel="noopener noreferrer nofollow">
          {m[10]}
        </a>,
      );
    } else if (m[11]) {
      const counted = !names?.mentionedDepartments || names.mentionedDepartments.includes(m[11]);
      out.push(
        <span key={k} className={counted ? "mention" : undefined}>
          @{names?.department(m[11]) ?? "…"}
        </span>,
      );
    } else if (m[12]) {
      out.push(
        <span key={k} className={names?.isMe(m[12]) ? "mention me" : "mention"}>
          @{names?.user(m[12]) ?? "…"}
        </span>,
      );
    } else if (m[13]) {
      const word = m[13];
      const everyone = /^(channel|all)$/i.test(word) || word === "所有人" || word === "全体成员";
      const display = everyone ? undefined : names?.username(word.toLowerCase());
      if (everyone || display) {
        out.push(
          <span key={k} className={everyone || names?.isMe(word.toLowerCase()) ? "mention me" : "mention"} title={display ? "@" + word : undefined}>
            @{display ?? word}
          </span>,
        );
      } else out.push(m[0]);
    }
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function withBreaks(lines: string[], names: MentionNames | undefined, key: string): Inline {
  const out: Inline = [];
  lines.forEach((l, i) => {
    if (i > 0) out.push(<br key={`${key}.br${i}`} />);
    out.push(...inline(l, names, `${key}.l${i}`));
  });
  return out;
}

/** Renders a message body. */
export function renderMarkdown(body: string, names?: MentionNames): ReactNode[] {
  const lines = body.replace(/\r\n?/g, "\n").split("\n");
  const blocks: ReactNode[] = [];
  let i = 0;
  let b = 0;
  while (i < lines.length) {
    const line = lines[i];
    const key = `b${b++}`;
    const fence = line.match(/^\s*(`{3,}|~{3,})\s*([\w+-]*)\s*$/);
    if (fence) {
      const code: string[] = [];
      i++;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) code.push(lines[i++]);
      i++; // closing fence (or end)
      blocks.push(
        <pre key={key}>
          <code data-lang={fence[2] || undefined}>{code.join("\n")}</code>
        </pre>,
      );
      continue;
    }
    if (/^\s*>/.test(line)) {
      const quoted: string[] = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) quoted.push(lines[i++].replace(/^\s*> ?/, ""));
      blocks.push(<blockquote key={key}>{renderMarkdown(quoted.join("\n"), names)}</blockquote>);
      continue;
    }
    const bullet = /^\s*[-*+]\s+/;
    const numbered = /^\s*\d{1,9}[.)]\s+/;
    if (bullet.test(line) || numbered.test(line)) {
      const ordered = numbered.test(line);
      const re = ordered ? numbered : bullet;
      const items: ReactNode[] = [];
      let n = 0;
      while (i < lines.length && re.test(lines[i])) {
        items.push(<li key={`${key}.${n}`}>{inline(lines[i].replace(re, ""), names, `${key}.${n}`)}</li>);
        n++;
        i++;
      }
      blocks.push(ordered ? <ol key={key}>{items}</ol> : <ul key={key}>{items}</ul>);
      continue;
    }
    if (!line.trim()) {
      i++;
      continue;
    }
    const para: string[] = [];
    while (
      i < lines.length &&
      lines[i].trim() &&
      !/^\s*(`{3,}|~{3,})/.test(lines[i]) &&
      !/^\s*>/.test(lines[i]) &&
      !bullet.test(lines[i]) &&
      !numbered.test(lines[i])
    )
      para.push(lines[i++]);
    blocks.push(<p key={key}>{withBreaks(para, names, key)}</p>);
  }
  return blocks;
}
